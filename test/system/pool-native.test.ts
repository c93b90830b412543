/**
 * Pools of warm sandboxes on a native network: a pooled sandbox is a cold
 * one (state, inspect, stats, a real server reached through its published
 * port, restart, teardown from a fresh process leaving nothing), a static IP
 * is served cold, a burst larger than the pool succeeds, list() hides pool
 * entries, close() releases them, and gc in a fresh process releases what a
 * SIGKILLed owner's pool held.
 * Resources: native network np-net 10.89.112.0/24, host ports 46300-46399, sandbox ids np-*.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';

import { Runtime, type SandboxState } from '../../lib';
import { describeRoot } from '../helpers/system';

jest.setTimeout(180_000);

const ECHO = path.join(__dirname, '..', 'fixtures', 'native', 'echo.py');
const DIST = path.join(__dirname, '..', '..', 'dist');
const NET = 'np-net';
const SUBNET = '10.89.112.';
const dir = mkdtempSync(path.join(os.tmpdir(), 'np-'));
const opts = {
  stateDir: path.join(dir, 'state'),
  cni: { confDir: path.join(dir, 'net.d'), cacheDir: path.join(dir, 'cache') },
  native: { networksDir: path.join(dir, 'networks'), stateDir: path.join(dir, 'ipam') },
};
const IPAM = path.join(opts.native.stateDir, 'networks', NET);

const leases = () => readdirSync(IPAM).filter((f) => net.isIP(f) !== 0);
const records = () => readdirSync(path.join(IPAM, 'attachments')).filter((f) => f.endsWith('.json'));
const elements = () =>
  execFileSync('nft', ['list', 'map', 'inet', 'podnet', 'hp4'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(SUBNET));
const routes = () =>
  execFileSync('ip', ['-o', 'route', 'show', 'root', `${SUBNET}0/24`], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.trim());
/** Host ends of this network's veth pairs: the links its host routes go through. */
const hostLinks = (names: string[]) => names.filter((n) => existsSync(`/sys/class/net/${n}`));

/** An address of this host that is not loopback and not podnet's. */
function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.89.')) return a.address;
  throw new Error('no host address');
}

async function tcpClient(host: string, port: number): Promise<string> {
  const { stdout } = await promisify(execFile)('/usr/bin/python3', [ECHO, 'tcp', host, String(port)]);
  return stdout.trim();
}

/** Retries `fn` until it resolves (the server in the sandbox is starting), 10 s at most. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Waits until `cond` holds (the kernel frees a removed namespace's veth pair in its cleanup worker), 10 s at most. */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`still not true after 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `code` with a fresh Runtime `rt` in another process. */
function fresh(code: string): string {
  return execFileSync(
    process.execPath,
    [
      '-e',
      `const { Runtime } = require(${JSON.stringify(DIST)}); const rt = new Runtime(${JSON.stringify(opts)}); (async () => { ${code} })().catch((e) => { console.error(e); process.exit(1); });`,
    ],
    { encoding: 'utf8' },
  );
}

/** A state or inspect output with what differs between any two sandboxes (ids, addresses, MACs, link names, ports) masked. */
function shape(x: unknown): unknown {
  return JSON.parse(
    JSON.stringify(x)
      .replace(/np-[a-z]+-[a-z0-9]+/g, 'ID')
      .replace(/podnet-[0-9a-f]{8}-(_[0-9.]+|ID)/g, 'NS')
      .replace(/10\.89\.112\.\d+/g, 'IP')
      .replace(/([0-9a-f]{2}:){5}[0-9a-f]{2}/g, 'MAC')
      .replace(/pn[0-9a-f]{13}/g, 'HOSTIF')
      .replace(/"?4630\d"?/g, '"PORT"')
      .replace(/"createdAt":"[^"]+"/, '"createdAt":"T"')
      .replace(/"start":\d+/g, '"start":0'),
  );
}

describeRoot('warm sandbox pools on a native network (root)', () => {
  let rt: Runtime;
  const children: number[] = [];

  beforeAll(async () => {
    rt = new Runtime({ ...opts, pools: [] });
    await rt.native.create({ name: NET, subnet: `${SUBNET}0/24` });
    rt.startPool({ network: NET, size: 2 });
  });

  afterAll(async () => {
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await rt.close().catch(() => undefined);
    const clean = new Runtime(opts);
    for (const s of await clean.list()) await clean.teardown(s.id, { force: true }).catch(() => undefined);
    await clean.gc().catch(() => undefined);
    await clean.native.remove(NET, { force: true }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('bad pool input is refused with a typed error before anything is made', () => {
    expect(() => rt.startPool({ network: 'np-nosuch', size: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => rt.startPool({ network: 'bad name!', size: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(rt.poolStatus().map((p) => p.network)).toEqual([NET]);
  });

  test('list() shows no pool entry; each entry holds an attachment without ports', async () => {
    await rt.poolsReady();
    expect(rt.poolStatus()).toEqual([expect.objectContaining({ network: NET, size: 2, fill: 2, making: 0 })]);
    expect(await rt.list()).toEqual([]);
    expect(leases()).toHaveLength(2);
    expect(records()).toHaveLength(2);
    expect(records().every((r) => r.startsWith(`${rt.netnsPrefix}_${process.pid}.`))).toBe(true);
    expect(elements()).toEqual([]);
  });

  test('a pooled sandbox is a cold one: state, inspect, stats, published port, restart, teardown from a fresh process', async () => {
    await rt.poolsReady();
    const cold = new Runtime(opts);
    const { hits } = rt.poolStatus()[0];
    const ports = (p: number) => [{ hostPort: p, containerPort: 8080, protocol: 'tcp' }];
    const w = await rt.createSandbox({ id: 'np-same-w', networks: [NET], portMappings: ports(46300) });
    const c = await cold.createSandbox({ id: 'np-same-c', networks: [NET], portMappings: ports(46301) });
    expect(rt.poolStatus()[0].hits).toBe(hits + 1);
    expect(w.nativeContainerId).toMatch(new RegExp(`^${rt.netnsPrefix}_${process.pid}\\.`));
    expect(c.nativeContainerId).toBeUndefined();
    const hostIfs = [w, c].map((s) => s.results[0].result.interfaces![0].name!);
    const servers = [w, c].map((s) => rt.spawn(s.id, '/usr/bin/python3', [ECHO, 'serve', '8080'], { stdio: 'ignore' }));
    try {
      const noId = (s: SandboxState) => ({ ...s, nativeContainerId: undefined });
      expect(shape(noId((await rt.get('np-same-w'))!))).toEqual(shape(noId((await rt.get('np-same-c'))!)));
      expect(w).toMatchObject({ status: 'ready', ownsNetns: true, driver: 'native', netnsPath: `/run/netns/${rt.netnsPrefix}np-same-w` });
      const [iw, ic] = [await rt.inspect('np-same-w'), await cold.inspect('np-same-c')];
      expect(shape(iw)).toEqual(shape(ic));
      expect(iw.Networks![NET].IPAddress.startsWith(SUBNET)).toBe(true);
      expect(iw.Ports['8080/tcp']).toEqual([{ HostIp: '', HostPort: '46300' }]);
      const [sw, sc] = [await rt.stats('np-same-w'), await rt.stats('np-same-c')];
      expect(Object.keys(sw!)).toEqual(Object.keys(sc!));
      expect(Object.keys(sw!)).toEqual(['eth0']);
      // A real server in each namespace through its published port, from 127.0.0.1 and from the host's address.
      for (const [port, s] of [
        [46300, 'np-same-w'],
        [46301, 'np-same-c'],
      ] as const) {
        expect(await eventually(() => tcpClient('127.0.0.1', port))).toMatch(/^hello /);
        expect(await eventually(() => tcpClient(hostAddress(), port))).toMatch(/^hello /);
        expect((await rt.get(s))!.status).toBe('ready');
      }
      // A host port held by another sandbox: the typed error, and the pooled create leaves nothing behind.
      const before = { leases: leases().length, records: records().length };
      await rt.poolsReady();
      await expect(rt.createSandbox({ id: 'np-same-x', networks: [NET], portMappings: ports(46301) })).rejects.toMatchObject({
        code: 'ERR_NATIVE_PORT_IN_USE',
      });
      expect(await rt.get('np-same-x')).toBeUndefined();
      expect(existsSync(`/run/netns/${rt.netnsPrefix}np-same-x`)).toBe(false);
      await rt.poolsReady();
      expect({ leases: leases().length, records: records().length }).toEqual(before);
      // restartNetwork: a working network again on the same port.
      await rt.restartNetwork('np-same-w');
      expect((await rt.get('np-same-w'))!.nativeContainerId).toBe(w.nativeContainerId);
      expect(await eventually(() => tcpClient('127.0.0.1', 46300))).toMatch(/^hello /);
    } finally {
      for (const s of servers) (await s).kill('SIGKILL');
      fresh(`await rt.teardown('np-same-w'); await rt.teardown('np-same-c');`);
      cold.close();
    }
    for (const s of [w, c]) {
      expect(await rt.get(s.id)).toBeUndefined();
      expect(existsSync(s.netnsPath!)).toBe(false);
    }
    await until('host ends gone', () => hostLinks(hostIfs).length === 0);
    await rt.poolsReady();
    expect(elements()).toEqual([]);
    expect(leases()).toHaveLength(2); // the pool's two entries, nothing else
    expect(records()).toHaveLength(2);
    expect(routes()).toHaveLength(2);
    await expect(tcpClient('127.0.0.1', 46300)).rejects.toThrow();
  });

  test('publishing ports on an existing attachment: typed errors change nothing; detach removes what was added', async () => {
    const s = await rt.createSandbox({ id: 'np-add', networks: [NET], portMappings: [{ hostPort: 46312, containerPort: 80 }] });
    const cid = s.nativeContainerId ?? `${rt.netnsPrefix}np-add`;
    const port = (hostPort: number, extra: object = {}) => ({ protocol: 'tcp' as const, hostIp: '', hostPort, containerPort: 81, range: 1, ...extra });
    try {
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'no error',
          (e: { code: string }) => e.code,
        );
      expect(await code(rt.native.addPorts(NET, cid, 'eth0', [port(46312)]))).toBe('ERR_INVALID_ARGUMENT'); // its own port again
      expect(await code(rt.native.addPorts(NET, cid, 'eth0', [port(46313, { range: 0 })]))).toBe('ERR_INVALID_ARGUMENT');
      expect(await code(rt.native.addPorts(NET, cid, 'eth0', [port(46313, { hostIp: 'fd00::1' })]))).toBe('ERR_INVALID_ARGUMENT'); // no IPv6 subnet
      expect(await code(rt.native.addPorts(NET, `${rt.netnsPrefix}np-none`, 'eth0', [port(46313)]))).toBe('ENOENT');
      const other = await rt.createSandbox({ id: 'np-add2', networks: [NET], portMappings: [{ hostPort: 46314, containerPort: 80 }] });
      try {
        expect(await code(rt.native.addPorts(NET, cid, 'eth0', [port(46313), port(46314)]))).toBe('ERR_NATIVE_PORT_IN_USE');
        expect(elements()).toHaveLength(2); // 46313 was not added either
      } finally {
        await rt.teardown(other.id);
      }
      const a = await rt.native.addPorts(NET, cid, 'eth0', [port(46313)]);
      expect(a.ports.map((p) => p.hostPort)).toEqual([46312, 46313]);
      expect(elements()).toHaveLength(2);
    } finally {
      await rt.teardown('np-add');
    }
    expect(elements()).toEqual([]);
  });

  test("a create on the default network takes from that network's pool", async () => {
    const def = new Runtime({ ...opts, cni: { ...opts.cni, defaultNetwork: NET }, pools: [{ network: NET, size: 1 }] });
    try {
      await def.poolsReady();
      expect(def.poolStatus()[0]).toMatchObject({ fill: 1 });
      expect(def.poolStatus()[0].lastError).toBeUndefined();
      const s = await def.createSandbox({ id: 'np-default', portMappings: [{ hostPort: 46315, containerPort: 8080 }] });
      const server = await def.spawn(s.id, '/usr/bin/python3', [ECHO, 'serve', '8080'], { stdio: 'ignore' });
      try {
        expect(def.poolStatus()[0]).toMatchObject({ hits: 1, misses: 0 });
        expect(s).toMatchObject({ mode: 'bridge', driver: 'native', networks: [], status: 'ready' });
        expect(s.nativeContainerId).toMatch(new RegExp(`^${def.netnsPrefix}_${process.pid}\\.`));
        expect((await def.inspect(s.id)).IPAddress.startsWith(SUBNET)).toBe(true); // the default network at the top level, as Podman shows it
        expect(await eventually(() => tcpClient('127.0.0.1', 46315))).toMatch(/^hello /);
      } finally {
        server.kill('SIGKILL');
        await def.teardown(s.id);
      }
    } finally {
      await def.close();
    }
    expect(elements()).toEqual([]);
  });

  test('a static IP or MAC is served by a cold create; the pool is left alone', async () => {
    await rt.poolsReady();
    const before = rt.poolStatus()[0];
    const s = await rt.createSandbox({ id: 'np-static', networks: [NET], staticIP: `${SUBNET}200`, portMappings: [{ hostPort: 46310, containerPort: 80 }] });
    const m = await rt.createSandbox({ id: 'np-mac', networks: [NET], staticMAC: '02:00:00:00:70:01' });
    try {
      expect(rt.poolStatus()[0]).toMatchObject({ hits: before.hits, misses: before.misses, fill: 2 });
      expect(s.nativeContainerId).toBeUndefined();
      expect(s.results[0].result.ips![0].address).toBe(`${SUBNET}200/24`);
      expect(m.results[0].result.interfaces![1].mac).toBe('02:00:00:00:70:01');
    } finally {
      await rt.teardown('np-static');
      await rt.teardown('np-mac');
    }
  });

  test('a burst larger than the pool succeeds: the pool once, then cold creates, every address distinct', async () => {
    await rt.poolsReady();
    const { hits, misses } = rt.poolStatus()[0];
    const ids = Array.from({ length: 6 }, (_, i) => `np-burst-${i}`);
    const made = await Promise.all(ids.map((id, i) => rt.createSandbox({ id, networks: [NET], portMappings: [{ hostPort: 46320 + i, containerPort: 80 }] })));
    try {
      expect(rt.poolStatus()[0]).toMatchObject({ hits: hits + 2, misses: misses + 4 });
      const ips = made.map((s) => s.results[0].result.ips![0].address);
      expect(new Set(ips).size).toBe(6);
      expect(elements()).toHaveLength(6);
      expect(new Set(made.map((s) => s.nativeContainerId ?? s.id)).size).toBe(6);
    } finally {
      await Promise.all(ids.map((id) => rt.teardown(id)));
    }
    expect(elements()).toEqual([]);
  });

  test('close() releases the pool: leases, records, links, routes', async () => {
    const other = new Runtime({ ...opts, pools: [{ network: NET, size: 3 }] });
    let closed = false;
    try {
      await other.poolsReady();
      await rt.poolsReady();
      const mine = records().filter((r) => r.includes(`_${process.pid}.`));
      expect(mine).toHaveLength(5); // rt's 2 and other's 3
      const links = leases().length;
      expect(links).toBe(5);
      await other.close();
      closed = true;
      expect(other.poolStatus()).toEqual([]);
      expect(leases()).toHaveLength(2);
      expect(records()).toHaveLength(2);
      await until('the released entries have no route', () => routes().length === 2);
    } finally {
      if (!closed) await other.close();
    }
  });

  test('gc in a fresh process releases what a SIGKILLed owner left: entries, half-made creates', async () => {
    await rt.poolsReady();
    const ours = { leases: leases().length, records: records().length, routes: routes().length };
    // One owner killed while idle with a full pool and a finished sandbox, others killed while creating.
    for (const delay of [null, 40, 120]) {
      const script = `
        const { Runtime } = require(${JSON.stringify(DIST)});
        const rt = new Runtime(${JSON.stringify({ ...opts, pools: [{ network: NET, size: 3 }] })});
        (async () => {
          await rt.poolsReady();
          await rt.createSandbox({ id: 'np-kept-${delay}', networks: ['${NET}'], portMappings: [{ hostPort: 46340, containerPort: 80 }] });
          process.stdout.write('ready\\n');
          ${delay === null ? 'setInterval(() => {}, 1000);' : `for (let i = 0; ; i++) await rt.createSandbox({ id: 'np-loop-${delay}-' + i, networks: ['${NET}'], portMappings: [{ hostPort: 46350 + (i % 8), containerPort: 80 }] }).then(() => rt.teardown('np-loop-${delay}-' + i));`}
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child.pid!);
      await new Promise((resolve, reject) => {
        child.stdout!.once('data', resolve);
        child.once('exit', () => reject(new Error('child exited early')));
      });
      if (delay !== null) await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const out = JSON.parse(
        fresh(
          `const r = await rt.gc(); const s = await rt.get('np-kept-${delay}'); const ids = (await Promise.all((await rt.list()).map((l) => rt.get(l.id)))).map((x) => x.nativeContainerId); console.log(JSON.stringify({ errors: r.errors.map(String), released: r.nativeReleased, kept: s && s.status, ids }));`,
        ),
      ) as { errors: string[]; released: number; kept?: string; ids: (string | null)[] };
      expect(out.errors).toEqual([]);
      expect(out.released).toBeGreaterThan(0);
      // A finished sandbox of the dead owner stays (sandboxes outlive their creator), with its lease; its pool does not.
      expect(out.kept).toBe('ready');
      // Of the dead owner's entries, only those that became sandboxes keep their attachment.
      expect(
        records()
          .filter((r) => r.includes(`_${child.pid}.`))
          .sort(),
      ).toEqual(
        out.ids
          .filter((i) => i !== null)
          .map((i) => `${i}:eth0.json`)
          .sort(),
      );
      fresh(`for (const s of await rt.list()) await rt.teardown(s.id); const r = await rt.gc(); if (r.errors.length) throw r.errors[0];`);
      expect(await rt.list()).toEqual([]);
      expect(leases()).toHaveLength(ours.leases);
      expect(records()).toHaveLength(ours.records);
      expect(elements()).toEqual([]);
      await until('only our entries are routed', () => routes().length === ours.routes);
    }
    // Our own live entries were never a candidate.
    expect(rt.poolStatus()[0]).toMatchObject({ fill: 2 });
    expect(records().every((r) => r.includes(`_${process.pid}.`))).toBe(true);
  });
});
