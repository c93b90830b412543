/**
 * A namespace thread that cannot get home after a job (setns back fails)
 * ends, and a replacement runs the jobs still queued. The replacement must be
 * born in the process's own namespace and keep it as home: a thread started
 * by the stuck one would be born in the foreign namespace it is stuck in.
 * The failure is made real by pointing the home namespace fd at /dev/null
 * (setns then fails with EINVAL) while jobs are queued, then restoring it.
 * Runs in a separate Node process: it closes and reopens fds of the addon.
 * Resources: none on the host (namespaces held by fds only, gone with the process).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { describeRoot } from '../helpers/system';

const DIST = path.join(__dirname, '..', '..', 'dist');

const SCRIPT = `
const fs = require('node:fs');
const { native } = require(${JSON.stringify(path.join(DIST, 'addon.js'))});
const host = fs.readlinkSync('/proc/self/ns/net');
const threadsAway = () =>
  fs.readdirSync('/proc/self/task').filter((t) => {
    try { return fs.readlinkSync('/proc/self/task/' + t + '/ns/net') !== host; } catch { return false; }
  });
// Opens /dev/null or the host namespace until the fd number is 'fd' (lowest first); closes the extras.
const reopenAt = (fd, file) => {
  fs.closeSync(fd);
  const extra = [];
  let got;
  for (let i = 0; i < 1000 && (got = fs.openSync(file, 'r')) !== fd; i++) extra.push(got);
  extra.forEach((f) => fs.closeSync(f));
  if (got !== fd) throw new Error('fd ' + fd + ' was not reused');
};
const settle = async () => {
  const end = Date.now() + 10000;
  while (threadsAway().length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return threadsAway().length;
};
(async () => {
  // A first job: the namespace thread and its home fd exist.
  native.closeFd((await native.netnsUnshare()).fd);
  const home = fs.readdirSync('/proc/self/fd').filter((f) => {
    try { return fs.readlinkSync('/proc/self/fd/' + f) === host; } catch { return false; }
  }).map(Number);
  if (home.length !== 1) throw new Error('expected one fd on the host namespace, found ' + home.length);
  reopenAt(home[0], '/dev/null');
  // Posted in one tick: the first job leaves its thread stuck in its new
  // namespace while the others are queued for a replacement.
  const made = await Promise.allSettled(Array.from({ length: 4 }, () => native.netnsUnshare()));
  reopenAt(home[0], '/proc/self/ns/net');
  const ok = made.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const away = await settle();
  // New work after the stuck threads: its thread is at home between jobs.
  const after = await native.netnsUnshare();
  const awayAfter = await settle();
  const inodes = new Set([...ok, after].map((i) => i.ino));
  [...ok, after].forEach((i) => native.closeFd(i.fd));
  console.log(JSON.stringify({
    ok: ok.length,
    errors: made.filter((r) => r.status === 'rejected').map((r) => r.reason.code + ' ' + r.reason.message),
    distinct: inodes.size,
    hostIno: fs.statSync('/proc/self/ns/net').ino,
    inodes: [...inodes],
    away,
    awayAfter,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describeRoot('namespace thread replacement', () => {
  it('a replacement for a thread stuck in a foreign namespace is born at home and runs the queued jobs there', () => {
    const r = spawnSync(process.execPath, ['-e', SCRIPT], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    // Every queued job ran, each in a namespace of its own, none in the host's.
    expect(out.errors).toEqual([]);
    expect(out.ok).toBe(4);
    expect(out.distinct).toBe(5);
    expect(out.inodes).not.toContain(out.hostIno);
    // No thread of the process is left in a foreign namespace, before or after more work.
    expect(out.away).toBe(0);
    expect(out.awayAfter).toBe(0);
  });
});
