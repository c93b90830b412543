/** spawnHelper: fd placement, no leaks, process group, namespaces, exit detection. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

import { spawnHelper, CLONE_NEWNET } from '../../lib/spawn';
import { NetNS } from '../../lib/netns';
import { spawnFdCount, waitBlockedInRead } from '../helpers/fds';
import { describeRoot, nsfsMounts, uniqueName } from '../helpers/system';

const fds = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8');

describe('spawnHelper', () => {
  test('the child holds only stdio, the exit pipe (3) and the ready pipe (4); own process group', async () => {
    const before = spawnFdCount();
    // stdin is the exit pipe too. spawnHelper returns after exec, while cat may still be starting
    // (loader, locale files open): its fd table is final once it blocks reading stdin.
    const h = spawnHelper('cat', [], { stdin: 'exit' });
    try {
      await waitBlockedInRead(h.pid, 0);
      const fdDir = `/proc/${h.pid}/fd`;
      const link = (n: number) => readlinkSync(`${fdDir}/${n}`);
      expect(readdirSync(fdDir).map(Number).sort()).toEqual([0, 1, 2, 3, 4]);
      expect(link(0)).toBe(link(3));
      expect(link(3)).toMatch(/^pipe:/);
      expect(link(4)).toMatch(/^pipe:/);
      expect(link(1)).toMatch(/^\/memfd:cat-log/);
      const stat = readFileSync(`/proc/${h.pid}/stat`, 'utf8')
        .replace(/\(.*\)/, '')
        .split(/\s+/);
      expect(Number(stat[3])).toBe(h.pid); // process group id
      expect(fds(h.pid)).toBe('cat\0');
      // Node ignores SIGPIPE and the spawn blocks signals around fork: the helper starts with neither.
      const status = readFileSync(`/proc/${h.pid}/status`, 'utf8');
      expect(status).toMatch(/^SigBlk:\s+0+$/m);
      expect(status).toMatch(/^SigIgn:\s+0+$/m);
    } finally {
      const e = await h.stop();
      expect(e).toEqual({ code: 0, signal: null }); // exited on EOF, not killed
    }
    expect(() => readlinkSync(`/proc/${h.pid}/exe`)).toThrow(); // reaped, no zombie
    expect(spawnFdCount()).toBe(before);
  });

  test('a helper that dies is reported at once with its output; a silent one times out and is killed', async () => {
    const before = spawnFdCount();
    const t0 = Date.now();
    const d = spawnHelper('sh', ['-c', 'echo "no config" >&2; exit 7']);
    await expect(d.waitReady(5000)).rejects.toMatchObject({ code: 'ERR_HELPER_EXITED', message: expect.stringContaining('no config') });
    expect(Date.now() - t0).toBeLessThan(500);
    expect(d.exitStatus).toEqual({ code: 7, signal: null });

    const s = spawnHelper('sleep', ['30']);
    const t1 = Date.now();
    await expect(s.waitReady(150)).rejects.toMatchObject({ code: 'ERR_HELPER_TIMEOUT' });
    expect(Date.now() - t1).toBeGreaterThanOrEqual(140);
    expect(s.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });
    await d.stop();
    await s.stop();
    expect(spawnFdCount()).toBe(before);
  });

  test('errors before exec carry the errno and the step; a missing command is ERR_HELPER_NOT_FOUND', () => {
    const before = spawnFdCount();
    expect(() => spawnHelper('podnet-no-such-helper')).toThrow(expect.objectContaining({ code: 'ERR_HELPER_NOT_FOUND' }));
    // fd 0 (/dev/null or a tty) is not a namespace: setns fails in the child.
    expect(() => spawnHelper('true', [], { netns: 0 })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'setns(CLONE_NEWNET)' }));
    expect(() => spawnHelper('true', [], { fds: [[2, 0]] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(spawnFdCount()).toBe(before);
  });
});

describe('spawnHelper when the parent dies', () => {
  test('the helper sees EOF on its exit fd and leaves', async () => {
    const dist = require('node:path').resolve(__dirname, '..', '..', 'lib', 'spawn');
    // A parent that starts a helper and exits without stopping it (ts via ts-jest is not available in a
    // plain node child, so the child uses the compiled addon through a tiny inline wrapper).
    const code = `const { spawnHelper } = require(${JSON.stringify(dist.replace('/lib/', '/dist/'))});
      const h = spawnHelper('cat', [], { stdin: 'exit', readyFd: false }); console.log(h.pid); process.exit(0);`;
    const out = require('node:child_process').execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    const pid = Number(out.trim());
    expect(pid).toBeGreaterThan(0);
    const gone = () => {
      try {
        return / [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, '')); // exited (a zombie of init here) or gone
      } catch {
        return true;
      }
    };
    for (let i = 0; i < 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(gone()).toBe(true);
  });
});

describeRoot('spawnHelper namespaces (root)', () => {
  test('joins a network namespace, unshares one, and a private mount namespace leaves /run/netns mounts alone', async () => {
    const ns = await NetNS.create({ name: uniqueName('pn-sl-sp') });
    try {
      const j = spawnHelper('sh', ['-c', 'readlink /proc/self/ns/net /proc/self/ns/mnt; printf 1 >&4; cat <&3'], { netns: ns.path, mountPrivate: true });
      await j.waitReady(2000);
      const [net, mnt] = j.output().trim().split('\n');
      expect(net).toBe(`net:[${ns.ino}]`);
      expect(mnt).not.toBe(readlinkSync('/proc/self/ns/mnt'));
      await j.stop();
      const u = spawnHelper('sh', ['-c', 'readlink /proc/self/ns/net; printf 1 >&4; cat <&3'], { unshare: CLONE_NEWNET });
      await u.waitReady(2000);
      expect(u.output().trim()).not.toBe(readlinkSync('/proc/self/ns/net'));
      await u.stop();
      expect(nsfsMounts()).toContain(ns.path);
    } finally {
      await ns.remove();
    }
  });
});
