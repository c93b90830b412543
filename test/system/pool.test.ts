/**
 * Pools of warm sandboxes on the real kernel: handed out once (also across
 * processes), always fresh namespaces, nothing of a previous user left, a
 * burst larger than the pool, close() and process death release the pool,
 * gc after SIGKILL, list() hides entries, a pooled sandbox looks like a cold
 * one, `podnet pool` shows the pool.
 * Resources: sandbox ids pool-*, subnets 10.89.220.0/24-10.89.222.0/24, host ports 47000-47099.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { PodnetError, Runtime } from '../../lib';
import { describeRoot, ipNetnsList, nsfsMounts } from '../helpers/system';

const run = promisify(execFile);
const DIST = path.join(__dirname, '..', '..', 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');

/** Waits for `cond` (polled) up to a deadline. */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Inodes of the network namespaces a process holds by fd. */
function netFds(pid: number | 'self' = 'self'): number[] {
  const out: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // the process is gone
  }
  for (const fd of fds) {
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Who holds each network namespace now: `pid:fd`, `pid:ns` (its own namespace) or `mount:PATH`, by inode. */
function nsHolders(): Map<number, string[]> {
  const held = new Map<number, string[]>();
  const add = (ino: number, who: string) => held.set(ino, [...(held.get(ino) ?? []), who]);
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      add(Number(/\d+/.exec(readlinkSync(`/proc/${p}/ns/net`))![0]), `${p}:ns`);
      for (const ino of netFds(Number(p))) add(ino, `${p}:fd`);
    } catch {
      // gone meanwhile
    }
  }
  for (const m of nsfsMounts()) {
    try {
      add(statSync(m).ino, `mount:${m}`);
    } catch {
      // removed meanwhile
    }
  }
  return held;
}

describeRoot('warm sandbox pools (root)', () => {
  let dir = '';
  let rt: Runtime;
  const stateDir = () => path.join(dir, 'state');
  const children: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'podnet-pool-'));
    rt = new Runtime({ stateDir: stateDir(), pools: [{ network: 'none', size: 4 }] });
  });

  afterAll(async () => {
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const fresh = new Runtime({ stateDir: stateDir() });
    for (const s of await fresh.list()) await fresh.teardown(s.id).catch(() => {});
    await fresh.gc().catch(() => {});
    rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects bad pool options with a typed error before anything is made', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as PodnetError).code;
      }
      return 'no error';
    };
    expect(code(() => rt.startPool({ network: 'none', size: -1 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => rt.startPool({ network: 'none', size: 1.5 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => rt.startPool({ network: 'bridge', size: 2 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => rt.startPool({ network: 'bogus', size: 2 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => rt.resizePool('host', 2))).toBe('ERR_NO_SUCH_POOL');
  });

  it('list() shows no pool entry, and entries are not namespace files', async () => {
    await rt.poolsReady();
    expect(rt.poolStatus()).toEqual([expect.objectContaining({ network: 'none', size: 4, fill: 4 })]);
    expect(await rt.list()).toEqual([]);
    expect(ipNetnsList().filter((n) => n.startsWith(rt.netnsPrefix))).toEqual([]);
  });

  it('a pooled sandbox looks like a cold one: state, inspect, stats, list, spawn, teardown', async () => {
    const cold = new Runtime({ stateDir: stateDir() });
    await rt.poolsReady();
    const hits = rt.poolStatus()[0].hits;
    const a = await rt.createSandbox({ id: 'pool-same-w', network: 'none' });
    const b = await cold.createSandbox({ id: 'pool-same-c', network: 'none' });
    expect(rt.poolStatus()[0].hits).toBe(hits + 1);
    try {
      const norm = (s: object) => ({
        ...s,
        id: 'X',
        name: 'X',
        cniPodName: 'X',
        netnsPath: path.basename((s as { netnsPath: string }).netnsPath).replace(/pool-same-[wc]$/, 'X'),
        createdAt: 'T',
      });
      expect(norm(a)).toEqual(norm(b));
      expect(a.netnsPath).toBe(path.join('/run/netns', `${rt.netnsPrefix}pool-same-w`));
      expect(norm((await rt.get('pool-same-w'))!)).toEqual(norm((await rt.get('pool-same-c'))!));
      const ia = await rt.inspect('pool-same-w');
      const ib = await rt.inspect('pool-same-c');
      expect({ ...ia, SandboxKey: '' }).toEqual({ ...ib, SandboxKey: '' });
      expect(ia.SandboxKey).toBe(a.netnsPath);
      expect(await rt.stats('pool-same-w')).toEqual(await rt.stats('pool-same-c'));
      const list = await rt.list();
      expect(list.map((s) => s.id).sort()).toEqual(['pool-same-c', 'pool-same-w']);
      expect(list.find((s) => s.id === 'pool-same-w')).toMatchObject({ mode: 'none', status: 'ready', ownerAlive: true });
      for (const id of ['pool-same-w', 'pool-same-c']) {
        const { stdout } = await run('nsenter', [`--net=${(await rt.get(id))!.netnsPath}`, 'ip', '-o', 'link']);
        expect(stdout).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
        expect(stdout.trim().split('\n')).toHaveLength(1);
      }
      // A process inside runs in the sandbox's namespace.
      const child = await rt.spawn('pool-same-w', 'readlink', ['/proc/self/ns/net'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const out = await new Promise<string>((r) => {
        let s = '';
        child.stdout!.on('data', (d) => (s += d));
        child.on('close', () => r(s));
      });
      expect(out.trim()).toBe(`net:[${statSync(a.netnsPath!).ino}]`);
      // The same id cannot be created twice, pooled or not; the pool entry is not lost.
      const before = rt.poolStatus()[0];
      await expect(rt.createSandbox({ id: 'pool-same-c', network: 'none' })).rejects.toMatchObject({ code: 'EEXIST' });
      expect(existsSync(b.netnsPath!)).toBe(true);
      expect(rt.poolStatus()[0].hits).toBe(before.hits);
    } finally {
      await rt.teardown('pool-same-w');
      await cold.teardown('pool-same-c');
    }
    for (const s of [a, b]) {
      expect(existsSync(s.netnsPath!)).toBe(false);
      expect(await rt.get(s.id)).toBeUndefined();
    }
    expect(nsfsMounts().filter((m) => m.includes(rt.netnsPrefix))).toEqual([]);
  });

  it('hands every entry out once and a burst larger than the pool degrades to cold creates', async () => {
    await rt.poolsReady();
    const { hits, misses } = rt.poolStatus()[0];
    const ids = Array.from({ length: 12 }, (_, i) => `pool-burst-${i}`);
    const made = await Promise.all(ids.map((id) => rt.createSandbox({ id, network: 'none' })));
    try {
      const st = rt.poolStatus()[0];
      expect(st.hits - hits).toBe(4); // the whole pool, once
      expect(st.misses - misses).toBe(8);
      const inos = made.map((s) => statSync(s.netnsPath!).ino);
      expect(new Set(inos).size).toBe(12);
    } finally {
      await Promise.all(ids.map((id) => rt.teardown(id)));
    }
    await rt.poolsReady();
    expect(rt.poolStatus()[0].fill).toBe(4);
  });

  it('never hands out a namespace twice across processes sharing the state dir', async () => {
    const script = (tag: string) => `
      const { Runtime } = require(${JSON.stringify(DIST)});
      const { statSync } = require('node:fs');
      (async () => {
        const rt = new Runtime({ stateDir: ${JSON.stringify(stateDir())}, pools: [{ network: 'none', size: 6 }] });
        await rt.poolsReady();
        const made = await Promise.all(Array.from({ length: 10 }, (_, i) => rt.createSandbox({ id: 'pool-x${tag}-' + i, network: 'none' })));
        console.log(JSON.stringify({ inos: made.map((s) => statSync(s.netnsPath).ino), status: rt.poolStatus()[0] }));
        rt.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const results = await Promise.all(['a', 'b'].map((t) => run(process.execPath, ['-e', script(t)])));
    const parsed = results.map((r) => JSON.parse(r.stdout) as { inos: number[]; status: { hits: number } });
    try {
      for (const p of parsed) expect(p.status.hits).toBeGreaterThanOrEqual(6);
      const all = parsed.flatMap((p) => p.inos);
      expect(new Set(all).size).toBe(20);
      expect((await rt.list()).filter((s) => s.id.startsWith('pool-x'))).toHaveLength(20);
    } finally {
      for (const s of await rt.list()) if (s.id.startsWith('pool-x')) await rt.teardown(s.id);
    }
  });

  it('leaves nothing of a previous user: every entry is a fresh namespace', async () => {
    await rt.poolsReady();
    const a = await rt.createSandbox({ id: 'pool-dirty', network: 'none' });
    const inoA = statSync(a.netnsPath!).ino;
    const ns = (...args: string[]) => run('nsenter', [`--net=${a.netnsPath}`, ...args]);
    await ns('ip', 'addr', 'add', '10.89.220.1/32', 'dev', 'lo');
    await ns('ip', 'link', 'add', 'pool-va', 'type', 'veth', 'peer', 'name', 'pool-vb');
    await ns('ip', 'link', 'set', 'pool-va', 'up');
    await ns('ip', 'addr', 'add', '10.89.221.1/24', 'dev', 'pool-va');
    await ns('ip', 'route', 'add', '10.89.222.0/24', 'via', '10.89.221.2');
    await ns('ip', 'neigh', 'add', '10.89.221.2', 'lladdr', '02:00:00:00:00:01', 'dev', 'pool-va');
    await ns('sysctl', '-qw', 'net.core.somaxconn=1234');
    await ns('nft', 'add table inet pooltest');
    await ns(
      'conntrack',
      '-I',
      '-p',
      'tcp',
      '-s',
      '10.89.220.1',
      '-d',
      '10.89.220.2',
      '--sport',
      '47001',
      '--dport',
      '47002',
      '--state',
      'ESTABLISHED',
      '-t',
      '120',
      '-u',
      'ASSURED',
    );
    // A socket that outlives the sandbox: its process keeps the old namespace alive.
    const server = await rt.spawn('pool-dirty', process.execPath, ['-e', "require('net').createServer().listen(47003,'127.0.0.1',()=>console.log('up'))"], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      await new Promise((r) => server.stdout!.once('data', r));
      expect((await ns('conntrack', '-L')).stdout).toContain('47001');
      const { hits } = rt.poolStatus()[0];
      await rt.teardown('pool-dirty');
      const b = await rt.createSandbox({ id: 'pool-clean', network: 'none' });
      try {
        expect(rt.poolStatus()[0].hits).toBe(hits + 1);
        expect(statSync(b.netnsPath!).ino).not.toBe(inoA);
        const nb = (...args: string[]) => run('nsenter', [`--net=${b.netnsPath}`, ...args]).then((r) => r.stdout + r.stderr);
        expect((await nb('ip', '-o', 'link')).trim().split('\n')).toHaveLength(1);
        expect(await nb('ip', '-o', '-4', 'addr')).not.toContain('10.89.22');
        expect((await nb('ip', '-4', 'route', 'show', 'table', 'all')).split('\n').filter((l) => l && !/^(local|broadcast) 127\./.test(l))).toEqual([]);
        expect((await nb('ip', 'neigh')).trim()).toBe('');
        const pristine = execFileSync('unshare', ['-n', 'sysctl', '-n', 'net.core.somaxconn'], { encoding: 'utf8' });
        expect(pristine.trim()).not.toBe('1234');
        expect((await nb('sysctl', '-n', 'net.core.somaxconn')).trim()).toBe(pristine.trim());
        expect((await nb('nft', 'list ruleset')).trim()).toBe('');
        expect(await nb('conntrack', '-L')).toMatch(/0 flow entries/);
        expect((await nb('ss', '-H', '-tan')).trim()).toBe('');
      } finally {
        await rt.teardown('pool-clean');
      }
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('close() releases the pool: its namespaces, its published status', async () => {
    const other = new Runtime({ stateDir: stateDir(), pools: [{ network: 'none', size: 5 }] });
    const before = netFds().length;
    try {
      await other.poolsReady();
      await until(async () => (await other.listPools()).some((p) => p.owner.pid === process.pid && p.pools[0]?.fill === 5), 'published pool status');
      expect(netFds().length).toBeGreaterThanOrEqual(before); // entries made before `before` was read may count already
      const held = netFds();
      other.close();
      expect(other.poolStatus()).toEqual([]);
      const left = netFds();
      expect(held.length - left.length).toBe(5);
      const holders = nsHolders();
      for (const ino of held.filter((i) => !left.includes(i))) expect(holders.get(ino) ?? []).toEqual([]);
      expect((await other.listPools()).filter((p) => p.owner.pid === process.pid).map((p) => p.pools)).toEqual([[expect.objectContaining({ size: 4 })]]); // rt's only
    } finally {
      other.close();
    }
  });

  it('a process with a pool still ends by itself, and its exit releases the pool', async () => {
    const script = `
      const { Runtime } = require(${JSON.stringify(DIST)});
      (async () => {
        const rt = new Runtime({ stateDir: ${JSON.stringify(stateDir())}, pools: [{ network: 'none', size: 4 }] });
        await rt.poolsReady();
        await rt.createSandbox({ id: 'pool-exit', network: 'none' });
        await new Promise((r) => setTimeout(r, 300)); // lets the pool status be published
        console.log(JSON.stringify((await rt.listPools()).filter((p) => p.owner.pid === process.pid)));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 20_000 }); // no close(): the process must end on its own
    const mine = JSON.parse(stdout) as { file: string; pools: { fill: number }[] }[];
    expect(mine).toEqual([expect.objectContaining({ pools: [expect.objectContaining({ network: 'none', size: 4 })] })]);
    for (const p of mine) expect(existsSync(path.join(stateDir(), 'pools', p.file))).toBe(false);
    expect(await rt.get('pool-exit')).toMatchObject({ status: 'ready' });
    await rt.teardown('pool-exit');
  });

  it('gc in a fresh process removes what a SIGKILLed owner left of its pool', async () => {
    const script = `
      const { Runtime } = require(${JSON.stringify(DIST)});
      const { readdirSync, readlinkSync } = require('node:fs');
      const { native } = require(${JSON.stringify(path.join(DIST, 'addon'))});
      (async () => {
        const rt = new Runtime({ stateDir: ${JSON.stringify(stateDir())}, pools: [{ network: 'none', size: 6 }] });
        await rt.poolsReady();
        await rt.createSandbox({ id: 'pool-kept', network: 'none' });
        const half = await rt.createSandbox({ id: 'pool-half', network: 'none' });
        // As if the owner died between the warm create's state write and its bind mount.
        await native.netnsRemove(half.netnsPath);
        await rt.poolsReady();
        await new Promise((r) => setTimeout(r, 300)); // lets the pool status be published
        // (the namespace thread keeps an fd on its own namespace: the host's, left out)
        const inos = readdirSync('/proc/self/fd').map((f) => { try { return readlinkSync('/proc/self/fd/' + f); } catch { return ''; } })
          .filter((l) => l.startsWith('net:[') && l !== readlinkSync('/proc/self/ns/net')).map((l) => Number(l.slice(5, -1)));
        console.log(JSON.stringify({ inos }));
        setInterval(() => {}, 1000);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child.pid!);
    const line = await new Promise<string>((resolve, reject) => {
      let s = '';
      child.stdout!.on('data', (d) => {
        s += d;
        if (s.includes('\n')) resolve(s);
      });
      child.on('exit', () => reject(new Error(`child exited: ${s}`)));
    });
    const { inos } = JSON.parse(line) as { inos: number[] };
    expect(inos.length).toBeGreaterThanOrEqual(6);
    // The warm namespaces are held by the owner's fds and nothing else (no mount, no other process),
    // so the kernel frees them with the owner, however it ends.
    const fresh0 = new Runtime({ stateDir: stateDir() });
    const kept = statSync((await fresh0.get('pool-kept'))!.netnsPath!).ino;
    const holders = nsHolders();
    const pooled = inos.filter((i) => i !== kept);
    expect(pooled.length).toBeGreaterThanOrEqual(6);
    for (const ino of pooled) expect(holders.get(ino)).toEqual([`${child.pid}:fd`]);
    const fresh = new Runtime({ stateDir: stateDir() });
    expect((await fresh.listPools()).find((p) => p.owner.pid === child.pid)).toMatchObject({ ownerAlive: true, pools: [expect.objectContaining({ fill: 6 })] });
    child.kill('SIGKILL');
    await until(async () => (await fresh.listPools()).some((p) => p.owner.pid === child.pid && !p.ownerAlive), 'owner seen dead');
    const removed = await fresh.gc();
    expect(removed.pools).toContain(child.pid);
    expect(removed.sandboxes).toContain('pool-half');
    expect(removed.errors).toEqual([]);
    expect(await fresh.get('pool-half')).toBeUndefined();
    // A finished sandbox of the dead owner stays (sandboxes outlive their creator); its pool does not.
    expect(await fresh.get('pool-kept')).toMatchObject({ status: 'ready' });
    expect((await fresh.listPools()).find((p) => p.owner.pid === child.pid)).toBeUndefined();
    expect(netFds(child.pid!)).toEqual([]); // a dead process holds no fd
    await fresh.teardown('pool-kept');
    expect(nsfsMounts().filter((m) => m.includes(fresh.netnsPrefix))).toEqual([]);
  });

  it('`podnet pool` shows the pools of the processes using the state dir', async () => {
    const cliRt = new Runtime({ pools: [{ network: 'none', size: 3 }] }); // the CLI's default state dir
    try {
      await cliRt.poolsReady();
      await until(() => {
        const all = JSON.parse(execFileSync(process.execPath, [CLI, 'pool', '--json'], { encoding: 'utf8' })) as {
          owner: { pid: number };
          pools: { fill: number }[];
        }[];
        return all.some((p) => p.owner.pid === process.pid && p.pools[0].fill === 3);
      }, 'the pool in podnet pool --json');
      const table = execFileSync(process.execPath, [CLI, 'pool'], { encoding: 'utf8' });
      expect(table).toMatch(/^PID\s+NETWORK\s+SIZE\s+FILL\s+MAKING\s+HITS\s+MISSES\s+STATUS$/m);
      expect(table).toMatch(new RegExp(`^${process.pid}\\s+none\\s+3\\s+3\\s+0\\s+0\\s+0\\s+ok$`, 'm'));
    } finally {
      cliRt.close();
    }
    const after = JSON.parse(execFileSync(process.execPath, [CLI, 'pool', '--json'], { encoding: 'utf8' })) as { owner: { pid: number } }[];
    expect(after.some((p) => p.owner.pid === process.pid)).toBe(false);
  });
});
