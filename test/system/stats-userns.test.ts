/**
 * Link statistics of a namespace owned by another user namespace, read by an
 * unprivileged user: podnet forks a child to join the user namespace, and a
 * failure reports the step that failed with its errno.
 * Resources: test user pncore1; a root-owned user+network namespace bound under a mkdtemp directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { createTestUser, type TestUser } from '../helpers/rootless';
import { describeRoot } from '../helpers/system';

describeRoot('linkStats through a user namespace the caller cannot join', () => {
  let user: TestUser;
  let dir = '';
  let holder: ChildProcess | undefined;
  let nsFile = '';

  beforeAll(async () => {
    user = createTestUser('pncore1');
    dir = mkdtempSync(path.join(os.tmpdir(), 'core-stats-userns-'));
    chmodSync(dir, 0o755);
    // A user and network namespace made by root: the test user is not its owner.
    holder = spawn('unshare', ['-Urn', 'sleep', '600'], { stdio: 'ignore' });
    const pid = holder.pid!;
    const deadline = Date.now() + 5000;
    const own = execFileSync('readlink', ['/proc/self/ns/user'], { encoding: 'utf8' });
    while (execFileSync('readlink', [`/proc/${pid}/ns/user`], { encoding: 'utf8' }) === own) {
      if (Date.now() > deadline) throw new Error('unshare did not make its namespaces');
      await new Promise((r) => setTimeout(r, 10));
    }
    nsFile = path.join(dir, 'net');
    writeFileSync(nsFile, '');
    execFileSync('mount', ['--bind', `/proc/${pid}/ns/net`, nsFile]);
  });

  afterAll(() => {
    if (nsFile) execFileSync('umount', [nsFile], { stdio: 'ignore' });
    holder?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    user?.remove();
  });

  it('fails with the errno and the step of the forked child (setns(CLONE_NEWUSER), EPERM)', async () => {
    const script =
      `require(${JSON.stringify(path.join(user.pkg, 'dist'))}).linkStats(${JSON.stringify(nsFile)})` + // the user may not read the checkout
      '.then(() => console.log("{}"), (e) => console.log(JSON.stringify({ code: e.code, syscall: e.syscall, errno: e.errno })))';
    const out = JSON.parse((await user.run(process.execPath, ['-e', script])).stdout);
    expect(out).toEqual({ code: 'EPERM', syscall: 'setns(CLONE_NEWUSER)', errno: -1 });
  }, 30_000);
});
