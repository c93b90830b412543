import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { PodnetError } from '../../lib';
import { resolveNetnsPath, resultToBasicNetworkConfig, toNetworkSettings } from '../../lib/api/inspect';
import type { NetnsRef } from '../../lib/api/inspect';
import type { CniResult } from '../../lib/cni/types';

const fixtures = path.join(__dirname, '../fixtures/inspect');
const load = (name: string): CniResult => JSON.parse(readFileSync(path.join(fixtures, name), 'utf8'));

const r = (ips: CniResult['ips'], interfaces: CniResult['interfaces'] = [], cniVersion = '1.0.0'): CniResult => ({
  cniVersion,
  interfaces,
  ips,
});
const ctrIf = [
  { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' },
  { name: 'eth1', mac: '02:00:00:00:00:02', sandbox: '/run/netns/x' },
];

describe('resultToBasicNetworkConfig with results captured from the real bridge + host-local plugins', () => {
  const files = readdirSync(fixtures).filter((f) => f.startsWith('bridge-'));
  it('has 0.4.0 and 1.0.0, IPv4 and dual-stack captures', () => {
    expect(files.sort()).toEqual(['bridge-0.4.0-dualstack.json', 'bridge-0.4.0-ipv4.json', 'bridge-1.0.0-dualstack.json', 'bridge-1.0.0-ipv4.json']);
  });

  it.each(files)('%s: addresses, gateways and the sandbox MAC', (file) => {
    const res = load(file);
    const c = resultToBasicNetworkConfig(res);
    const v4 = res.ips!.find((i) => !i.address.includes(':'))!;
    const v6 = res.ips!.find((i) => i.address.includes(':'));
    const sandboxIf = res.interfaces!.find((i) => i.sandbox)!;
    expect(res.interfaces![v4.interface!]).toBe(sandboxIf);
    expect(c.IPAddress).toBe(v4.address.split('/')[0]);
    expect(c.IPPrefixLen).toBe(Number(v4.address.split('/')[1]));
    expect(c.Gateway).toBe(v4.gateway);
    expect(c.MacAddress).toBe(sandboxIf.mac);
    expect(c.MacAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    // Podman 2.x lost the IPv6 address of a dual-stack result (it tested the IPv4 field).
    expect(c.GlobalIPv6Address).toBe(v6 ? v6.address.split('/')[0] : '');
    expect(c.GlobalIPv6PrefixLen).toBe(v6 ? 64 : 0);
    expect(c.IPv6Gateway).toBe(v6?.gateway ?? '');
    expect(c).not.toHaveProperty('SecondaryIPAddresses');
    expect(c).not.toHaveProperty('AdditionalMACAddresses');
    // 1.0.0 results carry no ips[].version: the family came from the address.
    if (res.cniVersion === '1.0.0') expect(res.ips!.every((i) => i.version === undefined)).toBe(true);
  });

  it('a captured result becomes NetworkSettings.Networks entries as podman prints them', () => {
    const a = load('bridge-1.0.0-ipv4.json');
    const b = load('bridge-0.4.0-dualstack.json');
    const s = toNetworkSettings({ netnsPath: '/run/netns/x', portMappings: [], networks: ['net-a', 'net-b'], results: [a, b] });
    expect(Object.keys(s.Networks!)).toEqual(['net-a', 'net-b']);
    expect(s.Networks!['net-a'].IPAddress).toBe(a.ips![0].address.split('/')[0]);
    expect(s.Networks!['net-b'].GlobalIPv6Address).toBe(b.ips![1].address.split('/')[0]);
    expect(s.IPAddress).toBe('');
  });
});

describe('resultToBasicNetworkConfig vectors', () => {
  it('0.3.1 result with version fields, MAC from interface index 0', () => {
    const c = resultToBasicNetworkConfig(r([{ version: '4', address: '10.89.64.5/24', gateway: '10.89.64.1', interface: 0 }], ctrIf, '0.3.1'));
    expect(c).toEqual({
      EndpointID: '',
      Gateway: '10.89.64.1',
      IPAddress: '10.89.64.5',
      IPPrefixLen: 24,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      MacAddress: '02:00:00:00:00:01',
    });
  });

  it('several addresses per family: first primary, later secondary (CIDR), IPv6 first in the list', () => {
    const c = resultToBasicNetworkConfig(
      r(
        [
          { address: 'fd00:0:0:0::5/64', gateway: 'fd00::1', interface: 0 },
          { address: '10.89.64.5/24', gateway: '10.89.64.1', interface: 0 },
          { address: '10.89.64.6/24', interface: 1 },
          { address: 'fd00::6/64', interface: 0 },
          { address: '10.89.64.7/24', interface: 1 },
        ],
        ctrIf,
      ),
    );
    expect(c.IPAddress).toBe('10.89.64.5');
    expect(c.SecondaryIPAddresses).toEqual(['10.89.64.6/24', '10.89.64.7/24']);
    expect(c.GlobalIPv6Address).toBe('fd00::5');
    expect(c.IPv6Gateway).toBe('fd00::1');
    expect(c.SecondaryIPv6Addresses).toEqual(['fd00::6/64']);
    expect(c.MacAddress).toBe('02:00:00:00:00:01');
    expect(c.AdditionalMACAddresses).toEqual(['02:00:00:00:00:02']);
  });

  it('IPv6 only: MAC of the IPv6 primary, IPv4 fields empty', () => {
    const c = resultToBasicNetworkConfig(r([{ version: '6', address: 'fd00::5/64', interface: 1 }], ctrIf, '0.4.0'));
    expect(c).toMatchObject({ IPAddress: '', IPPrefixLen: 0, Gateway: '', GlobalIPv6Address: 'fd00::5', MacAddress: '02:00:00:00:00:02' });
  });

  it('gateway missing gives "" (Podman 2.x printed "<nil>")', () => {
    const c = resultToBasicNetworkConfig(r([{ address: '10.89.64.5/24' }, { address: 'fd00::5/64' }]));
    expect(c.Gateway).toBe('');
    expect(c.IPv6Gateway).toBe('');
  });

  it.each([
    ['missing', undefined],
    ['out of range', 2],
    ['negative', -1],
    ['not an integer', 0.5],
  ])('interface index %s: no MAC, no error', (_l, idx) => {
    const c = resultToBasicNetworkConfig(r([{ address: '10.89.64.5/24', interface: idx as number }], ctrIf));
    expect(c.IPAddress).toBe('10.89.64.5');
    expect(c.MacAddress).toBe('');
    expect(c).not.toHaveProperty('AdditionalMACAddresses');
  });

  it('an empty result gives empty fields', () => {
    expect(resultToBasicNetworkConfig({ cniVersion: '1.0.0' })).toMatchObject({ IPAddress: '', MacAddress: '', GlobalIPv6Address: '' });
  });

  it.each([
    ['an unknown version', [{ version: '5', address: '10.0.0.1/24' }], /version '5'/],
    ['a version that contradicts the address', [{ version: '4', address: 'fd00::1/64' }], /version 4 but 'fd00::1\/64' is IPv6/],
    ['an address without prefix', [{ address: '10.0.0.1' }], /ips\[0\]\.address '10\.0\.0\.1'/],
    ['a gateway of the other family', [{ address: '10.0.0.2/24', gateway: 'fd00::1' }], /gateway 'fd00::1' is not IPv4/],
    ['a bad gateway', [{ address: '10.0.0.2/24', gateway: 'nope' }], /gateway 'nope'/],
  ])('rejects %s with ERR_INVALID_CNI_RESULT', (_l, ips, msg) => {
    const err = (() => {
      try {
        resultToBasicNetworkConfig(r(ips as CniResult['ips']));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PodnetError);
    expect(err).toMatchObject({ code: 'ERR_INVALID_CNI_RESULT' });
    expect((err as Error).message).toMatch(msg);
  });
});

describe('toNetworkSettings', () => {
  const res = r(
    [
      { address: '10.89.64.5/24', gateway: '10.89.64.1', interface: 0 },
      { address: 'fd00::5/64', gateway: 'fd00::1', interface: 0 },
    ],
    ctrIf,
  );

  it('serializes exactly as podman inspect prints NetworkSettings (field order, empty values)', () => {
    const s = toNetworkSettings({
      netnsPath: '/run/netns/cni-1',
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      networks: [],
      results: [res],
    });
    expect(JSON.stringify(s)).toBe(
      '{"EndpointID":"","Gateway":"10.89.64.1","IPAddress":"10.89.64.5","IPPrefixLen":24,' +
        '"IPv6Gateway":"fd00::1","GlobalIPv6Address":"fd00::5","GlobalIPv6PrefixLen":64,"MacAddress":"02:00:00:00:00:01",' +
        '"Bridge":"","SandboxID":"","HairpinMode":false,"LinkLocalIPv6Address":"","LinkLocalIPv6PrefixLen":0,' +
        '"Ports":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},"SandboxKey":"/run/netns/cni-1"}',
    );
  });

  it('named networks: sorted entries with NetworkID and null Docker-only fields; top level empty', () => {
    const s = toNetworkSettings({
      netnsPath: '/run/netns/n',
      networks: ['zeta', 'alpha'],
      results: [res, r([{ address: '10.89.65.9/24' }])],
      aliases: { zeta: ['web'] },
    });
    expect(Object.keys(s.Networks!)).toEqual(['alpha', 'zeta']);
    expect(s.Networks!.alpha.IPAddress).toBe('10.89.65.9');
    expect(JSON.stringify(s.Networks!.zeta)).toBe(
      '{"EndpointID":"","Gateway":"10.89.64.1","IPAddress":"10.89.64.5","IPPrefixLen":24,"IPv6Gateway":"fd00::1",' +
        '"GlobalIPv6Address":"fd00::5","GlobalIPv6PrefixLen":64,"MacAddress":"02:00:00:00:00:01",' +
        '"NetworkID":"zeta","Aliases":["web"],"DriverOpts":null,"IPAMConfig":null,"Links":null}',
    );
    expect(s.IPAddress).toBe('');
    expect(Object.keys(s).slice(-2)).toEqual(['SandboxKey', 'Networks']);
  });

  it('ports: every mapping of a key, ranges expanded, tcp,udp split, keys in Go order', () => {
    const s = toNetworkSettings({
      netnsPath: '/run/netns/p',
      portMappings: [
        { hostPort: 8080, containerPort: 80 },
        { hostIP: '127.0.0.1', hostPort: 9090, containerPort: 80, protocol: 'tcp' },
        { hostPort: 10000, containerPort: 1000, range: 3, protocol: 'tcp,udp' },
      ],
    });
    expect(Object.keys(s.Ports)).toEqual(['1000/tcp', '1000/udp', '1001/tcp', '1001/udp', '1002/tcp', '1002/udp', '80/tcp']);
    expect(s.Ports['80/tcp']).toEqual([
      { HostIp: '', HostPort: '8080' },
      { HostIp: '127.0.0.1', HostPort: '9090' },
    ]);
    expect(s.Ports['1002/udp']).toEqual([{ HostIp: '', HostPort: '10002' }]);
  });

  it('no CNI results (slirp4netns, none): ports and SandboxKey only', () => {
    const s = toNetworkSettings({ netnsPath: '/proc/123/ns/net', portMappings: [{ hostPort: 2222, containerPort: 22 }], networks: [], results: [] });
    expect(s).toMatchObject({ SandboxKey: '/proc/123/ns/net', IPAddress: '', MacAddress: '', Ports: { '22/tcp': [{ HostIp: '', HostPort: '2222' }] } });
    expect(s).not.toHaveProperty('Networks');
    expect(toNetworkSettings({ netnsPath: '/x', networks: [], results: [] }).Ports).toEqual({});
    expect(toNetworkSettings({ netnsPath: '/x', networks: ['slirp'], results: [] })).not.toHaveProperty('Networks');
  });

  it('network down: placeholder entries for the named networks, empty SandboxKey', () => {
    const s = toNetworkSettings({ netnsPath: '', networks: ['a'], results: [] });
    expect(s.SandboxKey).toBe('');
    expect(s.Networks).toEqual({ a: expect.objectContaining({ NetworkID: 'a', IPAddress: '' }) });
  });

  it('more results than networks, or fewer, is ERR_INSPECT_MISMATCH', () => {
    expect(() => toNetworkSettings({ netnsPath: '/x', networks: ['a'], results: [res, res] })).toThrow(
      expect.objectContaining({ code: 'ERR_INSPECT_MISMATCH', message: expect.stringMatching(/1 network\(s\) \[a\] but have 2/) }),
    );
    expect(() => toNetworkSettings({ netnsPath: '/x', networks: ['a', 'b'], results: [res] })).toThrow(
      expect.objectContaining({ code: 'ERR_INSPECT_MISMATCH' }),
    );
    expect(() => toNetworkSettings({ netnsPath: '/x', networks: [], results: [res, res] })).toThrow(expect.objectContaining({ code: 'ERR_INSPECT_MISMATCH' }));
  });

  it.each([
    ['a bad port', { portMappings: [{ hostPort: 70000, containerPort: 80 }] }, /portMappings\[0\]\.hostPort/],
    ['a bad protocol', { portMappings: [{ hostPort: 1, containerPort: 80, protocol: 'icmp' }] }, /protocol/],
    ['a range past 65535', { portMappings: [{ hostPort: 65535, containerPort: 80, range: 2 }] }, /range/],
    ['a duplicate network', { networks: ['a', 'a'], results: [res, res] }, /named twice/],
    ['a non-string network', { networks: [3] }, /networks/],
  ])('rejects %s with ERR_INVALID_ARGUMENT', (_l, extra, msg) => {
    expect(() => toNetworkSettings({ netnsPath: '/x', ...(extra as object) })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(msg) }),
    );
  });
});

describe('resolveNetnsPath (container:<id> chains)', () => {
  const table: Record<string, NetnsRef> = {
    infra: { netnsPath: '/run/netns/infra' },
    app: { netnsContainer: 'infra' },
    sidecar: { netnsContainer: 'app' },
    none: {},
    a: { netnsContainer: 'b' },
    b: { netnsContainer: 'c' },
    c: { netnsContainer: 'a' },
    self: { netnsContainer: 'self' },
    orphan: { netnsContainer: 'gone' },
  };
  const lookup = (id: string) => table[id];

  it('follows joins to the owner', () => {
    expect(resolveNetnsPath('infra', lookup)).toBe('/run/netns/infra');
    expect(resolveNetnsPath('sidecar', lookup)).toBe('/run/netns/infra');
    expect(resolveNetnsPath('none', lookup)).toBeNull();
  });

  it('a cycle is ERR_NETNS_CYCLE naming the chain, not a hang', () => {
    expect(() => resolveNetnsPath('a', lookup)).toThrow(
      expect.objectContaining({ code: 'ERR_NETNS_CYCLE', message: expect.stringContaining('a -> b -> c -> a') }),
    );
    expect(() => resolveNetnsPath('self', lookup)).toThrow(expect.objectContaining({ code: 'ERR_NETNS_CYCLE' }));
  });

  it('an unknown sandbox in the chain is ERR_NO_SUCH_SANDBOX', () => {
    expect(() => resolveNetnsPath('orphan', lookup)).toThrow(
      expect.objectContaining({ code: 'ERR_NO_SUCH_SANDBOX', message: expect.stringMatching(/'gone' \(joined by orphan\)/) }),
    );
    expect(() => resolveNetnsPath('', lookup)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
