// Before any test file: the native build and dist/ are current (tests that run
// as another user or in child processes load dist/). Idempotent and quick when
// nothing changed; `npm test` has already run it as pretest.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = () => {
  execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'setup.sh')], { stdio: 'inherit' });
};
