/**
 * The runtime end to end on the real kernel and real plugins: modes, state
 * that survives the owner's crash, gc, and concurrency across processes.
 * Resources: network pn-rt-net (10.89.40.0/24, bridge pnrt0), netns podnet-rt*, ports 21000-21099.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { NetNS, PodnetError, Runtime } from '../../lib';
import { describeRoot, httpGet, ipNetnsList, uniqueName } from '../helpers/system';

const NET = 'pn-rt-net';
const run = promisify(execFile);

function iptablesHas(text: string): boolean {
  return execFileSync('iptables-save', { encoding: 'utf8' }).includes(text);
}

const SERVER = (port: number) => `require('http').createServer((q,s)=>s.end('ok '+q.socket.localAddress)).listen(${port},'0.0.0.0')`;

describeRoot('Runtime (root, bridge and other modes)', () => {
  let dir = '';
  let rt: Runtime;
  const opts = () => ({ stateDir: path.join(dir, 'state'), cni: { confDir: path.join(dir, 'net.d'), cacheDir: path.join(dir, 'cache') } });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'podnet-rt-'));
    rt = new Runtime(opts());
    await rt.cni.createNetwork({ name: NET, subnet: '10.89.40.0/24', bridge: 'pnrt0' });
  });

  afterAll(async () => {
    for (const s of await rt.list()) await rt.teardown(s.id).catch(() => {});
    await rt.cni.removeNetwork(NET).catch(() => {});
    try {
      execFileSync('ip', ['link', 'del', 'pnrt0'], { stdio: 'ignore' });
    } catch {
      /* not there */
    }
    rmSync(`/var/lib/cni/networks/${NET}`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('bridge: a server inside is reached through its published port, and teardown removes everything', async () => {
    const id = uniqueName('rt-br');
    const sb = await rt.createSandbox({ id, networks: [NET], portMappings: [{ hostPort: 21001, containerPort: 8000 }] });
    expect(sb.status).toBe('ready');
    expect(ipNetnsList()).toContain(path.basename(sb.netnsPath!));
    const server = await rt.spawn(id, process.execPath, ['-e', SERVER(8000)], { stdio: 'ignore' });
    try {
      expect(await httpGet(21001)).toMatch(/^ok 10\.89\.40\.\d+$/);
      // Named networks: addresses are per network (top-level fields empty, as Podman prints them).
      const inspect = await rt.inspect(id);
      expect(inspect.SandboxKey).toBe(sb.netnsPath);
      expect(inspect.Networks?.[NET]?.IPAddress).toMatch(/^10\.89\.40\.\d+$/);
      expect(inspect.Networks?.[NET]?.Gateway).toBe('10.89.40.1');
      expect(inspect.Networks?.[NET]?.MacAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(inspect.Ports['8000/tcp']).toEqual([{ HostIp: '', HostPort: '21001' }]);
      const stats = await rt.stats(id);
      expect(stats?.eth0.rxBytes).toBeGreaterThan(0);
    } finally {
      server.kill('SIGKILL');
      await rt.teardown(id);
    }
    expect(ipNetnsList()).not.toContain(path.basename(sb.netnsPath!));
    expect(await rt.get(id)).toBeUndefined();
    expect(iptablesHas(id)).toBe(false);
    await rt.teardown(id); // idempotent
  });

  it.each(['rootlesskit', 'slirp4netns'])('slirp4netns as root, port_handler=%s: hostPort 0 gets a free port that reaches the server', async (handler) => {
    const id = uniqueName('rt-slirp');
    const sb = await rt.createSandbox({
      id,
      network: 'slirp4netns',
      networkOptions: [`port_handler=${handler}`],
      portMappings: [{ hostPort: 0, containerPort: 8000 }],
    });
    const port = sb.portMappings[0].hostPort;
    expect(port).toBeGreaterThan(0);
    const server = await rt.spawn(id, process.execPath, ['-e', SERVER(8000)], { stdio: 'ignore' });
    try {
      expect(await httpGet(port)).toBe('ok 10.0.2.100');
      const inspect = await rt.inspect(id);
      expect(inspect.Ports['8000/tcp']).toEqual([{ HostIp: '', HostPort: String(port) }]);
      expect(inspect.IPAddress).toBe('');
      expect((await rt.stats(id))?.tap0.txPackets).toBeGreaterThan(0);
    } finally {
      server.kill('SIGKILL');
      await rt.teardown(id);
    }
    const pids = Object.values(sb.helpers).flatMap((h) => (h ? [h.pid] : []));
    expect(pids.length).toBeGreaterThan(0);
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    expect(existsSync(sb.netnsPath!)).toBe(false);
  });

  it('CNI sees the pod name at setup and teardown; a requested IP is used once, then the static one', async () => {
    const id = uniqueName('rt-pod');
    const ipOf = async () => (await rt.inspect(id)).Networks?.[NET]?.IPAddress;
    await rt.createSandbox({ id, podId: 'pn-rt-pod', networks: [NET], staticIP: '10.89.40.50', requestedIP: '10.89.40.60', staticMAC: '02:89:40:00:00:50' });
    try {
      const cache = JSON.parse(readFileSync(path.join(dir, 'cache', 'results', `${NET}-${id}-eth0`), 'utf8'));
      expect(cache.cniArgs).toContainEqual(['K8S_POD_NAME', 'pn-rt-pod']);
      expect(await ipOf()).toBe('10.89.40.60');
      expect((await rt.inspect(id)).Networks?.[NET]?.MacAddress).toBe('02:89:40:00:00:50');
      await rt.restartNetwork(id);
      expect(await ipOf()).toBe('10.89.40.50');
    } finally {
      await rt.teardown(id);
    }
    expect(existsSync(path.join(dir, 'cache', 'results', `${NET}-${id}-eth0`))).toBe(false);
    expect(readdirSync(`/var/lib/cni/networks/${NET}`)).not.toContain('10.89.40.50');
  });

  it('post-configure mode: networking for a process that made its own namespace', async () => {
    const proc = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
    const id = uniqueName('rt-pid');
    try {
      // Wait until unshare has made the process's own namespace.
      while (readlinkSync(`/proc/${proc.pid}/ns/net`) === readlinkSync('/proc/self/ns/net')) await new Promise((r) => setTimeout(r, 5));
      const sb = await rt.attachToPid(proc.pid!, { id, networks: [NET] });
      const ip = (await rt.inspect(id)).Networks?.[NET]?.IPAddress;
      const seen = execFileSync('nsenter', [`--net=/proc/${proc.pid}/ns/net`, 'ip', '-4', '-o', 'addr', 'show', 'eth0'], { encoding: 'utf8' });
      expect(seen).toContain(`inet ${ip}/24`);
      await rt.teardown(id);
      expect(existsSync(sb.netnsPath!)).toBe(false);
      expect(execFileSync('nsenter', [`--net=/proc/${proc.pid}/ns/net`, 'ip', '-o', 'link'], { encoding: 'utf8' })).not.toContain('eth0');
    } finally {
      await rt.teardown(id);
      proc.kill('SIGKILL');
    }
  });

  it('a joiner whose state is gone (its owner crashed) does not keep the joined sandbox from going', async () => {
    const none = await rt.createSandbox({ id: uniqueName('rt-none2'), network: 'none' });
    try {
      const joiner = await rt.createSandbox({ id: uniqueName('rt-join2'), network: `container:${none.id}` });
      rmSync(path.join(dir, 'state', 'sandboxes', `${joiner.id}.json`));
      await rt.teardown(none.id);
      expect(await rt.list()).not.toContainEqual(expect.objectContaining({ id: none.id }));
      expect(existsSync(none.netnsPath!)).toBe(false);
    } finally {
      await rt.teardown(none.id).catch(() => {});
    }
  });

  it('a state dir from before joiner marks: a sandbox joined then still keeps its target from going', async () => {
    const none = await rt.createSandbox({ id: uniqueName('rt-none3'), network: 'none' });
    const joiner = await rt.createSandbox({ id: uniqueName('rt-join3'), network: `container:${none.id}` });
    try {
      rmSync(path.join(dir, 'state', 'joiners'), { recursive: true }); // the layout an earlier podnet wrote
      const fresh = new Runtime(opts());
      await expect(fresh.teardown(none.id)).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringContaining(joiner.id) });
      await fresh.teardown(joiner.id);
      await fresh.teardown(none.id);
      expect(existsSync(none.netnsPath!)).toBe(false);
    } finally {
      await rt.teardown(joiner.id).catch(() => {});
      await rt.teardown(none.id).catch(() => {});
    }
  });

  it('none, host, ns:<path> and container:<id> modes', async () => {
    const none = await rt.createSandbox({ id: uniqueName('rt-none'), network: 'none' });
    const joiner = await rt.createSandbox({ id: uniqueName('rt-join'), network: `container:${none.id}` });
    const host = await rt.createSandbox({ id: uniqueName('rt-host'), network: 'host' });
    const own = await NetNS.create({ name: uniqueName('podnet-rt-own') });
    try {
      const byPath = await rt.createSandbox({ id: uniqueName('rt-ns'), network: `ns:${own.path}` });
      const links = execFileSync('ip', ['-n', path.basename(none.netnsPath!), '-o', 'link'], { encoding: 'utf8' })
        .trim()
        .split('\n');
      expect(links).toHaveLength(1);
      expect(links[0]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
      expect(joiner.netnsPath).toBe(none.netnsPath);
      // The owner of a shared namespace cannot go while others use it.
      await expect(rt.teardown(none.id)).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringContaining(joiner.id) });
      expect(await rt.stats(joiner.id)).toBeNull();
      expect(await rt.stats(none.id)).toBeNull();
      expect((await rt.inspect(joiner.id)).SandboxKey).toBe(none.netnsPath);
      expect(host.netnsPath).toBeUndefined();
      expect(byPath.netnsPath).toBe(own.path);
      await rt.teardown(byPath.id);
      expect(existsSync(own.path)).toBe(true); // not ours to remove
    } finally {
      await rt.teardown(joiner.id);
      await rt.teardown(none.id);
      await rt.teardown(host.id);
      await own.remove();
    }
    expect(existsSync(none.netnsPath!)).toBe(false);
  });

  it('refuses bad input before creating anything', async () => {
    const ours = () => ipNetnsList().filter((n) => n.startsWith(rt.netnsPrefix)); // other files run in parallel
    const before = ours().length;
    const bad: [object, string][] = [
      [{ id: 'bad/id' }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), network: 'bogus' }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), network: 'none', portMappings: [{ hostPort: 21002, containerPort: 80 }] }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), networks: [NET], portMappings: [{ hostPort: 70000, containerPort: 80 }] }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), network: 'container:nosuch' }, 'ERR_NO_SUCH_SANDBOX'],
      [{ id: uniqueName('rt-bad'), network: 'none', staticIP: '10.89.40.9' }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), network: 'slirp4netns', staticMAC: '02:00:00:00:00:01' }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), network: 'ns:/proc/self/ns/net', portMappings: [{ hostPort: 21003, containerPort: 80 }] }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), network: 'host', pid: process.pid }, 'ERR_INVALID_ARGUMENT'],
      [{ id: uniqueName('rt-bad'), podId: 'p', podName: 'bad name' }, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [o, code] of bad) {
      await expect(rt.createSandbox(o as never)).rejects.toMatchObject({ code });
    }
    expect(ours().length).toBe(before);
    expect(await rt.list()).toEqual([]);
    const id = uniqueName('rt-dup');
    await rt.createSandbox({ id, network: 'none' });
    await expect(rt.createSandbox({ id, network: 'none' })).rejects.toBeInstanceOf(PodnetError);
    await rt.teardown(id);
  });

  it('a crashed owner leaves sandboxes that a new process lists, inspects and tears down; gc cleans half-made ones', async () => {
    const prefix = uniqueName('rt-crash');
    const script = `
      const { Runtime } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))});
      const rt = new Runtime(${JSON.stringify(opts())});
      (async () => {
        for (let i = 0; i < 3; i++) await rt.createSandbox({ id: '${prefix}-' + i, networks: ['${NET}'] });
        await rt.createSandbox({ id: '${prefix}-run', networks: ['${NET}'], ephemeral: true });
        process.stdout.write('ready');
        setInterval(() => {}, 1000);
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`owner exited ${c}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const fresh = new Runtime(opts());
    // An ephemeral sandbox (podnet run) dies with its owner: gc collects it, and only it.
    const ephemeral = await fresh.get(`${prefix}-run`);
    expect((await fresh.gc()).sandboxes).toEqual([`${prefix}-run`]);
    expect(existsSync(ephemeral!.netnsPath!)).toBe(false);
    const listed = (await fresh.list()).filter((s) => s.id.startsWith(prefix));
    expect(listed.map((s) => s.id).sort()).toEqual([0, 1, 2].map((i) => `${prefix}-${i}`));
    expect(listed.every((s) => !s.ownerAlive && s.status === 'ready')).toBe(true);
    for (const s of listed) {
      expect((await fresh.inspect(s.id)).Networks?.[NET]?.IPAddress).toMatch(/^10\.89\.40\./);
      await fresh.teardown(s.id);
      expect(existsSync(s.netnsPath!)).toBe(false);
    }
    expect(readdirSync(`/var/lib/cni/networks/${NET}`).filter((f) => /^10\./.test(f))).toEqual([]);

    // Half-made: a state still 'creating' whose owner is dead, a stray podnet namespace, and one
    // with a CNI attachment (lease, veth, cache entry) but no state.
    const stray = await NetNS.create({ name: `${fresh.netnsPrefix}${prefix}-stray` });
    stray.close();
    const orphan = await NetNS.create({ name: `${fresh.netnsPrefix}${prefix}-orphan` });
    orphan.close();
    await fresh.cni.setUpPod({ id: `${prefix}-orphan`, netnsPath: orphan.path, networks: [NET] });
    const half = await NetNS.create({ name: `${fresh.netnsPrefix}${prefix}-half` });
    half.close();
    writeFileSync(
      path.join(opts().stateDir, 'sandboxes', `${prefix}-half.json`),
      JSON.stringify({
        version: 1,
        id: `${prefix}-half`,
        name: `${prefix}-half`,
        cniPodName: `${prefix}-half`,
        mode: 'none',
        status: 'creating',
        netnsPath: half.path,
        ownsNetns: true,
        networks: [],
        portMappings: [],
        networkOptions: [],
        results: [],
        owner: { pid: child.pid, start: 1 },
        helpers: {},
        createdAt: new Date().toISOString(),
      }),
    );
    const removed = await fresh.gc();
    expect(removed.sandboxes).toEqual([`${prefix}-half`]);
    expect(removed.cniAttachments).toEqual([`${NET}/${prefix}-orphan/eth0`]);
    expect(removed.namespaces.sort()).toEqual([orphan.path, stray.path].sort());
    expect([half.path, stray.path, orphan.path].filter((p) => existsSync(p))).toEqual([]);
    expect(readdirSync(`/var/lib/cni/networks/${NET}`).filter((f) => /^10\./.test(f))).toEqual([]);
    expect(await fresh.cni.cachedAttachments()).toEqual([]);
  });

  it('50 sandboxes created and torn down concurrently from two processes sharing the state dir', async () => {
    const prefix = uniqueName('rt-conc');
    const worker = (k: number) => `
      const { Runtime } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))});
      const rt = new Runtime(${JSON.stringify(opts())});
      const ids = Array.from({ length: 25 }, (_, i) => '${prefix}-${k}-' + i);
      (async () => {
        const made = await Promise.all(ids.map((id) => rt.createSandbox({ id, networks: ['${NET}'] })));
        const ips = await Promise.all(ids.map(async (id) => (await rt.inspect(id)).Networks['${NET}'].IPAddress));
        await Promise.all(ids.map((id) => rt.teardown(id)));
        process.stdout.write(JSON.stringify({ made: made.length, ips }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    // Both workers end (or are killed at the time limit) before anything is checked or cleaned up.
    const results = await Promise.allSettled(
      [0, 1].map((k) => run(process.execPath, ['-e', worker(k)], { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 150_000, killSignal: 'SIGKILL' })),
    );
    try {
      const parsed = results.map((r) => {
        if (r.status === 'rejected') throw r.reason;
        return JSON.parse(r.value.stdout) as { made: number; ips: string[] };
      });
      const ips = parsed.flatMap((p) => p.ips);
      expect(parsed.map((p) => p.made)).toEqual([25, 25]);
      expect(new Set(ips).size).toBe(50);
      expect((await rt.list()).filter((s) => s.id.startsWith(prefix))).toEqual([]);
      expect(ipNetnsList().filter((n) => n.includes(prefix))).toEqual([]);
      expect(readdirSync(`/var/lib/cni/networks/${NET}`).filter((f) => /^10\./.test(f))).toEqual([]);
    } finally {
      // A worker that failed half-way leaves sandboxes (state, namespace, lease, rules): remove them.
      const left = (await rt.list()).filter((s) => s.id.startsWith(prefix));
      await Promise.all(left.map((s) => rt.teardown(s.id, { force: true }).catch(() => {})));
    }
  }, 180_000);
});

describe('podnet CLI (root)', () => {
  const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

  it('usage errors exit 2 with the reason and the usage; --help exits 0', async () => {
    const r = await run(process.execPath, [cli, 'bogus']).catch((e) => e);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'bogus'/);
    expect(r.stderr).toMatch(/Usage: podnet/);
    const p = await run(process.execPath, [cli, 'run', '-p', 'x:80', '--', 'true']).catch((e) => e);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/host port 'x'/);
    for (const sub of ['run', 'demo', 'netns', 'network', 'inspect', 'stats', 'gc']) {
      expect((await run(process.execPath, [cli, sub, '--help'])).stdout).toMatch(/^Usage: podnet/);
    }
    for (const sub of ['inspect', 'stats']) {
      const missing = await run(process.execPath, [cli, sub, 'no-such-sandbox']).catch((e) => e);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no sandbox 'no-such-sandbox'.*\(ERR_NO_SUCH_SANDBOX\)/);
    }
  });
});
