import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';

import { NetNS, PodnetError } from '../../lib';
import { setNetnsSysctl } from '../../lib/netns';
import { describeRoot, ipNetnsList, nsfsMounts, openFdCount, threadNetns, uniqueName } from '../helpers/system';

const made: NetNS[] = [];
afterEach(async () => {
  for (const ns of made.splice(0)) await ns.remove().catch(() => {});
});

async function create(name?: string): Promise<NetNS> {
  const ns = await NetNS.create({ name: name ?? uniqueName('pn-nst') });
  made.push(ns);
  return ns;
}

describe('NetNS input validation', () => {
  it.each([
    ['empty', ''],
    ['dot', '.'],
    ['dotdot', '..'],
    ['slash', 'a/b'],
    ['NUL', 'a\0b'],
    ['too long', 'x'.repeat(256)],
  ])('refuses a %s name before any syscall', async (_label, name) => {
    const err = await NetNS.create({ name, dir: '/nonexistent-podnet-dir' }).catch((e) => e);
    expect(err).toBeInstanceOf(PodnetError);
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/netns name/);
    expect(existsSync('/nonexistent-podnet-dir')).toBe(false);
  });

  it('refuses a relative directory and a bad pid', async () => {
    await expect(NetNS.create({ dir: 'run/netns' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(NetNS.fromPid(-1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(NetNS.fromPid(1.5)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('rejects a path that is not a network namespace', async () => {
    await expect(NetNS.open('/etc/hostname')).rejects.toMatchObject({ code: 'ERR_NOT_NETNS', path: '/etc/hostname' });
    await expect(NetNS.open('/proc/self/ns/mnt')).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
    await expect(NetNS.open('/nonexistent/ns')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
  });

  it('opens the current process namespace by /proc path', async () => {
    const ns = await NetNS.open('/proc/self/ns/net');
    expect(ns.ino).toBe(statSync('/proc/self/ns/net').ino);
    ns.close();
    ns.close();
    expect(ns.closed).toBe(true);
  });
});

describeRoot('NetNS on the real kernel', () => {
  it('creates a namespace that iproute2 lists and runs commands in', async () => {
    const ns = await NetNS.create();
    made.push(ns);
    expect(ns.name).toMatch(/^cni-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ns.path).toBe(`/run/netns/${ns.name}`);
    expect(ipNetnsList()).toContain(ns.name);
    const st = statSync(ns.path);
    expect(st.ino).toBe(ns.ino);
    expect(st.dev).toBe(ns.dev);
    expect(ns.ino).not.toBe(statSync('/proc/self/ns/net').ino);
    const links = execFileSync('ip', ['netns', 'exec', ns.name, 'ip', '-o', 'link'], { encoding: 'utf8' });
    expect(links.trim().split('\n')).toHaveLength(1);
    expect(links).toMatch(/: lo:/);
  });

  it('runs a process inside with exec and spawn', async () => {
    const ns = await create();
    const r = await ns.exec('readlink', ['/proc/self/ns/net']);
    expect(r).toMatchObject({ code: 0, signal: null, stderr: '' });
    expect(r.stdout.trim()).toBe(`net:[${ns.ino}]`);
    expect((await ns.exec('sh', ['-c', 'cat; exit 3'], { input: 'hello' })).stdout).toBe('hello');
    expect((await ns.exec('sh', ['-c', 'exit 3'])).code).toBe(3);
    const child = ns.spawn('ip', ['-o', 'addr'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    await new Promise((r) => child.on('close', r));
    expect(out).not.toMatch(/eth0|ens|enp/);
  });

  it('never mounts over an existing namespace of the same name', async () => {
    const ns = await create();
    const err = await NetNS.create({ name: ns.name }).catch((e) => e);
    expect(err).toBeInstanceOf(PodnetError);
    expect(err.code).toBe('EEXIST');
    expect(err.path).toBe(ns.path);
    expect(statSync(ns.path).ino).toBe(ns.ino);
    expect(nsfsMounts().filter((m) => m === ns.path)).toHaveLength(1);
  });

  it('opens a namespace made by ip netns add and removes it', async () => {
    const name = uniqueName('pn-nsip');
    execFileSync('ip', ['netns', 'add', name]);
    try {
      const ns = await NetNS.open(`/run/netns/${name}`);
      expect(ns.ino).toBe(statSync(`/run/netns/${name}`).ino);
      expect(ns.persistent).toBe(false);
      ns.close();
      await NetNS.removePath(`/run/netns/${name}`);
      expect(ipNetnsList()).not.toContain(name);
    } finally {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        /* already removed by the test */
      }
    }
  });

  it('binds the namespace of a running process (fromPid) and keeps it after the process exits', async () => {
    const child = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
    try {
      // wait until unshare has switched namespaces
      const host = readlinkSync('/proc/self/ns/net');
      for (let i = 0; i < 200 && readlinkSync(`/proc/${child.pid}/ns/net`) === host; i++) await new Promise((r) => setTimeout(r, 5));
      const want = statSync(`/proc/${child.pid}/ns/net`).ino;
      const ns = await NetNS.fromPid(child.pid!);
      made.push(ns);
      expect(ns.ino).toBe(want);
      expect(ns.name).toMatch(/^cni-/);
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      expect((await ns.exec('readlink', ['/proc/self/ns/net'])).stdout.trim()).toBe(`net:[${want}]`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('fromPid of a process that does not exist is ENOENT and leaves no file', async () => {
    const before = await NetNS.list();
    await expect(NetNS.fromPid(0x3ffffff0)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await NetNS.list()).toEqual(before);
  });

  it('remove is idempotent and leaves no mount and no file', async () => {
    const ns = await create();
    await ns.remove();
    await ns.remove();
    expect(existsSync(ns.path)).toBe(false);
    expect(nsfsMounts()).not.toContain(ns.path);
    await NetNS.removePath(ns.path);
  });

  it('setLoopbackUp brings lo up inside the namespace (it starts down)', async () => {
    const ns = await create();
    const lo = () => execFileSync('ip', ['-n', ns.name, '-o', 'link', 'show', 'lo'], { encoding: 'utf8' });
    expect(lo()).not.toMatch(/[<,]UP[,>]/);
    await ns.setLoopbackUp();
    expect(lo()).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
  });

  it('setNetnsSysctl changes a net.* sysctl inside the namespace only', async () => {
    const ns = await create();
    const host = readFileSync('/proc/sys/net/ipv6/conf/default/accept_dad', 'utf8');
    const want = host.trim() === '0' ? '1' : '0';
    await setNetnsSysctl(ns.path, 'net.ipv6.conf.default.accept_dad', want);
    expect((await ns.exec('cat', ['/proc/sys/net/ipv6/conf/default/accept_dad'])).stdout.trim()).toBe(want);
    expect(readFileSync('/proc/sys/net/ipv6/conf/default/accept_dad', 'utf8')).toBe(host);
    await expect(setNetnsSysctl(ns.path, 'kernel.hostname', 'x')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(setNetnsSysctl(ns.path, 'net.nosuch.key', '1')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('removePath refuses a file that is not a namespace and leaves it in place', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pn-ns-notns-'));
    try {
      writeFileSync(path.join(dir, 'data'), 'precious');
      await expect(NetNS.removePath(path.join(dir, 'data'))).rejects.toMatchObject({ code: 'ERR_NOT_NETNS', path: path.join(dir, 'data') });
      expect(readFileSync(path.join(dir, 'data'), 'utf8')).toBe('precious');
      mkdirSync(path.join(dir, 'sub'));
      await expect(NetNS.removePath(path.join(dir, 'sub'))).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
      expect(existsSync(path.join(dir, 'sub'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('remove works while a process still holds the namespace open', async () => {
    const ns = await create();
    const holder = ns.spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 50));
      await ns.remove();
      expect(existsSync(ns.path)).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('creates in a custom run directory, making it a shared mount point', async () => {
    const dir = `/run/${uniqueName('pn-nsdir')}`;
    try {
      const ns = await NetNS.create({ dir, name: 'one' });
      made.push(ns);
      expect(await NetNS.list(dir)).toEqual(['one']);
      const line = execFileSync('findmnt', ['-n', '-o', 'PROPAGATION', dir], { encoding: 'utf8' });
      expect(line).toMatch(/shared/);
      await ns.remove();
    } finally {
      execFileSync('sh', ['-c', `umount -R ${dir} 2>/dev/null; rmdir ${dir} 2>/dev/null; true`]);
    }
  });

  it('10 concurrent creates give 10 distinct namespaces', async () => {
    const all = await Promise.all(Array.from({ length: 10 }, () => create()));
    expect(new Set(all.map((n) => n.ino)).size).toBe(10);
    await Promise.all(all.map((n) => n.remove()));
    for (const n of all) expect(existsSync(n.path)).toBe(false);
  });

  it('works from worker threads; a worker that ends mid-create crashes nothing and leaks no namespace or fd', async () => {
    const name = uniqueName('pn-nswk');
    const dist = JSON.stringify(path.join(__dirname, '..', '..', 'dist'));
    const run = (code: string): Promise<unknown> => {
      const w = new Worker(`const { parentPort } = require('worker_threads'); const { NetNS } = require(${dist}); ${code}`, { eval: true });
      return new Promise((resolve, reject) => {
        let got: unknown;
        w.on('message', (m) => (got = m));
        w.on('error', reject);
        w.on('exit', () => resolve(got));
      });
    };
    await (await create()).remove(); // starts the namespace thread (it keeps an fd on its own namespace)
    const fds = openFdCount();
    const ino = await run(`NetNS.create({ name: '${name}-a' }).then(async (ns) => { parentPort.postMessage(ns.ino); await ns.remove(); });`);
    expect(typeof ino).toBe('number');
    expect(existsSync(`/run/netns/${name}-a`)).toBe(false);

    // The worker is gone before its namespaces are made: nobody can receive them,
    // so podnet removes them again, and closes their fds.
    await run(`for (let i = 0; i < 5; i++) NetNS.create({ name: '${name}-b' + i }); process.exit(0);`);
    const left = () => [0, 1, 2, 3, 4].map((i) => `/run/netns/${name}-b${i}`).filter((p) => existsSync(p));
    try {
      for (let t = 0; t < 100 && left().length > 0; t++) await new Promise((r) => setTimeout(r, 20));
      expect(left()).toEqual([]);
      await (await create()).remove(); // jobs run in order: the worker's are all done
      expect(openFdCount()).toBe(fds);
    } finally {
      for (const p of left()) await NetNS.removePath(p);
    }
  });

  it('1000 create/remove cycles leave threads in the host namespace and fds, memory, mounts flat', async () => {
    const host = readlinkSync('/proc/self/ns/net');
    const warm = await create();
    await warm.remove();
    const fds = openFdCount();
    const rss = process.memoryUsage().rss;
    const prefix = uniqueName('pn-nsloop');
    for (let i = 0; i < 1000; i++) {
      const ns = await NetNS.create({ name: `${prefix}-${i}` });
      await ns.remove();
    }
    expect(threadNetns().every((n) => n === host)).toBe(true);
    expect(openFdCount()).toBe(fds);
    expect(process.memoryUsage().rss - rss).toBeLessThan(32 * 1024 * 1024);
    expect(nsfsMounts().filter((m) => m.includes(prefix))).toEqual([]);
    expect((await NetNS.list()).filter((n) => n.startsWith(prefix))).toEqual([]);

    // A socket made from JavaScript is in the host namespace: a host process reaches it.
    const server = net.createServer((s) => s.end('host'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    // Async child: a sync one would block the event loop this server needs.
    const { stdout: got } = await promisify(execFile)(process.execPath, ['-e', `require('net').connect(${port},'127.0.0.1').pipe(process.stdout)`], {
      encoding: 'utf8',
    });
    server.close();
    expect(got).toBe('host');
  });
});
