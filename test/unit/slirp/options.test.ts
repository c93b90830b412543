/** Pure logic: option parsing (also property-based), --help feature parsing, command line, subordinate id ranges. */
import fc from 'fast-check';

import { PodnetError } from '../../../lib/errors';
import { parseSlirpOptions, parseSlirpHelp, slirpArgs, hostForwardsFromPortMappings, DEFAULT_SLIRP_MTU } from '../../../lib/slirp';
import { findSubIdRange } from '../../../lib/rootless';

const HELP_1_2 = `Usage: slirp4netns [OPTION]... PID|PATH [TAPNAME]
-c, --configure          bring up the interface
-e, --exit-fd=FD         specify the FD for terminating slirp4netns
-r, --ready-fd=FD        specify the FD to write to when the network is configured
-m, --mtu=MTU            specify MTU (default=1500, max=65521)
-6, --enable-ipv6        enable IPv6 (experimental)
-a, --api-socket=PATH    specify API socket path
--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24)
--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace
--netns-type=TYPE 	 specify network namespace type ([path|pid], default=pid)
--userns-path=PATH	 specify user namespace path
--enable-sandbox         create a new mount namespace (and drop all caps except CAP_NET_BIND_SERVICE if running as the root)
--enable-seccomp         enable seccomp to limit syscalls (experimental)
--outbound-addr=IPv4     sets outbound ipv4 address to bound to (experimental)
--outbound-addr6=IPv6    sets outbound ipv6 address to bound to (experimental)
--disable-dns            disables 10.0.2.3 (or configured internal ip) to host dns redirect (experimental)
--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)`;

// slirp4netns 0.4.x: no sandbox/seccomp/cidr/api socket flags yet.
const HELP_0_4 = `Usage: slirp4netns [OPTION]... PID TAPNAME
-c, --configure          bring up the interface
-e, --exit-fd=FD         specify the FD for terminating slirp4netns
-r, --ready-fd=FD        specify the FD to write to when the network is configured
-m, --mtu=MTU            specify MTU (default=1500, max=65521)
--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace`;

describe('parseSlirpOptions', () => {
  test('defaults as Podman 2.x', () => {
    expect(parseSlirpOptions([])).toEqual({ portHandler: 'rootlesskit', keepClientAddress: true, allowHostLoopback: false, mtu: 65520, enableIPv6: false });
    expect(DEFAULT_SLIRP_MTU).toBe(65520);
  });

  test('every option, later ones override earlier ones', () => {
    expect(
      parseSlirpOptions([
        'port_handler=slirp4netns',
        'keep_client_address=false',
        'allow_host_loopback=true',
        'mtu=1500',
        'cidr=10.5.0.0/16',
        'enable_ipv6=true',
        'outbound_addr=192.0.2.1',
        'mtu=9000',
      ]),
    ).toEqual({
      portHandler: 'slirp4netns',
      keepClientAddress: false,
      allowHostLoopback: true,
      mtu: 9000,
      cidr: '10.5.0.0/16',
      enableIPv6: true,
      outboundAddr: '192.0.2.1',
    });
    expect(parseSlirpOptions(['outbound_addr=2001:db8::1']).outboundAddr).toBe('2001:db8::1');
  });

  test.each([
    ['port_handler', 'expected key=value'], // no '=': crashed Podman 2.x
    ['=slirp4netns', 'expected key=value'],
    ['port_handler=pasta', "'slirp4netns' or 'rootlesskit'"],
    ['allow_host_loopback=yes', "'true' or 'false'"],
    ['keep_client_address=no', "'true' or 'false'"],
    ['enable_ipv6=', "'true' or 'false'"],
    ['mtu=67', '68 to 65521'],
    ['mtu=65522', '68 to 65521'],
    ['mtu=1e3', '68 to 65521'],
    ['cidr=10.0.2.0', 'IPv4 network'],
    ['cidr=10.0.2.0/26', '1-25'],
    ['cidr=10.0.2.1/24', 'did you mean 10.0.2.0/24'],
    ['outbound_addr=eth0', 'IP address'],
    ['dns=1.1.1.1', "unknown option 'dns'"],
  ])('%s is refused: %s', (opt, why) => {
    expect(() => parseSlirpOptions([opt])).toThrow(expect.objectContaining({ code: 'ERR_SLIRP_OPTION', message: expect.stringContaining(why) }));
    // the message lists the valid options
    expect(() => parseSlirpOptions([opt])).toThrow(/valid: port_handler=slirp4netns\|rootlesskit/);
  });
});

describe('parseSlirpHelp', () => {
  test('slirp4netns 1.2 has everything', () => {
    const f = parseSlirpHelp('/usr/bin/slirp4netns', HELP_1_2, 'slirp4netns version 1.2.0\ncommit: 656041d');
    expect(f).toEqual({
      binary: '/usr/bin/slirp4netns',
      version: '1.2.0',
      sandbox: true,
      seccomp: true,
      disableHostLoopback: true,
      mtu: true,
      ipv6: true,
      cidr: true,
      outboundAddr: true,
      outboundAddr6: true,
      disableDns: true,
      macAddress: true,
      apiSocket: true,
      netnsTypePath: true,
      usernsPath: true,
    });
  });

  test('an old one lacks the newer flags', () => {
    const f = parseSlirpHelp('/old/slirp4netns', HELP_0_4);
    expect(f).toMatchObject({ sandbox: false, seccomp: false, cidr: false, apiSocket: false, mtu: true, disableHostLoopback: true, outboundAddr: false });
    expect(f.version).toBeUndefined();
  });
});

describe('slirpArgs', () => {
  const f = parseSlirpHelp('/usr/bin/slirp4netns', HELP_1_2);
  test("Podman 2.x's command line for a persistent namespace, with an API socket", () => {
    expect(
      slirpArgs(f, parseSlirpOptions(['port_handler=slirp4netns']), {
        netns: '/run/netns/x',
        ifname: 'tap0',
        apiSocket: '/tmp/a.sock',
        sandbox: true,
        seccomp: true,
      }),
    ).toEqual([
      '--disable-host-loopback',
      '--mtu',
      '65520',
      '--enable-sandbox',
      '--enable-seccomp',
      '--api-socket',
      '/tmp/a.sock',
      '-c',
      '-e',
      '3',
      '-r',
      '4',
      '--netns-type=path',
      '/run/netns/x',
      'tap0',
    ]);
  });

  test('post-configure mode by pid, user namespace, loopback allowed, cidr, ipv6, outbound v6', () => {
    expect(
      slirpArgs(f, parseSlirpOptions(['allow_host_loopback=true', 'cidr=10.9.0.0/24', 'enable_ipv6=true', 'outbound_addr=2001:db8::1']), {
        pid: 42,
        userns: '/proc/42/ns/user',
        ifname: 'tap1',
        sandbox: false,
        seccomp: false,
      }),
    ).toEqual([
      '--mtu',
      '65520',
      '--cidr=10.9.0.0/24',
      '--enable-ipv6',
      '--outbound-addr6=2001:db8::1',
      '--userns-path=/proc/42/ns/user',
      '-c',
      '-e',
      '3',
      '-r',
      '4',
      '42',
      'tap1',
    ]);
  });

  test('asking an old binary for what it lacks is a typed error', () => {
    const old = parseSlirpHelp('/old/slirp4netns', HELP_0_4);
    expect(() => slirpArgs(old, parseSlirpOptions(['cidr=10.9.0.0/24']), { pid: 1, ifname: 'tap0', sandbox: false, seccomp: false })).toThrow(
      expect.objectContaining({ code: 'ERR_SLIRP_OPTION', message: expect.stringContaining('--cidr') }),
    );
    expect(() => slirpArgs(old, parseSlirpOptions([]), { netns: '/run/netns/x', ifname: 'tap0', sandbox: false, seccomp: false })).toThrow(/--netns-type/);
  });
});

describe('findSubIdRange', () => {
  const text = 'alice:100000:65536\n1001:165536:65536\nbob:x:1\ncarol:300000:0\n';
  test.each([
    ['alice', 1000, { start: 100000, count: 65536 }],
    ['dave', 1001, { start: 165536, count: 65536 }], // by uid
    ['bob', 1002, undefined], // malformed
    ['carol', 1003, undefined], // empty range
    ['eve', 1004, undefined],
  ])('%s (%i)', (name, id, want) => {
    expect(findSubIdRange(text, name as string, id as number)).toEqual(want);
  });
});

describe('hostForwardsFromPortMappings', () => {
  test('ranges, protocol lists and the default host address', () => {
    expect(
      hostForwardsFromPortMappings([
        { hostPort: 8080, containerPort: 80 },
        { hostIP: '127.0.0.1', hostPort: 5000, containerPort: 6000, protocol: 'tcp,udp', range: 2 },
      ]),
    ).toEqual([
      { proto: 'tcp', hostAddr: '0.0.0.0', hostPort: 8080, guestPort: 80 },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 5000, guestPort: 6000 },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 5001, guestPort: 6001 },
      { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 5000, guestPort: 6000 },
      { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 5001, guestPort: 6001 },
    ]);
  });

  test.each([
    [{ hostPort: 80, containerPort: 80, protocol: 'sctp' }, "protocol 'sctp'"],
    [{ hostIP: '::1', hostPort: 80, containerPort: 80 }, 'IPv4 only'],
    [{ hostPort: 65535, containerPort: 80, range: 2 }, 'go past 65535'],
    [{ hostPort: 0, containerPort: 80 }, 'host port'],
    [{ hostPort: 80, containerPort: 80, range: 0 }, 'range'],
  ])('%j is refused (%s)', (m, why) => {
    expect(() => hostForwardsFromPortMappings([m])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining(why) }));
  });
});

const KEYS = ['port_handler', 'allow_host_loopback', 'enable_ipv6', 'mtu', 'cidr', 'outbound_addr', 'bogus', ''];

describe('parseSlirpOptions', () => {
  test('arbitrary key=value lists: options within their documented ranges, or ERR_SLIRP_OPTION', () => {
    const opt = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.constantFrom(...KEYS),
          fc.oneof(fc.string(), fc.integer().map(String), fc.constantFrom('true', 'false', 'slirp4netns', '10.0.2.0/24', '10.0.2.1/24', '::1')),
        )
        .map(([k, v]) => `${k}=${v}`),
    );
    fc.assert(
      fc.property(fc.array(opt, { maxLength: 4 }), (list) => {
        try {
          const o = parseSlirpOptions(list);
          return o.mtu >= 68 && o.mtu <= 65521 && (o.portHandler === 'rootlesskit' || o.portHandler === 'slirp4netns');
        } catch (e) {
          return e instanceof PodnetError && e.code === 'ERR_SLIRP_OPTION' && list.includes((e.details as { option: string }).option);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
