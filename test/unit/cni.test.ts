/** Pure logic of the CNI runtime: results, configs, port mappings, chain names (no root needed). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PodnetError } from '../../lib';
import { CniRuntime } from '../../lib/api/cni';
import { buildBridgeNetwork, loadConfigDir, parseNetworkConfig } from '../../lib/cni/config';
import { masqChainName } from '../../lib/cni/masq';
import { checkPortMappings, toCapabilityEntries, toPortMappings } from '../../lib/ports';
import { ResultFormatError, convertResult, normalizeResult, parseResult } from '../../lib/cni/result';

describe('CNI results', () => {
  const v031 = {
    cniVersion: '0.3.1',
    interfaces: [
      { name: 'br0', mac: '0a:00:00:00:00:01' },
      { name: 'eth0', mac: '0a:00:00:00:00:02', sandbox: '/run/netns/x' },
    ],
    ips: [
      { version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
      { version: '6', address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
    ],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
    dns: { nameservers: ['10.1.0.1'] },
    extra: 'dropped',
  };

  it('normalizes 0.3.1 to 1.0.0: version dropped, everything else kept', () => {
    const r = normalizeResult(parseResult(v031));
    expect(r.cniVersion).toBe('1.0.0');
    expect(r.ips).toEqual([
      { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
      { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
    ]);
    expect(r.interfaces?.[1]).toEqual({ name: 'eth0', mac: '0a:00:00:00:00:02', sandbox: '/run/netns/x' });
    expect(r.routes).toEqual(v031.routes);
    expect(r.dns).toEqual({ nameservers: ['10.1.0.1'] });
    expect(r).not.toHaveProperty('extra');
  });

  it('converts 1.0.0 down to 0.4.0 deriving the family from the address', () => {
    const r = convertResult(parseResult({ cniVersion: '1.0.0', ips: [{ address: 'fd00::7/64' }, { address: '10.2.0.7/16' }] }), '0.4.0');
    expect(r.cniVersion).toBe('0.4.0');
    expect(r.ips?.map((i) => i.version)).toEqual(['6', '4']);
  });

  it.each([
    ['not an object', '[]'],
    ['unknown version', { cniVersion: '0.2.0' }],
    ['bad address', { cniVersion: '1.0.0', ips: [{ address: '10.0.0.300/24' }] }],
    ['address without prefix', { cniVersion: '1.0.0', ips: [{ address: '10.0.0.3' }] }],
    ['interface index out of range', { cniVersion: '1.0.0', interfaces: [{ name: 'a' }], ips: [{ address: '10.0.0.3/8', interface: 1 }] }],
    ['version not matching address', { cniVersion: '0.4.0', ips: [{ version: '6', address: '10.0.0.3/8' }] }],
    ['bad gateway', { cniVersion: '1.0.0', ips: [{ address: '10.0.0.3/8', gateway: 'nope' }] }],
    ['bad route', { cniVersion: '1.0.0', routes: [{ dst: 'default' }] }],
    ['interfaces not an array', { cniVersion: '1.0.0', interfaces: {} }],
  ])('refuses a result with %s', (_what, raw) => {
    expect(() => parseResult(raw)).toThrow(ResultFormatError);
  });
});

describe('CNI network configuration', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pn-cni-conf-'));
    const w = (f: string, v: unknown) => writeFileSync(path.join(dir, f), typeof v === 'string' ? v : JSON.stringify(v));
    w('10-good.conflist', { cniVersion: '0.4.0', name: 'good', plugins: [{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }] });
    w('20-broken.conflist', '{ "cniVersion": "1.0.0", "name": ');
    w('30-notype.conflist', { cniVersion: '1.0.0', name: 'notype', plugins: [{ type: 'bridge' }, { ipam: {} }] });
    w('40-single.conf', { cniVersion: '0.3.1', name: 'single', type: 'ptp', ipam: { type: 'host-local' } });
    w('50-dup.conflist', { cniVersion: '1.0.0', name: 'good', plugins: [{ type: 'macvlan' }] });
    w('60-versions.conflist', { cniVersion: '0.3.1', cniVersions: ['0.4.0', '1.0.0', '9.9.9'], name: 'versions', plugins: [{ type: 'bridge' }] });
    w('70-empty.conflist', { cniVersion: '1.0.0', name: 'empty', plugins: [] });
    w('80-badname.json', { cniVersion: '1.0.0', name: '-bad', type: 'bridge' });
    w('90-path.conflist', { cniVersion: '1.0.0', name: 'pathy', plugins: [{ type: '../bin/sh' }] });
    w('README.txt', 'not a config');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads good files in name order, first name wins, wraps .conf, reports each bad file with its field', async () => {
    const { networks, errors } = await loadConfigDir(dir);
    expect(networks.map((n) => n.name)).toEqual(['good', 'single', 'versions']);
    expect(networks[0].plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
    expect(networks[1].plugins).toEqual([{ type: 'ptp', ipam: { type: 'host-local' } }]);
    expect(networks[1].cniVersion).toBe('0.3.1');
    expect(networks[2].cniVersion).toBe('1.0.0'); // highest supported of cniVersions
    const byFile = Object.fromEntries(errors.map((e) => [path.basename(e.path ?? ''), e]));
    expect(Object.keys(byFile).sort()).toEqual(['20-broken.conflist', '30-notype.conflist', '70-empty.conflist', '80-badname.json', '90-path.conflist']);
    for (const e of errors) {
      expect(e).toBeInstanceOf(PodnetError);
      expect(e.code).toBe('ERR_CNI_CONFIG');
      expect(e.message).toContain(e.path);
    }
    expect(byFile['20-broken.conflist'].details?.field).toBe('(json)');
    expect(byFile['30-notype.conflist'].details?.field).toBe('plugins[1].type');
    expect(byFile['70-empty.conflist'].details?.field).toBe('plugins');
    expect(byFile['80-badname.json'].details?.field).toBe('name');
    expect(byFile['90-path.conflist'].message).toMatch(/path separators/);
  });

  it('the runtime lists them with the embedded default, and names bad files', async () => {
    const rt = new CniRuntime({ confDir: dir });
    expect((await rt.networks()).map((n) => n.name)).toEqual(['good', 'single', 'versions', 'podnet']);
    expect(await rt.configErrors()).toHaveLength(5);
  });

  it('a missing directory has no networks', async () => {
    expect(await loadConfigDir(path.join(dir, 'nope'))).toEqual({ networks: [], errors: [] });
  });

  it('refuses a list without cniVersion', () => {
    expect(() => parseNetworkConfig({ name: 'x', plugins: [{ type: 'a' }] }, 'mem')).toThrow(/cniVersion: missing/);
  });

  it('builds the bridge chain from options', () => {
    const net = buildBridgeNetwork({ name: 'pn-cni-opts', bridge: 'pncni9', subnet: '10.89.9.0/24', ipv6Subnet: 'fd89:9::/64', mtu: 1400 });
    expect(net.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
    expect(net.plugins[0]).toMatchObject({
      bridge: 'pncni9',
      isGateway: true,
      ipMasq: true,
      mtu: 1400,
      ipam: {
        type: 'host-local',
        routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
        ranges: [[{ subnet: '10.89.9.0/24', gateway: '10.89.9.1' }], [{ subnet: 'fd89:9::/64', gateway: 'fd89:9::1' }]],
      },
    });
    const internal = buildBridgeNetwork({ name: 'pn-cni-int', bridge: 'pncni9', subnet: '10.89.9.0/24', internal: true });
    expect(internal.plugins[0]).toMatchObject({ isGateway: false, ipMasq: false, ipam: { ranges: [[{ subnet: '10.89.9.0/24' }]] } });
    expect((internal.plugins[0].ipam as Record<string, unknown>).routes).toBeUndefined();
  });

  it.each([
    [{ subnet: '10.89.9.1/24' }, /host bits/],
    [{ subnet: '10.89.9.0/24', gateway: '10.89.8.1' }, /not an address in/],
    [{ subnet: 'fd89:9::/64' }, /not an ipv4 subnet/],
    [{ subnet: 'banana' }, /not an address\/prefix/],
    [{}, /need subnet/],
    [{ subnet: '10.89.9.0/24', mtu: 70000 }, /mtu/],
    [{ subnet: '10.89.9.0/24', bridge: 'a-very-long-bridge-name' }, /longer than 15/],
    [{ subnet: '10.89.9.0/24', name: 'bad name' }, /network name/],
  ])('refuses bridge options %j', (o, re) => {
    const opts = { name: 'pn-cni-x', bridge: 'pncni9', ...o };
    expect(() => buildBridgeNetwork(opts)).toThrow(re);
  });
});

describe('port mappings', () => {
  it('expands protocols and ranges into capability entries and back', () => {
    const maps = checkPortMappings([
      { hostPort: 18080, containerPort: 80, protocol: 'tcp,UDP' },
      { hostIP: '::1', hostPort: 18090, containerPort: 90, range: 2 },
    ]);
    expect(toCapabilityEntries(maps)).toEqual([
      { hostPort: 18080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 18080, containerPort: 80, protocol: 'udp' },
      { hostIP: '::1', hostPort: 18090, containerPort: 90, protocol: 'tcp' },
      { hostIP: '::1', hostPort: 18091, containerPort: 91, protocol: 'tcp' },
    ]);
    expect(toPortMappings(maps)).toEqual([
      { hostPort: 18080, containerPort: 80, protocol: 'tcp,udp' },
      { hostIP: '::1', hostPort: 18090, containerPort: 90, protocol: 'tcp', range: 2 },
    ]);
  });

  it.each([
    [{ hostPort: 70000, containerPort: 80 }, /hostPort/],
    [{ hostPort: -1, containerPort: 80 }, /hostPort/],
    [{ hostPort: 8080, containerPort: 0 }, /containerPort/],
    [{ hostPort: 8080, containerPort: 1.5 }, /containerPort/],
    [{ hostPort: 8080, containerPort: 80, protocol: 'icmp' }, /protocol/],
    [{ hostPort: 8080, containerPort: 80, hostIP: '300.1.1.1' }, /hostIP/],
    [{ hostPort: 65535, containerPort: 80, range: 2 }, /range/],
    [{ hostPort: 8080, containerPort: 80, range: 0 }, /range/],
  ])('refuses %j', (m, re) => {
    expect(() => checkPortMappings([m])).toThrow(re);
    expect(() => checkPortMappings([m])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  it('refuses the same host port twice, allows it on different protocols', () => {
    expect(() =>
      checkPortMappings([
        { hostPort: 18000, containerPort: 1 },
        { hostPort: 18000, containerPort: 2 },
      ]),
    ).toThrow(/also in portMappings\[0\]/);
    expect(
      checkPortMappings([
        { hostPort: 18000, containerPort: 1 },
        { hostPort: 18000, containerPort: 2, protocol: 'udp' },
      ]),
    ).toHaveLength(2);
  });
});

describe('bridge masquerade chain name', () => {
  it("matches libcni's FormatChainName (value observed from the bridge plugin)", () => {
    expect(masqChainName('pn-cni-smoke', 'smoke1')).toBe('CNI-0d63b401fe9a83eb95f631b6');
  });
});

describe('CniRuntime options', () => {
  it.each([
    [{ confDir: 'relative' }, /confDir/],
    [{ cacheDir: '' }, /cacheDir/],
    [{ pluginTimeoutMs: 0 }, /pluginTimeoutMs/],
    [{ defaultNetwork: '../x' }, /defaultNetwork/],
    [{ binDirs: 'x' as unknown as string[] }, /binDirs/],
  ])('refuses %j', (o, re) => {
    expect(() => new CniRuntime(o)).toThrow(re);
  });
});
