/** spawnHelper: fd placement, no leaks, process group, namespaces, exit detection. */
import { readFileSync, readlinkSync } from 'node:fs';

import { spawnHelper, CLONE_NEWNET } from '../lib/spawn';
import { NetNS } from '../lib/netns';
import { describeRoot, nsfsMounts, openFdCount, uniqueName } from './helpers/system';

const fds = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8');

describe('spawnHelper', () => {
  test('the child holds only stdio, the exit pipe (3) and the ready pipe (4); own process group', async () => {
    const before = openFdCount();
    // The shell lists its fds, writes the ready byte, then waits for EOF on fd 3.
    const h = spawnHelper('sh', ['-c', 'ls /proc/$$/fd | tr "\\n" " "; echo; cut -d" " -f5 /proc/$$/stat; printf 1 >&4; cat <&3 >/dev/null']);
    try {
      await h.waitReady(2000);
      const [fdList, pgrp] = h.output().trim().split('\n');
      expect(fdList.trim().split(' ').map(Number).sort()).toEqual([0, 1, 2, 3, 4]);
      expect(Number(pgrp)).toBe(h.pid);
      expect(fds(h.pid)).toContain('sh');
    } finally {
      const e = await h.stop();
      expect(e).toEqual({ code: 0, signal: null }); // exited on EOF, not killed
    }
    expect(() => readlinkSync(`/proc/${h.pid}/exe`)).toThrow(); // reaped, no zombie
    expect(openFdCount()).toBe(before);
  });

  test('a helper that dies is reported at once with its output; a silent one times out and is killed', async () => {
    const before = openFdCount();
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
    expect(openFdCount()).toBe(before);
  });

  test('errors before exec carry the errno and the step; a missing command is ERR_HELPER_NOT_FOUND', () => {
    const before = openFdCount();
    expect(() => spawnHelper('podnet-no-such-helper')).toThrow(expect.objectContaining({ code: 'ERR_HELPER_NOT_FOUND' }));
    // fd 0 (/dev/null or a tty) is not a namespace: setns fails in the child.
    expect(() => spawnHelper('true', [], { netns: 0 })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'setns(CLONE_NEWNET)' }));
    expect(() => spawnHelper('true', [], { fds: [[2, 0]] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(openFdCount()).toBe(before);
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
