/**
 * PidfdWatch when uv_poll_start fails: a typed error (code, negative errno,
 * syscall), the handle closed through uv_close (it is registered with the
 * loop from uv_poll_init on; freeing it directly leaves the loop pointing at
 * freed memory, and a worker's loop cannot close), no fd or handle left.
 * libuv's uv_poll_start fails only for an fd another handle of the loop
 * already watches, which uv_poll_init refuses first, so the failure is
 * injected: a test build of PidfdWatch alone (test/fixtures/pidfd-watch-fault)
 * compiled with PODNET_FAULT_INJECTION; the shipped addon has no such seam.
 * Runs in a separate Node process so that an abort fails the test.
 * Resources: a temporary build directory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');

/** Builds the fault-injection addon in `dir`; returns the .node file. */
function buildFaultAddon(dir: string): string {
  // gyp wants sources relative to the .gyp file: reach the checkout through a link.
  symlinkSync(ROOT, path.join(dir, 'podnet'));
  const src = (f: string) => path.join('podnet', f);
  const gyp = {
    targets: [
      {
        target_name: 'podnet_fault',
        sources: [
          src('test/fixtures/pidfd-watch-fault/init.cc'),
          src('csrc/addon/pidfd_watch.cc'),
          src('csrc/addon/common.cc'),
          src('csrc/core/errno_name.cc'),
          src('csrc/core/netns.cc'),
        ],
        include_dirs: [path.dirname(require.resolve('node-addon-api/napi.h'))],
        defines: ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', '_GNU_SOURCE', 'PODNET_FAULT_INJECTION'],
        'cflags!': ['-fno-exceptions'],
        'cflags_cc!': ['-fno-exceptions'],
        cflags_cc: ['-std=c++17', '-O0'],
      },
    ],
  };
  writeFileSync(path.join(dir, 'binding.gyp'), JSON.stringify(gyp));
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', '--loglevel=warn'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return path.join(dir, 'build', 'Release', 'podnet_fault.node');
}

// In the child: helpers started through podnet's spawnHelper, watched by the test build.
const script = (addon: string) => `
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');
const ENOSPC = 28;
const fds = () => fs.readdirSync('/proc/self/fd').length;
const code = \`
  const { parentPort } = require('node:worker_threads');
  const { native } = require(${JSON.stringify(path.join(DIST, 'addon.js'))});
  const fault = require(${JSON.stringify(addon)});
  const h = native.spawnHelper({ file: '/bin/sleep', argv: ['sleep', '30'] });
  fault.failNextPollStart(${'${ENOSPC}'});
  let err;
  try { new fault.PidfdWatch(h.pidfd, () => {}); } catch (e) { err = { code: e.code, errno: e.errno, syscall: e.syscall }; }
  // The same pidfd can be watched again, and the watch reports the exit.
  const w = new fault.PidfdWatch(h.pidfd, (code, signal) => {
    native.closeFd(h.pidfd);
    parentPort.postMessage({ err, signal });
  });
  process.kill(h.pid, 'SIGKILL');
\`;
(async () => {
  const results = [];
  let before;
  // Workers: each one's loop must close with nothing of the failed watch in it. The first one
  // loads the addons (fds Node and podnet keep); from then on the count stays.
  for (let i = 0; i < 6; i++) {
    const w = new Worker(code, { eval: true });
    const exited = new Promise((resolve) => w.once('exit', resolve));
    results.push(await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (c) => reject(new Error('worker ' + i + ' exited (' + c + ') without reporting')));
    }));
    await exited;
    if (i === 0) before = fds();
  }
  console.log(JSON.stringify({ results, fdsBefore: before, fdsAfter: fds() }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('PidfdWatch when uv_poll_start fails', () => {
  let dir: string;
  let addon: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pidfd-watch-fault-'));
    addon = buildFaultAddon(dir);
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('throws a typed error and leaves no handle or fd (six workers that then exit)', () => {
    const r = spawnSync(process.execPath, ['-e', script(addon)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.results).toEqual(Array(6).fill({ err: { code: 'ENOSPC', errno: -28, syscall: 'uv_poll_start' }, signal: 9 }));
    expect(out.fdsAfter).toBe(out.fdsBefore);
  });
});
