/**
 * CNI runtime against the real plugins in /usr/lib/cni, real namespaces and iptables.
 * Resources: networks pn-cni-*, bridges pncni2..pncni10, subnets 10.89.2-10.0/24, fd89:6::/64,
 * host ports 18001-18099, own conf and cache dirs.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NetNS, PodnetError } from '../../lib';
import { CniRuntime } from '../../lib/api/cni';
import { leftovers, linkExists, runFresh } from '../fixtures/cni/helpers';
import { tcpRead, udpExchange } from '../helpers/net';
import { describeRoot, uniqueName } from '../helpers/system';

jest.setTimeout(120000);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pn-cni-'));
const confDir = path.join(tmp, 'net.d');
const cacheDir = path.join(tmp, 'cache');
const binDir = path.join(tmp, 'bin');
const FAKES = ['fail', 'garbage', 'hang', 'old', 'pass'];

// Bridge networks created through the API, and lists written by hand around the fake plugins.
const BRIDGES = [
  { name: 'pn-cni-ports', bridge: 'pncni2', subnet: '10.89.2.0/24' },
  { name: 'pn-cni-a', bridge: 'pncni3', subnet: '10.89.3.0/24' },
  { name: 'pn-cni-b', bridge: 'pncni4', subnet: '10.89.4.0/24' },
  { name: 'pn-cni-many', bridge: 'pncni5', subnet: '10.89.5.0/24' },
  { name: 'pn-cni-ds', bridge: 'pncni6', subnet: '10.89.6.0/24', ipv6Subnet: 'fd89:6::/64' },
];
const HANDWRITTEN: Record<string, unknown[]> = {
  'pn-cni-fail': [
    { type: 'bridge', bridge: 'pncni7', isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.7.0/24' }]] } },
    { type: 'firewall' },
    { type: 'pn-cni-fail' },
  ],
  'pn-cni-garbage': [{ type: 'pn-cni-garbage' }],
  'pn-cni-hang': [{ type: 'pn-cni-hang' }],
  'pn-cni-old': [{ type: 'pn-cni-old' }],
  'pn-cni-busy': [{ type: 'pn-cni-pass' }],
  'pn-cni-env': [
    { type: 'pn-cni-pass', capabilities: { ips: true, mac: false }, opt: 1 },
    { type: 'pn-cni-pass', capabilities: { portMappings: true }, runtimeConfig: { keep: true } },
  ],
  'pn-cni-missing': [{ type: 'pn-cni-nosuch' }],
};
const ALL_BRIDGES = ['pncni2', 'pncni3', 'pncni4', 'pncni5', 'pncni6', 'pncni7', 'pncni8', 'pncni9', 'pncni10'];
// Older spec versions, driven through the real plugins: a 0.4.0 list and a 0.3.1 single-plugin .conf.
const V040 = {
  cniVersion: '0.4.0',
  name: 'pn-cni-v040',
  plugins: [{ type: 'bridge', bridge: 'pncni8', isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.8.0/24' }]] } }, { type: 'firewall' }],
};
const V031 = { cniVersion: '0.3.1', name: 'pn-cni-v031', type: 'bridge', bridge: 'pncni9', ipam: { type: 'host-local', subnet: '10.89.9.0/24' } };

const rt = new CniRuntime({ confDir, cacheDir, binDirs: [binDir], pluginTimeoutMs: 20000 });
const namespaces: NetNS[] = [];
const children: ChildProcess[] = [];

async function newNetns(): Promise<NetNS> {
  const ns = await NetNS.create({ name: uniqueName('pn-cni') });
  namespaces.push(ns);
  return ns;
}

function podId(): string {
  return uniqueName('pn-cni-pod');
}

async function nsAddrs(
  ns: NetNS,
): Promise<{ ifname: string; address?: string; addr_info: { local: string; family: string; flags?: string[]; tentative?: boolean }[] }[]> {
  return JSON.parse((await ns.exec('ip', ['-j', 'addr', 'show'])).stdout);
}

/** A TCP greeter on 8080 and a UDP echo on 8081 inside `ns`. */
async function startServer(ns: NetNS): Promise<void> {
  const code = `
    const net = require('net'), dgram = require('dgram');
    net.createServer((s) => s.end('tcp-hello')).listen(8080, () => {
      const u = dgram.createSocket('udp4');
      u.on('message', (m, r) => u.send('udp:' + m, r.port, r.address));
      u.bind(8081, () => console.log('ready'));
    });`;
  const child = ns.spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

async function udpAsk(host: string, port: number, msg: string): Promise<string> {
  const reply = await udpExchange(port, Buffer.from(msg), host);
  if (!reply) throw new Error(`no UDP reply from ${host}:${port}`);
  return reply.toString();
}

describeRoot('CniRuntime with the real plugins', () => {
  beforeAll(async () => {
    for (const d of [confDir, binDir]) execFileSync('mkdir', ['-p', d]);
    for (const f of FAKES) copyFileSync(path.join(__dirname, '../fixtures/cni/fake-plugin.js'), path.join(binDir, `pn-cni-${f}`));
    execFileSync('chmod', ['755', ...FAKES.map((f) => path.join(binDir, `pn-cni-${f}`))]);
    for (const b of BRIDGES) await rt.createNetwork(b);
    for (const [name, plugins] of Object.entries(HANDWRITTEN)) {
      writeFileSync(path.join(confDir, `50-${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name, plugins }));
    }
    writeFileSync(path.join(confDir, '40-pn-cni-v040.conflist'), JSON.stringify(V040));
    writeFileSync(path.join(confDir, '40-pn-cni-v031.conf'), JSON.stringify(V031));
    writeFileSync(path.join(confDir, '60-pn-cni-bad.conflist'), '{"cniVersion": "1.0.0", "name": "pn-cni-bad", "plugins": [');
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const ns of namespaces) await ns.remove().catch(() => {});
    for (const b of [...BRIDGES, { name: 'pn-cni-val' }]) await rt.removeNetwork(b.name, { force: true }).catch(() => {});
    for (const b of ALL_BRIDGES) if (linkExists(b)) execFileSync('ip', ['link', 'delete', b]);
    for (const n of [...Object.keys(HANDWRITTEN), 'pn-cni-v040', 'pn-cni-v031']) rmSync(`/var/lib/cni/networks/${n}`, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serves a namespace through mapped host ports: TCP and UDP, on 127.0.0.1 and the bridge gateway', async () => {
    const ns = await newNetns();
    const id = podId();
    const [res] = await rt.setUpPod({
      id,
      name: 'ports',
      netnsPath: ns.path,
      networks: ['pn-cni-ports'],
      portMappings: [
        { hostPort: 18001, containerPort: 8080 },
        { hostPort: 18002, containerPort: 8081, protocol: 'udp' },
        { hostPort: 0, containerPort: 8080, hostIP: '127.0.0.1' },
      ],
    });
    const ip = res.result.ips![0].address.split('/')[0];
    try {
      expect(res).toMatchObject({ network: 'pn-cni-ports', ifname: 'eth0' });
      expect(res.result.ips![0]).toMatchObject({ gateway: '10.89.2.1' });
      const picked = res.portMappings![2].hostPort;
      expect(picked).toBeGreaterThan(0);
      await startServer(ns);
      expect(await tcpRead(18001, '127.0.0.1')).toBe('tcp-hello');
      expect(await tcpRead(18001, '10.89.2.1')).toBe('tcp-hello');
      expect(await tcpRead(picked, '127.0.0.1')).toBe('tcp-hello');
      expect(await udpAsk('127.0.0.1', 18002, 'ping')).toBe('udp:ping');
      expect(await udpAsk('10.89.2.1', 18002, 'pong')).toBe('udp:pong');
      // No checkPod here: portmap 1.1.1's CHECK looks for an IPv6 DNAT chain it never made (fixed in 1.2).
    } finally {
      await rt.tearDownPod({ id });
    }
    expect(leftovers(cacheDir, id, [ip])).toEqual([]);
    await expect(tcpRead(18001, '127.0.0.1')).rejects.toThrow();
  });

  it('joins two networks as eth0 and eth1 in order, with a static IP and MAC on the second', async () => {
    const ns = await newNetns();
    const id = podId();
    const res = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-a', { name: 'pn-cni-b', ips: ['10.89.4.77'], mac: '02:00:0a:59:04:4d' }] });
    try {
      expect(res.map((r) => [r.network, r.ifname])).toEqual([
        ['pn-cni-a', 'eth0'],
        ['pn-cni-b', 'eth1'],
      ]);
      expect(res[0].result.ips![0].address).toMatch(/^10\.89\.3\.\d+\/24$/);
      expect(res[1].result.ips![0].address).toBe('10.89.4.77/24');
      const links = await nsAddrs(ns);
      const eth1 = links.find((l) => l.ifname === 'eth1')!;
      expect(eth1.address).toBe('02:00:0a:59:04:4d');
      expect(eth1.addr_info.map((a) => a.local)).toContain('10.89.4.77');
      expect(links.find((l) => l.ifname === 'eth0')!.addr_info.map((a) => a.local)).toContain(res[0].result.ips![0].address.split('/')[0]);
      await rt.checkPod({ id });
      // Setting it up again is refused before anything runs, and the first setup stays intact.
      await expect(rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-a'] })).rejects.toMatchObject({ code: 'ERR_CNI_ALREADY_SET_UP' });
      await rt.checkPod({ id });
    } finally {
      await rt.tearDownPod({ id });
    }
    expect(leftovers(cacheDir, id, ['10.89.4.77'])).toEqual([]);
    expect((await nsAddrs(ns)).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('rolls back the first two networks when a plugin of the third fails', async () => {
    const ns = await newNetns();
    const id = podId();
    const err = await rt
      .setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-a', 'pn-cni-b', 'pn-cni-fail'], portMappings: [{ hostPort: 18003, containerPort: 80 }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(PodnetError);
    expect(err.code).toBe('ERR_CNI_PLUGIN_FAILED');
    expect(err.details).toMatchObject({ plugin: 'pn-cni-fail', network: 'pn-cni-fail', command: 'ADD', cniCode: 7 });
    expect(err.message).toMatch(/fake failure/);
    expect((await nsAddrs(ns)).map((l) => l.ifname)).toEqual(['lo']);
    expect(leftovers(cacheDir, id)).toEqual([]);
    expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toMatch(/--dport 18003/);
  });

  it('sets up 20 pods concurrently with distinct addresses and tears them all down', async () => {
    const pods = await Promise.all(Array.from({ length: 20 }, async () => ({ id: podId(), ns: await newNetns() })));
    const results = await Promise.allSettled(pods.map((p) => rt.setUpPod({ id: p.id, netnsPath: p.ns.path, networks: ['pn-cni-many'] })));
    try {
      const addrs = results.map((r) => (r.status === 'fulfilled' ? r.value[0].result.ips![0].address : String(r.reason)));
      for (const a of addrs) expect(a).toMatch(/^10\.89\.5\.\d+\/24$/);
      expect(new Set(addrs).size).toBe(20);
    } finally {
      await Promise.all(pods.map((p) => rt.tearDownPod({ id: p.id })));
    }
    for (const p of pods) expect(leftovers(cacheDir, p.id)).toEqual([]);
    expect(readdirSync('/var/lib/cni/networks/pn-cni-many').filter((f) => /^\d/.test(f))).toEqual([]);
  });

  it('dual stack: IPv4 and a ULA IPv6 address, usable at once (no DAD wait)', async () => {
    const ns = await newNetns();
    const id = podId();
    const [res] = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-ds'] });
    try {
      const v6 = res.result.ips!.find((i) => i.address.includes(':'))!;
      expect(res.result.ips!.map((i) => i.address)).toEqual([expect.stringMatching(/^10\.89\.6\.\d+\/24$/), expect.stringMatching(/^fd89:6::[0-9a-f]+\/64$/)]);
      expect(v6).not.toHaveProperty('version');
      const eth0 = (await nsAddrs(ns)).find((l) => l.ifname === 'eth0')!;
      const a6 = eth0.addr_info.find((a) => a.family === 'inet6' && a.local.startsWith('fd89:6:'))!;
      expect(a6.local).toBe(v6.address.split('/')[0]);
      expect(a6.tentative).toBeUndefined();
      // The pod reaches the host over IPv6 at once: a TCP connect to the bridge gateway.
      const server = net.createServer((s) => s.end('v6-hello'));
      await new Promise<void>((r) => server.listen(18010, '::', r));
      try {
        const client = `require('net').connect(18010, 'fd89:6::1').on('data', (d) => process.stdout.write(d)).on('error', (e) => { console.error(e.message); process.exit(1); })`;
        const out = await ns.exec(process.execPath, ['-e', client], { timeoutMs: 5000 });
        expect(out.stderr).toBe('');
        expect(out.stdout).toBe('v6-hello');
      } finally {
        server.close();
      }
    } finally {
      await rt.tearDownPod({ id });
    }
    expect(leftovers(cacheDir, id, ['10.89.6.2', 'fd89:6::2'])).toEqual([]);
  });

  it('drives a 0.4.0 list and a 0.3.1 .conf: results normalized, cache in the list version, CHECK only from 0.4.0', async () => {
    const ns = await newNetns();
    const id = podId();
    const res = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-v040', 'pn-cni-v031'] });
    try {
      expect(res.map((r) => [r.network, r.ifname, r.result.cniVersion])).toEqual([
        ['pn-cni-v040', 'eth0', '1.0.0'],
        ['pn-cni-v031', 'eth1', '1.0.0'],
      ]);
      expect(res[0].result.ips![0]).not.toHaveProperty('version');
      expect(res[1].result.ips![0].address).toMatch(/^10\.89\.9\.\d+\/24$/);
      const cached = JSON.parse(readFileSync(path.join(cacheDir, 'results', `pn-cni-v040-${id}-eth0`), 'utf8'));
      expect(cached.result.cniVersion).toBe('0.4.0');
      expect(cached.result.ips[0].version).toBe('4');
      await expect(rt.checkPod({ id, networks: ['pn-cni-v040'] })).resolves.toBeUndefined();
      await expect(rt.checkPod({ id })).rejects.toMatchObject({ code: 'ERR_CNI_VERSION' });
    } finally {
      await rt.tearDownPod({ id });
    }
    expect(leftovers(cacheDir, id, [res[0].result.ips![0].address.split('/')[0]])).toEqual([]);
    expect((await nsAddrs(ns)).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('tears down from the cache alone in a fresh process', async () => {
    const ns = await newNetns();
    const id = podId();
    const [res] = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-a'], portMappings: [{ hostPort: 18004, containerPort: 80 }] });
    try {
      await tearDownInFreshProcess(ns, id, res);
    } finally {
      await rt.tearDownPod({ id }); // when the fresh process failed: leave nothing (a no-op after it succeeded)
    }
  });

  /** Tears `id` down from the cache alone in another process, and checks nothing is left. */
  async function tearDownInFreshProcess(ns: NetNS, id: string, res: { result: { ips?: { address: string }[] } }) {
    const ip = res.result.ips![0].address.split('/')[0];
    expect(leftovers(cacheDir, id, [ip]).length).toBeGreaterThan(3);
    const cache = readdirSync(path.join(cacheDir, 'results')).filter((f) => f.includes(id));
    expect(cache).toEqual([`pn-cni-a-${id}-eth0`]);
    // libcni's layout and fields, so other CNI tools can read it.
    const file = path.join(cacheDir, 'results', cache[0]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const entry = JSON.parse(readFileSync(file, 'utf8'));
    expect(entry).toMatchObject({ kind: 'cniCacheV1', containerId: id, ifName: 'eth0', networkName: 'pn-cni-a', netns: ns.path });
    expect(JSON.parse(Buffer.from(entry.config, 'base64').toString())).toMatchObject({ name: 'pn-cni-a', cniVersion: '1.0.0' });
    expect(entry.capabilityArgs.portMappings).toEqual([{ hostPort: 18004, containerPort: 80, protocol: 'tcp' }]);
    expect(entry.result.ips[0].address).toBe(res.result.ips![0].address);
    const r = runFresh(
      `await new podnet.CniRuntime(${JSON.stringify({ confDir: path.join(tmp, 'empty'), cacheDir, binDirs: [binDir] })}).tearDownPod({ id: ${JSON.stringify(id)} });`,
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(leftovers(cacheDir, id, [ip])).toEqual([]);
    expect((await nsAddrs(ns)).map((l) => l.ifname)).toEqual(['lo']);
  }

  it('tears down after the namespace is gone, leaving no masquerade chain', async () => {
    const ns = await NetNS.create({ name: uniqueName('pn-cni') });
    const id = podId();
    const [res] = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-a'] });
    await ns.remove();
    await rt.tearDownPod({ id });
    expect(leftovers(cacheDir, id, [res.result.ips![0].address.split('/')[0]])).toEqual([]);
  });

  it('tears down with the configured list when the cached one is damaged', async () => {
    const ns = await newNetns();
    const id = podId();
    const [res] = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-a'] });
    const file = path.join(cacheDir, 'results', `pn-cni-a-${id}-eth0`);
    const entry = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...entry, config: Buffer.from('{not json').toString('base64') }));
    await rt.tearDownPod({ id });
    expect(leftovers(cacheDir, id, [res.result.ips![0].address.split('/')[0]])).toEqual([]);
    expect((await nsAddrs(ns)).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('teardown goes on past a failing network, reports it, and can be retried', async () => {
    const ns = await newNetns();
    const id = podId();
    const res = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-busy', 'pn-cni-a'] });
    const ip = res[1].result.ips![0].address.split('/')[0];
    process.env.PN_CNI_FAKE_DEL_FAIL = '1';
    let err;
    try {
      err = await rt.tearDownPod({ id }).catch((e) => e);
    } finally {
      delete process.env.PN_CNI_FAKE_DEL_FAIL;
    }
    expect(err).toBeInstanceOf(PodnetError);
    expect(err.code).toBe('ERR_CNI_TEARDOWN');
    expect(err.details.errors).toEqual([
      expect.objectContaining({ code: 'ERR_CNI_PLUGIN_FAILED', details: expect.objectContaining({ cniCode: 11, network: 'pn-cni-busy', command: 'DEL' }) }),
    ]);
    // pn-cni-a (torn down first, in reverse order) is gone; the failed one keeps its cache entry for a retry.
    expect(leftovers(cacheDir, id, [ip])).toEqual([`cache: pn-cni-busy-${id}-eth0`]);
    await rt.tearDownPod({ id });
    expect(leftovers(cacheDir, id, [ip])).toEqual([]);
  });

  it('tearing down a pod that is not set up succeeds; checking it is a typed error', async () => {
    const id = podId();
    await expect(rt.tearDownPod({ id })).resolves.toEqual({ notUndone: [] });
    await expect(rt.tearDownPod({ id, networks: ['pn-cni-a'] })).resolves.toEqual({ notUndone: [] });
    await expect(rt.tearDownPod({ id, networks: ['pn-cni-unknown'] })).resolves.toEqual({ notUndone: [] });
    await expect(rt.checkPod({ id })).rejects.toMatchObject({ code: 'ERR_CNI_NOT_SET_UP' });
  });

  it('gives each plugin the spec environment and a config with only its declared capabilities', async () => {
    const ns = await newNetns();
    const id = podId();
    const log = path.join(tmp, 'env.log');
    process.env.PN_CNI_FAKE_LOG = log;
    try {
      await rt.setUpPod({
        id,
        name: 'envpod',
        namespace: 'podns',
        netnsPath: ns.path,
        networks: [{ name: 'pn-cni-env', ips: ['10.89.11.5'], ifname: 'net0' }],
        portMappings: [{ hostPort: 18006, containerPort: 80, protocol: 'tcp,udp' }],
      });
      await rt.tearDownPod({ id });
    } finally {
      delete process.env.PN_CNI_FAKE_LOG;
    }
    // A static MAC needs a plugin declaring the `mac` capability (declared false here): refused, nothing run.
    await expect(rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-env'], mac: '02:00:00:00:00:01' })).rejects.toThrow(/'mac' capability/);
    const calls = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((c) => c.env.CNI_COMMAND !== 'VERSION');
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(['ADD', 'ADD', 'DEL', 'DEL']);
    for (const c of calls) {
      expect(c.env).toMatchObject({
        CNI_CONTAINERID: id,
        CNI_NETNS: ns.path,
        CNI_IFNAME: 'net0',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=podns;K8S_POD_NAME=envpod;K8S_POD_INFRA_CONTAINER_ID=${id}`,
      });
      expect(c.env.CNI_PATH.split(':')).toEqual(expect.arrayContaining([binDir, '/usr/lib/cni', '/opt/cni/bin']));
      expect(c.conf).toMatchObject({ name: 'pn-cni-env', cniVersion: '1.0.0' });
      expect(c.conf).not.toHaveProperty('capabilities');
    }
    const [add1, add2, del2, del1] = calls.map((c) => c.conf);
    expect(add1).toEqual({ type: 'pn-cni-pass', opt: 1, name: 'pn-cni-env', cniVersion: '1.0.0', runtimeConfig: { ips: ['10.89.11.5'] } });
    expect(add2.runtimeConfig).toEqual({
      keep: true,
      portMappings: [
        { hostPort: 18006, containerPort: 80, protocol: 'tcp' },
        { hostPort: 18006, containerPort: 80, protocol: 'udp' },
      ],
    });
    expect(add2.prevResult).toEqual({ cniVersion: '1.0.0' });
    expect(del2.prevResult).toEqual({ cniVersion: '1.0.0' });
    expect(del1.prevResult).toEqual({ cniVersion: '1.0.0' });
    expect(del1.runtimeConfig).toEqual({ ips: ['10.89.11.5'] });
  });

  it('retries a plugin binary that is busy being written (ETXTBSY)', async () => {
    const ns = await newNetns();
    const id = podId();
    const fd = openSync(path.join(binDir, 'pn-cni-pass'), 'r+');
    const t0 = Date.now();
    setTimeout(() => closeSync(fd), 1200);
    try {
      const [res] = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-busy'] });
      expect(res.result.cniVersion).toBe('1.0.0');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    } finally {
      await rt.tearDownPod({ id });
    }
  });

  describe('bad input and bad plugins: typed errors, nothing left behind', () => {
    let ns: NetNS;
    beforeAll(async () => {
      ns = await newNetns();
      await rt.createNetwork({ name: 'pn-cni-val', bridge: 'pncni10', subnet: '10.89.10.0/24' });
    });
    afterEach(() => {
      expect(linkExists('pncni10')).toBe(false);
      expect(existsSync('/var/lib/cni/networks/pn-cni-val')).toBe(false);
    });

    it.each([
      ['bad id', { id: '-x' }, /pod id/],
      ['id with slash', { id: 'a/b' }, /pod id/],
      ['relative netns', { netnsPath: 'run/netns/x' }, /netnsPath/],
      ['bad port', { portMappings: [{ hostPort: 18005, containerPort: 70000 }] }, /containerPort/],
      ['bad protocol', { portMappings: [{ hostPort: 18005, containerPort: 80, protocol: 'tcp,gre' }] }, /protocol/],
      ['bad host IP', { portMappings: [{ hostPort: 18005, containerPort: 80, hostIP: '1.2.3' }] }, /hostIP/],
      ['bad static IP', { ip: '10.89.10.300' }, /ips\[0\]/],
      ['multicast static IP', { ip: '224.0.0.1' }, /host address/],
      ['bad MAC', { mac: '02:00:00:00:00' }, /MAC/],
      ['multicast MAC', { mac: '03:00:00:00:00:01' }, /multicast/],
      ['long ifname', { networks: [{ name: 'pn-cni-val', ifname: 'a-very-long-ifname' }] }, /15 bytes/],
      ['duplicate ifname', { networks: [{ name: 'pn-cni-val' }, { name: 'pn-cni-a', ifname: 'eth0' }] }, /used twice/],
      ['pod name with ;', { name: 'a;b' }, /pod name/],
    ])('%s', async (_what, over, re) => {
      const id = podId();
      const err = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-val'], ...over } as never).then(
        () => rt.tearDownPod({ id }).then(() => 'set up'),
        (e) => e,
      );
      expect(err).toBeInstanceOf(PodnetError);
      expect(err.code).toBe('ERR_INVALID_ARGUMENT');
      expect(err.message).toMatch(re);
      expect(leftovers(cacheDir, id)).toEqual([]);
    });

    it('a missing namespace', async () => {
      await expect(rt.setUpPod({ id: podId(), netnsPath: '/run/netns/pn-cni-nonexistent', networks: ['pn-cni-val'] })).rejects.toMatchObject({
        code: 'ENOENT',
      });
    });

    it('an unknown network, and a malformed conflist named in configErrors', async () => {
      await expect(rt.setUpPod({ id: podId(), netnsPath: ns.path, networks: ['pn-cni-bad'] })).rejects.toMatchObject({ code: 'ERR_CNI_NETWORK_NOT_FOUND' });
      const errs = await rt.configErrors();
      expect(errs.map((e) => [e.code, path.basename(e.path!)])).toEqual([['ERR_CNI_CONFIG', '60-pn-cni-bad.conflist']]);
      expect((await rt.networks()).map((n) => n.name)).toContain('pn-cni-a');
    });

    it('an unknown plugin, named with the directories searched', async () => {
      const id = podId();
      const err = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-val', 'pn-cni-missing'] }).catch((e) => e);
      expect(err.code).toBe('ERR_CNI_PLUGIN_NOT_FOUND');
      expect(err.message).toContain("'pn-cni-nosuch'");
      expect(err.message).toContain(`${binDir}:`);
      expect(err.message).toContain('/usr/lib/cni');
      expect(leftovers(cacheDir, id)).toEqual([]);
    });

    it('garbage plugin output', async () => {
      const id = podId();
      const err = await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-garbage'] }).catch((e) => e);
      expect(err.code).toBe('ERR_CNI_PLUGIN_OUTPUT');
      expect(err.message).toMatch(/pn-cni-garbage.*not JSON/);
      expect(leftovers(cacheDir, id)).toEqual([]);
    });

    it('a plugin that does not speak the list version', async () => {
      const err = await rt.setUpPod({ id: podId(), netnsPath: ns.path, networks: ['pn-cni-old'] }).catch((e) => e);
      expect(err.code).toBe('ERR_CNI_VERSION');
      expect(err.message).toMatch(/pn-cni-old.*1\.0\.0.*0\.3\.1/);
    });

    it('a plugin that hangs is killed at the timeout', async () => {
      const quick = new CniRuntime({ confDir, cacheDir, binDirs: [binDir], pluginTimeoutMs: 1500 });
      const id = podId();
      const t0 = Date.now();
      const err = await quick.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-hang'] }).catch((e) => e);
      expect(err.code).toBe('ERR_CNI_PLUGIN_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(10000);
      expect(leftovers(cacheDir, id)).toEqual([]);
      const hung = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.includes(path.join(binDir, 'pn-cni-hang')));
      expect(hung).toEqual([]);
    });

    it('network management refusals', async () => {
      await expect(rt.createNetwork({ name: 'pn-cni-a', bridge: 'pncni11', subnet: '10.89.11.0/24' })).rejects.toMatchObject({
        code: 'ERR_CNI_NETWORK_EXISTS',
      });
      await expect(rt.createNetwork({ name: 'pn-cni-x', bridge: 'pncni3', subnet: '10.89.11.0/24' })).rejects.toThrow(/bridge 'pncni3'/);
      await expect(rt.createNetwork({ name: 'pn-cni-x', bridge: 'pncni11', subnet: '10.89.3.128/25' })).rejects.toThrow(/overlaps 10.89.3.0\/24/);
      await expect(rt.removeNetwork('pn-cni-nothere')).rejects.toMatchObject({ code: 'ERR_CNI_NETWORK_NOT_FOUND' });
      expect(existsSync(path.join(confDir, 'pn-cni-x.conflist'))).toBe(false);
    });
  });

  it('refuses to remove a network in use', async () => {
    const ns = await newNetns();
    const id = podId();
    await rt.setUpPod({ id, netnsPath: ns.path, networks: ['pn-cni-b'] });
    try {
      await expect(rt.removeNetwork('pn-cni-b')).rejects.toMatchObject({ code: 'ERR_CNI_NETWORK_IN_USE' });
    } finally {
      await rt.tearDownPod({ id });
    }
  });
});
