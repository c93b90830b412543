/**
 * Paths that are not network namespaces: opening one fails at once with a
 * typed error and never stalls the namespace thread; removing one touches
 * nothing (only an nsfs mount is ever unmounted, only a mount point as podnet
 * and `ip netns add` make it is ever unlinked).
 * Resources: namespaces core-*, files under a mkdtemp directory and /run/netns/core-*.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { NetNS, PodnetError, Runtime } from '../../lib';
import { setNetnsSysctl } from '../../lib/netns';
import { describeRoot, ipNetnsList, nsfsMounts, uniqueName } from '../helpers/system';

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Settles `p`, or fails the test if it has not settled within `ms`. */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function mounted(p: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p);
}

function umount(p: string): void {
  for (let i = 0; i < 4 && mounted(p); i++) execFileSync('umount', ['-l', p]);
}

describeRoot('paths that are not network namespaces', () => {
  let dir = '';
  const mounts: string[] = [];
  const runFiles: string[] = [];
  const made: NetNS[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'core-nspaths-'));
  });

  afterAll(async () => {
    for (const ns of made) await ns.remove().catch(() => {});
    for (const m of mounts) umount(m);
    for (const f of runFiles) rmSync(f, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  describe('a FIFO', () => {
    let fifo = '';
    beforeAll(() => {
      fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
    });

    it('NetNS.open fails at once with ERR_NOT_NETNS, five times, and creates still work after', async () => {
      for (let i = 0; i < 5; i++) {
        const err = await within(
          2000,
          NetNS.open(fifo).catch((e) => e),
        );
        expect(err).toBeInstanceOf(PodnetError);
        expect(err).toMatchObject({ code: 'ERR_NOT_NETNS', path: fifo });
      }
      const ns = await within(5000, NetNS.create({ name: uniqueName('core-fifo') }));
      made.push(ns);
      await ns.setLoopbackUp();
      expect(ipNetnsList()).toContain(ns.name);
    });

    it('setNetnsSysctl on it fails at once with ERR_NOT_NETNS', async () => {
      await expect(within(2000, setNetnsSysctl(fifo, 'net.ipv4.ip_forward', '1'))).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
    });

    it("createSandbox({ network: 'ns:<fifo>' }) fails at once with ERR_NOT_NETNS and leaves no sandbox", async () => {
      const rt = new Runtime({ stateDir: path.join(dir, 'state') });
      const err = await within(
        3000,
        rt.createSandbox({ id: uniqueName('core-sb'), network: `ns:${fifo}` }).catch((e) => e),
      );
      expect(err).toMatchObject({ code: 'ERR_NOT_NETNS' });
      expect(await rt.list()).toEqual([]);
    });

    it('removePath refuses it and leaves it', async () => {
      await expect(within(2000, NetNS.removePath(fifo))).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
      expect(existsSync(fifo)).toBe(true);
    });
  });

  describe('NetNS.removePath', () => {
    it('refuses a tmpfs mount point and leaves it mounted', async () => {
      const mp = path.join(dir, 'tmpfs');
      mkdirSync(mp);
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mp]);
      mounts.push(mp);
      await expect(NetNS.removePath(mp)).rejects.toMatchObject({ code: 'ERR_NOT_NETNS', path: mp });
      expect(mounted(mp)).toBe(true);
    });

    it("refuses an empty regular file of a user's and leaves it", async () => {
      const f = path.join(dir, 'empty');
      writeFileSync(f, '');
      await expect(NetNS.removePath(f)).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
      expect(existsSync(f)).toBe(true);
    });

    it('refuses a symlink to a namespace and the /proc namespace files', async () => {
      const l = path.join(dir, 'link');
      execFileSync('ln', ['-s', '/proc/self/ns/net', l]);
      await expect(NetNS.removePath(l)).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
      await expect(NetNS.removePath('/proc/self/ns/net')).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
      expect(existsSync(l)).toBe(true);
    });

    it('refuses a regular file bind-mounted in /run/netns, and so does podnet netns rm', async () => {
      const name = uniqueName('core-bind');
      const f = `/run/netns/${name}`;
      const src = path.join(dir, 'bind-src');
      writeFileSync(src, '');
      writeFileSync(f, '');
      chmodSync(f, 0);
      runFiles.push(f);
      execFileSync('mount', ['--bind', src, f]);
      mounts.push(f);
      await expect(NetNS.removePath(f)).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
      expect(() => execFileSync(process.execPath, [CLI, 'netns', 'rm', name], { stdio: 'pipe' })).toThrow(/ERR_NOT_NETNS|not a network namespace/);
      expect(mounted(f)).toBe(true);
      expect(existsSync(src)).toBe(true);
    });

    it('removes a namespace made by ip netns add (unmount and unlink)', async () => {
      const name = uniqueName('core-ip');
      execFileSync('ip', ['netns', 'add', name]);
      runFiles.push(`/run/netns/${name}`);
      mounts.push(`/run/netns/${name}`);
      await NetNS.removePath(`/run/netns/${name}`);
      expect(ipNetnsList()).not.toContain(name);
      expect(existsSync(`/run/netns/${name}`)).toBe(false);
    });

    it('removes a mount point a cut-short create left (empty, no permission bits, nothing mounted)', async () => {
      const f = path.join(dir, 'placeholder');
      writeFileSync(f, '');
      chmodSync(f, 0);
      await NetNS.removePath(f);
      expect(existsSync(f)).toBe(false);
    });

    it("unmounts a namespace bound onto a user's file but keeps the file and its content", async () => {
      const f = path.join(dir, 'kept');
      writeFileSync(f, 'data');
      const ns = await NetNS.create({ name: uniqueName('core-src') });
      made.push(ns);
      execFileSync('mount', ['--bind', ns.path, f]);
      mounts.push(f);
      await NetNS.removePath(f);
      expect(nsfsMounts()).not.toContain(f);
      expect(readFileSync(f, 'utf8')).toBe('data');
    });

    it('is idempotent on a path that does not exist', async () => {
      await expect(NetNS.removePath(path.join(dir, 'missing'))).resolves.toBeUndefined();
    });
  });
});
