/**
 * csrc/core/userns_socket on its own (as the port forwarder links it): a
 * forked child that joins a user and a network namespace serves several
 * batches of sockets made inside them, keeps no fd but its channel, runs with
 * default signal dispositions, is reaped on Stop, and a failure names its step.
 * Resources: a user+network namespace made by `unshare -Urn`; a mkdtemp build directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describeRoot } from '../helpers/system';

const ROOT = path.join(__dirname, '..', '..');

describeRoot('UsernsSocketMaker', () => {
  let dir = '';
  let holder: ChildProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'core-userns-socket-'));
    const core = path.join(ROOT, 'csrc', 'core');
    execFileSync('g++', [
      '-std=c++17',
      '-O1',
      '-Wall',
      '-D_GNU_SOURCE',
      `-I${core}`,
      '-o',
      path.join(dir, 'driver'),
      path.join(ROOT, 'test', 'fixtures', 'core', 'userns_socket_driver.cc'),
      ...['userns_socket.cc', 'fork.cc', 'scm_rights.cc'].map((f) => path.join(core, f)),
    ]);
    holder = spawn('unshare', ['-Urn', 'sleep', '600'], { stdio: 'ignore' });
    const own = readlinkSync('/proc/self/ns/user');
    const deadline = Date.now() + 5000;
    while (readlinkSync(`/proc/${holder.pid}/ns/user`) === own) {
      if (Date.now() > deadline) throw new Error('unshare did not make its namespaces');
      await new Promise((r) => setTimeout(r, 10));
    }
  }, 60_000);

  afterAll(() => {
    holder?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves batches of sockets made inside the namespaces, then exits and is reaped', () => {
    const out = JSON.parse(execFileSync(path.join(dir, 'driver'), [`/proc/${holder!.pid}/ns/user`, `/proc/${holder!.pid}/ns/net`], { encoding: 'utf8' }));
    expect(out).toEqual({
      signalsReset: true, // SIGUSR1 ends the child: it does not run this process's handler
      start: 0,
      childFds: 1, // its end of the channel only
      made: [3, 64, 64], // a batch is at most kMaxPassedFds
      inside: true,
      reaped: true,
      wrong: -22, // joining one's own user namespace is EINVAL (setns(2))
      wrongStep: 'setns(CLONE_NEWUSER)',
    });
  });
});
