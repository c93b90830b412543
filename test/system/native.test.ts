/**
 * Native networks (csrc/core/native through lib/native) on the real kernel:
 * routed veths, nftables table `inet podnet`, IPAM on disk.
 * Resources: networks nat-*, subnets 10.89.144.0/24-10.89.155.0/24 and
 * fd00:89:144::/64, host ports 43100-43999 and 44000-44199, namespaces in a private dir.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NativeNetworks, NetNS, PodnetError } from '../../lib';
import { native } from '../../lib/addon';
import { describeRoot } from '../helpers/system';

jest.setTimeout(120000);

const ECHO = path.join(__dirname, '..', 'fixtures', 'native', 'echo.py');
const MANY = path.join(__dirname, '..', 'fixtures', 'native', 'attach-many.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'nat-'));
const networksDir = path.join(tmp, 'networks');
const stateDir = path.join(tmp, 'state');
const nsDir = '/run/netns';
const nets = new NativeNetworks({ networksDir, stateDir });
const REMOTE_IF = `natr${process.pid % 100000}`;
const remoteName = `nat-remote-${process.pid}`;
const servers: ChildProcess[] = [];
const namespaces: NetNS[] = [];
const attached: { network: string; id: string }[] = [];

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A client run inside namespace `ns` (a path), or on the host when null: what the server answered. */
async function client(ns: string | null, kind: 'tcp' | 'udp', host: string, port: number): Promise<string> {
  const args = ['/usr/bin/python3', ECHO, kind, host, String(port)];
  const { stdout } = ns === null ? await promisify(execFile)(args[0], args.slice(1)) : await promisify(execFile)('nsenter', [`--net=${ns}`, ...args]);
  return stdout.trim();
}

async function reachable(ns: string | null, kind: 'tcp' | 'udp', host: string, port: number): Promise<boolean> {
  return client(ns, kind, host, port).then(
    () => true,
    () => false,
  );
}

/** Starts the echo server inside `ns` on `port`; resolves once it listens. */
function serve(ns: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn('nsenter', [`--net=${ns}`, '/usr/bin/python3', ECHO, 'serve', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(p);
    p.stdout!.once('data', () => resolve(p));
    p.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

let seq = 0;
async function sandbox(network: string, extra: Partial<Parameters<NativeNetworks['attach']>[0]> = {}) {
  const id = `nat-${process.pid}-${seq++}`;
  const ns = await NetNS.create({ dir: nsDir, name: id });
  namespaces.push(ns);
  await ns.setLoopbackUp();
  const a = await nets.attach({ network, containerId: id, ifname: 'eth0', netnsPath: ns.path, ...extra });
  attached.push({ network, id });
  return { id, ns, a, ip: a.ips[0].address.split('/')[0] };
}

function leases(network: string): string[] {
  try {
    return readdirSync(path.join(stateDir, 'networks', network)).filter((f) => net.isIP(f) !== 0);
  } catch {
    return [];
  }
}

/** nftables port-map elements whose target is inside `prefix` (a string prefix of the address). */
function elements(prefix: string): number {
  let out = '';
  for (const m of ['hp4', 'hp6', 'hpa4', 'hpa6']) {
    try {
      out += run('nft', ['list', 'map', 'inet', 'podnet', m]);
    } catch {
      /* no table */
    }
  }
  return out.split(/[{},]/).filter((e) => e.includes(`: ${prefix}`)).length;
}

function hostRoutes(subnet: string): number {
  return run('ip', ['-o', 'route', 'show', 'root', subnet]).split('\n').filter(Boolean).length;
}

function podnetLinks(): string[] {
  return readdirSync('/sys/class/net').filter((n) => /^pn[0-9a-f]{13}$/.test(n));
}

describeRoot('native networks', () => {
  beforeAll(async () => {
    await nets.create({ name: 'nat-a', subnet: '10.89.144.0/24', ipv6Subnet: 'fd00:89:144::/64' });
    await nets.create({ name: 'nat-b', subnet: '10.89.145.0/24' });
    await nets.create({ name: 'nat-i', subnet: '10.89.146.0/24', internal: true });
    await nets.create({ name: 'nat-o1', subnet: '10.89.147.0/24', isolate: false });
    await nets.create({ name: 'nat-o2', subnet: '10.89.148.0/24', isolate: false });
    // Another host: a namespace behind a veth, host side 10.89.150.1.
    run('ip', ['netns', 'add', remoteName]);
    run('ip', ['link', 'add', REMOTE_IF, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', remoteName]);
    run('ip', ['addr', 'add', '10.89.150.1/24', 'dev', REMOTE_IF]);
    run('ip', ['link', 'set', REMOTE_IF, 'up']);
    run('ip', ['-n', remoteName, 'addr', 'add', '10.89.150.2/24', 'dev', 'eth0']);
    run('ip', ['-n', remoteName, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', remoteName, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', remoteName, 'route', 'add', 'default', 'via', '10.89.150.1']);
    await serve(`/run/netns/${remoteName}`, 80);
  });

  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL');
    for (const { network, id } of attached) await nets.detach(network, id, 'eth0').catch(() => undefined);
    for (const ns of namespaces) await ns.remove().catch(() => undefined);
    for (const n of nets.list()) await nets.remove(n.name, { force: true }).catch(() => undefined);
    try {
      run('ip', ['link', 'del', REMOTE_IF]);
    } catch {
      /* gone */
    }
    try {
      run('ip', ['netns', 'del', remoteName]);
    } catch {
      /* gone */
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('network definitions: bad input is typed and writes nothing', async () => {
    const before = nets.list().length;
    await expect(nets.create({ name: 'nat-ov', subnet: '10.89.144.128/25' })).rejects.toMatchObject({ code: 'ERR_NATIVE_SUBNET_OVERLAP' });
    await expect(nets.create({ name: 'nat-ov', subnet: '10.89.152.0/33' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.create({ name: 'nat-ov', subnet: '10.89.152.1/24' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.create({ name: 'nat-ov', subnet: '10.89.152.0/24', gateway: '10.89.153.1' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.create({ name: 'nat-a', subnet: '10.89.152.0/24' })).rejects.toMatchObject({ code: 'ERR_NATIVE_NETWORK_EXISTS' });
    await expect(nets.create({ name: 'bad/name', subnet: '10.89.152.0/24' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(nets.list()).toHaveLength(before);
  });

  test('two sandboxes talk; a sandbox reaches the host and, masqueraded, another host', async () => {
    const s1 = await sandbox('nat-a');
    const s2 = await sandbox('nat-a');
    expect(s1.ip).not.toBe(s2.ip);
    await serve(s1.ns.path, 80);
    expect(await client(s2.ns.path, 'tcp', s1.ip, 80)).toBe(`hello ${s2.ip}`);
    expect(await client(s2.ns.path, 'udp', s1.ip, 80)).toBe(`pong ${s2.ip}`);
    // IPv6 between sandboxes
    const v6 = s1.a.ips[1].address.split('/')[0];
    expect(await client(s2.ns.path, 'tcp', v6, 80)).toBe(`hello ${s2.a.ips[1].address.split('/')[0]}`);
    // the host, at the gateway address
    const srv = net.createServer((c) => c.end(`hello ${c.remoteAddress}`));
    await new Promise<void>((r) => srv.listen(44090, '10.89.144.1', r));
    try {
      expect(await client(s1.ns.path, 'tcp', '10.89.144.1', 44090)).toBe(`hello ${s1.ip}`);
    } finally {
      srv.close();
    }
    // another host sees the host's address (masquerade)
    expect(await client(s1.ns.path, 'tcp', '10.89.150.2', 80)).toBe('hello 10.89.150.1');
  });

  test('published tcp and udp ports: from the host, 127.0.0.1, another host, IPv6, hairpin', async () => {
    const s = await sandbox('nat-a', {
      ports: [
        { protocol: 'tcp', hostIp: '', hostPort: 44001, containerPort: 8080, range: 1 },
        { protocol: 'udp', hostIp: '', hostPort: 44001, containerPort: 8080, range: 1 },
        { protocol: 'tcp', hostIp: '', hostPort: 44010, containerPort: 8090, range: 3 },
        { protocol: 'tcp', hostIp: '10.89.150.1', hostPort: 44020, containerPort: 8080, range: 1 },
      ],
    });
    await serve(s.ns.path, 8080);
    await serve(s.ns.path, 8092);
    expect(await client(null, 'tcp', '10.89.150.1', 44001)).toMatch(/^hello /);
    expect(await client(null, 'tcp', '127.0.0.1', 44001)).toMatch(/^hello /);
    expect(await client(null, 'udp', '127.0.0.1', 44001)).toMatch(/^pong /);
    expect(await client(null, 'tcp', 'fd00:89:144::1', 44001)).toMatch(/^hello /);
    expect(await client(null, 'tcp', '127.0.0.1', 44012)).toMatch(/^hello /); // range: 44012 -> 8092
    expect(await client(`/run/netns/${remoteName}`, 'tcp', '10.89.150.1', 44001)).toBe('hello 10.89.150.2');
    expect(await client(`/run/netns/${remoteName}`, 'udp', '10.89.150.1', 44001)).toBe('pong 10.89.150.2');
    expect(await client(`/run/netns/${remoteName}`, 'tcp', '10.89.150.1', 44020)).toBe('hello 10.89.150.2');
    // the host-IP mapping answers only on its address
    expect(await reachable(null, 'tcp', '127.0.0.1', 44020)).toBe(false);
    // hairpin: the sandbox through its own published port
    expect(await client(s.ns.path, 'tcp', '10.89.150.1', 44001)).toMatch(/^hello /);
    await nets.check('nat-a', s.id, 'eth0', s.ns.path);
    // the same host port for another sandbox: typed, nothing left behind
    const leasesBefore = leases('nat-a').length;
    const ns = await NetNS.create({ dir: nsDir, name: `nat-${process.pid}-dup` });
    namespaces.push(ns);
    await expect(
      nets.attach({
        network: 'nat-a',
        containerId: 'nat-dup',
        ifname: 'eth0',
        netnsPath: ns.path,
        ports: [{ protocol: 'tcp', hostIp: '', hostPort: 44011, containerPort: 80, range: 1 }],
      }),
    ).rejects.toMatchObject({ code: 'ERR_NATIVE_PORT_IN_USE' });
    expect(podnetLinks()).not.toContain(native.nativeHostIfname('nat-a', 'nat-dup', 'eth0'));
    expect(leases('nat-a').length).toBe(leasesBefore);
    // teardown from a fresh process removes the elements, link, route and leases
    const count = elements('10.89.144.');
    execFileSync(process.execPath, [
      '-e',
      `
      const { NativeNetworks } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))});
      new NativeNetworks(${JSON.stringify({ networksDir, stateDir })}).detach('nat-a', ${JSON.stringify(s.id)}, 'eth0').catch((e) => { console.error(e); process.exit(1); });
    `,
    ]);
    expect(elements('10.89.144.')).toBe(count - 6); // 6 IPv4 elements (the IPv6 ones are not counted)
    expect(podnetLinks()).not.toContain(s.a.hostIfname);
    expect(leases('nat-a')).not.toContain(s.ip);
    expect(await reachable(null, 'tcp', '127.0.0.1', 44001)).toBe(false);
    await nets.detach('nat-a', s.id, 'eth0'); // idempotent
  });

  test('internal networks have no way out; networks are isolated unless both allow it', async () => {
    const i1 = await sandbox('nat-i');
    const i2 = await sandbox('nat-i');
    await serve(i1.ns.path, 80);
    expect(await client(i2.ns.path, 'tcp', i1.ip, 80)).toBe(`hello ${i2.ip}`);
    expect(await reachable(i2.ns.path, 'tcp', '10.89.150.2', 80)).toBe(false);
    const a = await sandbox('nat-a');
    const b = await sandbox('nat-b');
    await serve(b.ns.path, 80);
    expect(await reachable(a.ns.path, 'tcp', b.ip, 80)).toBe(false);
    expect(await reachable(a.ns.path, 'tcp', i1.ip, 80)).toBe(false);
    const o1 = await sandbox('nat-o1');
    const o2 = await sandbox('nat-o2');
    await serve(o2.ns.path, 80);
    expect(await client(o1.ns.path, 'tcp', o2.ip, 80)).toBe(`hello ${o1.ip}`);
    expect(await reachable(o1.ns.path, 'tcp', b.ip, 80)).toBe(false); // nat-b isolates
  });

  test('a range of 900 ports over tcp and udp, v4 and v6 (5400 elements, several messages in one transaction): published, refused whole to another sandbox, removed whole', async () => {
    const ports = (['tcp', 'udp'] as const).flatMap((protocol) => [
      { protocol, hostIp: '', hostPort: 43100, containerPort: 43100, range: 900 },
      { protocol, hostIp: '::1', hostPort: 43100, containerPort: 43100, range: 900 },
    ]);
    const before = elements('fd00:89:144:') + elements('10.89.144.');
    const s = await sandbox('nat-a', { ports });
    expect(elements('fd00:89:144:') + elements('10.89.144.') - before).toBe(3 * 2 * 900); // hp4, hp6, hpa6; tcp and udp
    // The same range again (two messages of one transaction): refused whole with the port's code, nothing added.
    const ns = await NetNS.create({ dir: nsDir, name: `nat-${process.pid}-range` });
    namespaces.push(ns);
    await expect(
      nets.attach({
        network: 'nat-a',
        containerId: 'nat-range2',
        ifname: 'eth0',
        netnsPath: ns.path,
        ports: [{ protocol: 'udp', hostIp: '::1', hostPort: 43100, containerPort: 80, range: 900 }],
      }),
    ).rejects.toMatchObject({ code: 'ERR_NATIVE_PORT_IN_USE' });
    expect(elements('fd00:89:144:') + elements('10.89.144.') - before).toBe(3 * 2 * 900);
    await nets.detach('nat-a', s.id, 'eth0', s.ns.path);
    expect(elements('fd00:89:144:') + elements('10.89.144.')).toBe(before);
  });

  test('static IP and MAC; taken, reserved and outside addresses are typed errors', async () => {
    const s = await sandbox('nat-b', { staticIps: ['10.89.145.77'], mac: '02:11:22:33:44:55' });
    expect(s.a.ips[0].address).toBe('10.89.145.77/24');
    const shown = run('ip', ['-n', path.basename(s.ns.path), 'addr', 'show', 'eth0']);
    expect(shown).toContain('10.89.145.77/24');
    expect(shown).toContain('02:11:22:33:44:55');
    const ns = await NetNS.create({ dir: nsDir, name: `nat-${process.pid}-st` });
    namespaces.push(ns);
    const req = { network: 'nat-b', containerId: 'nat-st', ifname: 'eth0', netnsPath: ns.path };
    await expect(nets.attach({ ...req, staticIps: ['10.89.145.77'] })).rejects.toMatchObject({ code: 'ERR_NATIVE_ADDRESS_IN_USE' });
    await expect(nets.attach({ ...req, staticIps: ['10.89.99.7'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.attach({ ...req, staticIps: ['10.89.145.1'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.attach({ ...req, mac: '01:00:00:00:00:01' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.attach({ ...req, network: 'nat-none' })).rejects.toMatchObject({ code: 'ERR_NATIVE_NETWORK_NOT_FOUND' });
    await expect(nets.attach({ ...req, netnsPath: '/proc/self/ns/pid' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(nets.attach({ ...req, ports: [{ protocol: 'icmp' as 'tcp', hostIp: '', hostPort: 1, containerPort: 1, range: 1 }] })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    expect(podnetLinks()).not.toContain(native.nativeHostIfname('nat-b', 'nat-st', 'eth0'));
    expect(leases('nat-b')).toEqual(expect.not.arrayContaining(['10.89.145.2', '10.89.145.3']));
  });

  test('an exhausted pool is a typed error', async () => {
    await nets.create({ name: 'nat-tiny', subnet: '10.89.151.0/30' });
    await sandbox('nat-tiny');
    const ns = await NetNS.create({ dir: nsDir, name: `nat-${process.pid}-ex` });
    namespaces.push(ns);
    await expect(nets.attach({ network: 'nat-tiny', containerId: 'nat-ex', ifname: 'eth0', netnsPath: ns.path })).rejects.toMatchObject({
      code: 'ERR_NATIVE_POOL_EXHAUSTED',
    });
    expect(leases('nat-tiny')).toHaveLength(1);
  });

  test('a failure half-way undoes everything', async () => {
    // IPv6 off inside the namespace: the veth and IPv4 address succeed, the IPv6 address fails.
    const ns = await NetNS.create({ dir: nsDir, name: `nat-${process.pid}-half` });
    namespaces.push(ns);
    run('ip', ['netns', 'exec', path.basename(ns.path), 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    const before = { leases: leases('nat-a').length, elements: elements('10.89.144.'), routes: hostRoutes('10.89.144.0/24') };
    const err = await nets
      .attach({
        network: 'nat-a',
        containerId: 'nat-half',
        ifname: 'eth0',
        netnsPath: ns.path,
        ports: [{ protocol: 'tcp', hostIp: '', hostPort: 44030, containerPort: 80, range: 1 }],
      })
      .catch((e: PodnetError) => e);
    expect(err).toBeInstanceOf(PodnetError);
    expect(podnetLinks()).not.toContain(native.nativeHostIfname('nat-a', 'nat-half', 'eth0'));
    expect({ leases: leases('nat-a').length, elements: elements('10.89.144.'), routes: hostRoutes('10.89.144.0/24') }).toEqual(before);
    expect(
      run('ip', ['-n', path.basename(ns.path), '-o', 'link'])
        .split('\n')
        .filter(Boolean),
    ).toHaveLength(1); // lo only
  });

  test('works when iptables FORWARD policy is DROP', async () => {
    const s = await sandbox('nat-b', { ports: [{ protocol: 'tcp', hostIp: '', hostPort: 44040, containerPort: 80, range: 1 }] });
    await serve(s.ns.path, 80);
    const policy = /-P FORWARD (\w+)/.exec(run('iptables', ['-S', 'FORWARD']))![1];
    run('iptables', ['-P', 'FORWARD', 'DROP']);
    try {
      expect(run('iptables', ['-S', 'FORWARD'])).toContain('-i pn+');
      expect(await client(`/run/netns/${remoteName}`, 'tcp', '10.89.150.1', 44040)).toBe('hello 10.89.150.2');
      expect(await client(s.ns.path, 'tcp', '10.89.150.2', 80)).toBe('hello 10.89.150.1');
    } finally {
      run('iptables', ['-P', 'FORWARD', policy]);
    }
  });

  test('SIGKILL of the owner during setup, then gc in a fresh process: nothing left', async () => {
    await nets.create({ name: 'nat-kill', subnet: '10.89.152.0/24' });
    for (const delay of [40, 90, 160]) {
      const prefix = `nat-k${delay}-${process.pid}-`;
      const child = spawn(process.execPath, [MANY, networksDir, stateDir, nsDir, 'nat-kill', prefix, '50', '44100'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (b) => (stderr += b));
      await new Promise((resolve, reject) => {
        child.stdout!.once('data', resolve);
        child.once('exit', (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
      });
      await new Promise((r) => setTimeout(r, delay)); // a varying point inside the next setups
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // The runtime's gc removes dead sandboxes' namespaces; here the test does.
      for (const f of readdirSync(nsDir).filter((n) => n.startsWith(prefix))) await NetNS.removePath(path.join(nsDir, f));
      execFileSync(process.execPath, [
        '-e',
        `
        const { NativeNetworks } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))});
        new NativeNetworks(${JSON.stringify({ networksDir, stateDir })}).gc('nat-kill', []).catch((e) => { console.error(e); process.exit(1); });
      `,
      ]);
      expect(leases('nat-kill')).toEqual([]);
      expect(elements('10.89.152.')).toBe(0);
      expect(hostRoutes('10.89.152.0/24')).toBe(0);
      expect(readdirSync(path.join(stateDir, 'networks', 'nat-kill', 'attachments'))).toEqual([]);
      expect(readdirSync(nsDir).filter((n) => n.startsWith(prefix))).toEqual([]);
    }
    // Other files' links come and go meanwhile: a link gone before its routes are listed has none.
    const routesOf = (l: string) => spawnSync('ip', ['-o', 'route', 'show', 'dev', l], { encoding: 'utf8' }).stdout ?? '';
    expect(podnetLinks().filter((l) => routesOf(l).includes('10.89.152.'))).toEqual([]);
  });

  test("gc removes the temporary files of a writer killed between create and rename, and keeps a live writer's", async () => {
    await nets.create({ name: 'nat-tmp', subnet: '10.89.156.0/24' });
    try {
      const dead = spawnSync('true').pid!; // exited and reaped: its pid names no process
      const dirs = [path.join(stateDir, 'networks', 'nat-tmp'), path.join(stateDir, 'networks', 'nat-tmp', 'attachments')];
      for (const d of dirs) {
        mkdirSync(d, { recursive: true });
        writeFileSync(path.join(d, `.tmp-${dead}-${dead}-0`), 'half written');
        writeFileSync(path.join(d, `.tmp-${process.pid}-${process.pid}-0`), 'being written');
      }
      await nets.gc('nat-tmp', []);
      for (const d of dirs) expect(readdirSync(d).filter((f) => f.startsWith('.tmp-'))).toEqual([`.tmp-${process.pid}-${process.pid}-0`]);
      for (const d of dirs) rmSync(path.join(d, `.tmp-${process.pid}-${process.pid}-0`));
    } finally {
      await nets.remove('nat-tmp');
    }
  });

  test('4 processes attaching at once get distinct addresses', async () => {
    await nets.create({ name: 'nat-par', subnet: '10.89.153.0/24' });
    const n = 10;
    const outs = await Promise.all(
      [0, 1, 2, 3].map(
        (p) =>
          new Promise<string>((resolve, reject) => {
            const c = spawn(process.execPath, [MANY, networksDir, stateDir, nsDir, 'nat-par', `nat-p${p}-${process.pid}-`, String(n)], {
              env: { ...process.env, EXIT: '1' },
              stdio: ['ignore', 'pipe', 'inherit'],
            });
            let out = '';
            c.stdout!.on('data', (b) => (out += b));
            c.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child ${p} exited ${code}`))));
          }),
      ),
    );
    const ips = outs
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[1]);
    expect(ips).toHaveLength(4 * n);
    expect(new Set(ips).size).toBe(4 * n);
    for (const a of await nets.attachments('nat-par')) await nets.detach('nat-par', a.containerId, a.ifname);
    for (const f of readdirSync(nsDir).filter((x) => x.startsWith('nat-p') && x.includes(`-${process.pid}-`))) await NetNS.removePath(path.join(nsDir, f));
    expect(leases('nat-par')).toEqual([]);
  });

  test('without libnftables the addon still loads and the driver says which package is missing', () => {
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `
      const { NativeNetworks } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))});
      const nets = new NativeNetworks(${JSON.stringify({ networksDir: path.join(tmp, 'nolib'), stateDir })});
      nets.create({ name: 'nat-nolib', subnet: '10.89.155.0/24' }).then(() => console.log('created'), (e) => console.log(e.code, e.message, nets.list().length));
    `,
      ],
      { encoding: 'utf8', env: { ...process.env, PODNET_LIBNFTABLES: '/nonexistent/libnftables.so.1' } },
    );
    expect(out).toMatch(/^ERR_NATIVE_NO_LIBRARY .*libnftables1.* 0\n$/);
  });

  test('removing a network in use is refused; the last network takes the table along', async () => {
    await expect(nets.remove('nat-b')).rejects.toMatchObject({ code: 'ERR_NATIVE_NETWORK_IN_USE' });
  });
});
