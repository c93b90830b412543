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
  reserveTestPorts();
};

// The suites publish fixed host ports in 42000-47999, inside the kernel's
// ephemeral range (32768-60999): an outgoing connection of another test could
// take one as its local port and make a listener's bind fail. Reserved ports
// are never picked for that (ip-sysctl.rst, ip_local_reserved_ports); the old
// setting is restored by global-teardown.
const RESERVED = '/proc/sys/net/ipv4/ip_local_reserved_ports';
function reserveTestPorts() {
  if (process.getuid() !== 0) return;
  const fs = require('node:fs');
  const old = fs.readFileSync(RESERVED, 'utf8').trim();
  globalThis.__podnetReservedPorts = old;
  fs.writeFileSync(RESERVED, old ? `${old},42000-47999` : '42000-47999');
}
