/**
 * The pidfd exit watch of spawnHelper ends with its environment: a worker
 * thread that exits while a helper it started is still running must leave no
 * libuv handle behind (Node aborts a worker whose loop still has open handles
 * when it closes). Runs in a separate Node process so that an abort fails the
 * test instead of killing the test runner.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const DIST = path.join(__dirname, '..', '..', 'dist');

const SCRIPT = `
const { Worker } = require('node:worker_threads');
const dist = ${JSON.stringify(DIST)};
const code = \`
  const { parentPort } = require('node:worker_threads');
  const { spawnHelper } = require(\${JSON.stringify(dist)} + '/spawn');
  const h = spawnHelper('sleep', ['30'], { exitFd: false, readyFd: false });
  parentPort.postMessage(h.pid);
\`;
(async () => {
  const pids = [];
  for (let i = 0; i < 5; i++) {
    const w = new Worker(code, { eval: true });
    pids.push(await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));
    await w.terminate();
  }
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  console.log('ok ' + pids.length);
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('PidfdWatch', () => {
  it('a worker that ends while its helper runs leaves no open handle (five workers)', () => {
    const r = spawnSync(process.execPath, ['-e', SCRIPT], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).not.toMatch(/open handles|Assertion|Aborted/);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('ok 5');
  });
});
