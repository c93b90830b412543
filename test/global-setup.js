// Before any test file: the native build and dist/ are current (tests that run
// as another user or in child processes load dist/). Idempotent and quick when
// nothing changed; `npm test` has already run it as pretest.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = () => {
  // Remembered so that global-teardown removes the default bridge only if the tests made it.
  globalThis.__podnetDefaultBridgeExisted = require('node:fs').existsSync('/sys/class/net/podnet0');
  // Likewise the embedded default native network (its definition, base rules and gateway address).
  globalThis.__podnetDefaultNativeExisted = require('node:fs').existsSync('/etc/podnet/networks/podnet.json');
  execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'setup.sh')], { stdio: 'inherit' });
};
