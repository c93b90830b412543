/**
 * Bad input, table-driven: the API (Runtime, CniRuntime, NetNS), the CLI,
 * conflists, plugin output, slirp4netns options and paths. Each must fail
 * with a typed error (a PodnetError with the expected code; for the CLI its
 * exit status and the code printed) and leave nothing behind: no sandbox
 * state, namespace, mount, cache entry, lease, link or rule.
 * Resources: rel-net213 (pnrel213, 10.89.213.0/24), native network rel-nat213 (10.89.103.0/24),
 * rel-bad* networks (10.89.217-219.0/24), ports 42900-42999.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { NetNS, PodnetError, Runtime, linkStats } from '../../lib';
import { CniRuntime } from '../../lib/api/cni';
import { census, censusTotal, printFigures, setUpSuite, tearDownSuite, writePlugin } from '../helpers/reliability';
import { describeRoot } from '../helpers/system';

jest.setTimeout(300_000);

type Setup = Awaited<ReturnType<typeof setUpSuite>>;
/** One bad input: what it is, the call that must refuse it, and the code it must be refused with. */
type Case = [label: string, call: (x: Setup) => Promise<unknown>, code: string];

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

// ---- the API: Runtime.createSandbox ----
const create = (o: Record<string, unknown>) => (x: Setup) => x.rt.createSandbox({ id: 'rel-bad', ...o } as never);
const bridge = (o: Record<string, unknown>) => (x: Setup) => x.rt.createSandbox({ id: 'rel-bad', networks: [x.suite.network], ...o } as never);
const INVALID = 'ERR_INVALID_ARGUMENT';

const API: Case[] = [
  ...[undefined, '', '.', '..', '-x', 'a b', 'a/b', 'a\0b', 'x'.repeat(201), 5, null, {}, 'é'].map((id): Case => [
    `sandbox id ${JSON.stringify(id)}`,
    create({ id, network: 'none' }),
    INVALID,
  ]),
  ...['', 'a b', 'a/b', 7].map((name): Case => [`sandbox name ${JSON.stringify(name)}`, create({ name, network: 'none' }), INVALID]),
  ['pod name with a space', create({ podName: 'a b', network: 'none' }), INVALID],
  ['empty pod name', create({ podName: '', network: 'none' }), INVALID],
  ['pod id with a slash', create({ podId: 'a/b', network: 'none' }), INVALID],
  ...['bogus', 'BRIDGE', '', 'ns:', 'ns:relative/path', 'ns:/a\0b', 'container:', 'container:a b', 5].map((network): Case => [
    `network mode ${JSON.stringify(network)}`,
    create({ network }),
    INVALID,
  ]),
  ['container: a sandbox that does not exist', create({ network: 'container:rel-nosuch' }), 'ERR_NO_SUCH_SANDBOX'],
  ['ns: a path that does not exist', create({ network: 'ns:/run/netns/rel-nosuch' }), 'ENOENT'],
  ['ns: a regular file', create({ network: 'ns:/etc/hostname' }), 'ERR_NOT_NETNS'],
  ['networks not an array', create({ networks: 'x' }), INVALID],
  ['networks with an empty name', create({ networks: [''] }), INVALID],
  ['networks with a bad name', create({ networks: ['a b'] }), INVALID],
  ['networks not strings', create({ networks: [5] }), INVALID],
  ['a network listed twice', (x) => x.rt.createSandbox({ id: 'rel-bad', networks: [x.suite.network, x.suite.network] }), INVALID],
  ['an unknown network', create({ networks: ['rel-nosuch-net'] }), 'ERR_CNI_NETWORK_NOT_FOUND'],
  ['a network whose plugin is not installed', create({ networks: ['rel-bad-missing'] }), 'ERR_CNI_PLUGIN_NOT_FOUND'],
  ['networks with network mode none', create({ networks: ['rel-net213'], network: 'none' }), INVALID],
  ...['1.2.3', '999.1.1.1', 'abc', '::g', '224.0.0.1', '0.0.0.0', '10.89.99.5', '', 5, '10.89.213.5/33'].map((staticIP): Case => [
    `static IP ${JSON.stringify(staticIP)}`,
    bridge({ staticIP }),
    INVALID,
  ]),
  ...['zz', '01:00:00:00:00:00', '00:11:22:33:44', '00:11:22:33:44:55:66', '', 5].map((staticMAC): Case => [
    `static MAC ${JSON.stringify(staticMAC)}`,
    bridge({ staticMAC }),
    INVALID,
  ]),
  ['requested IP that is not an address', bridge({ requestedIP: 'x' }), INVALID],
  ['static IP in mode none', create({ network: 'none', staticIP: '10.89.213.9' }), INVALID],
  ['static MAC in mode slirp4netns', create({ network: 'slirp4netns', staticMAC: '02:00:00:00:00:01' }), INVALID],
  ['requested IP in mode host', create({ network: 'host', requestedIP: '10.89.213.9' }), INVALID],
  ...(
    [
      ['not an array', 'x'],
      ['an object', {}],
      ['a null entry', [null]],
      ['an empty entry', [{}]],
      ['host port -1', [{ hostPort: -1, containerPort: 80 }]],
      ['host port 70000', [{ hostPort: 70000, containerPort: 80 }]],
      ['host port 1.5', [{ hostPort: 1.5, containerPort: 80 }]],
      ['host port as a string', [{ hostPort: '80', containerPort: 80 }]],
      ['container port 0', [{ hostPort: 42901, containerPort: 0 }]],
      ['container port 65536', [{ hostPort: 42901, containerPort: 65536 }]],
      ['range 0', [{ hostPort: 42901, containerPort: 80, range: 0 }]],
      ['range 1.5', [{ hostPort: 42901, containerPort: 80, range: 1.5 }]],
      ['range past 65535', [{ hostPort: 42901, containerPort: 80, range: 70000 }]],
      ['protocol icmp', [{ hostPort: 42901, containerPort: 80, protocol: 'icmp' }]],
      ['protocol a number', [{ hostPort: 42901, containerPort: 80, protocol: 5 }]],
      ['protocols tcp,icmp', [{ hostPort: 42901, containerPort: 80, protocol: 'tcp,icmp' }]],
      ['host IP not an address', [{ hostIP: 'abc', hostPort: 42901, containerPort: 80 }]],
      ['host IP 1.2.3', [{ hostIP: '1.2.3', hostPort: 42901, containerPort: 80 }]],
      [
        'the same host port twice',
        [
          { hostPort: 42901, containerPort: 80 },
          { hostPort: 42901, containerPort: 81 },
        ],
      ],
    ] as const
  ).map(([what, portMappings]): Case => [`port mappings: ${what}`, bridge({ portMappings }), INVALID]),
  ['a host IP that is not local (bridge)', bridge({ portMappings: [{ hostIP: '10.89.213.99', hostPort: 42901, containerPort: 80 }] }), 'EADDRNOTAVAIL'],
  [
    'a host IP that is not local (slirp4netns)',
    create({ network: 'slirp4netns', portMappings: [{ hostIP: '10.89.213.99', hostPort: 42901, containerPort: 80 }] }),
    'EADDRNOTAVAIL',
  ],
  ['a host port a host listener holds (bridge)', bridge({ portMappings: [{ hostPort: 42999, containerPort: 80 }] }), 'EADDRINUSE'],
  ['a host port a host listener holds (slirp4netns)', create({ network: 'slirp4netns', portMappings: [{ hostPort: 42999, containerPort: 80 }] }), 'EADDRINUSE'],
  ...['none', 'host', 'ns:/run/netns/rel-nosuch', 'container:rel-nosuch'].map((network): Case => [
    `port mappings in mode ${network}`,
    create({ network, portMappings: [{ hostPort: 42902, containerPort: 80 }] }),
    INVALID,
  ]),
  ['sctp with slirp4netns', create({ network: 'slirp4netns', portMappings: [{ hostPort: 42903, containerPort: 80, protocol: 'sctp' }] }), INVALID],
  [
    'an IPv6 host IP with port_handler=slirp4netns',
    create({ network: 'slirp4netns', networkOptions: ['port_handler=slirp4netns'], portMappings: [{ hostIP: '::1', hostPort: 42903, containerPort: 80 }] }),
    INVALID,
  ],
  ['slirp4netns options in bridge mode', bridge({ networkOptions: ['mtu=1500'] }), INVALID],
  ['slirp4netns options in mode none', create({ network: 'none', networkOptions: ['mtu=1500'] }), INVALID],
  ...[
    ['mtu=abc'],
    ['mtu=10'],
    ['mtu=70000'],
    ['port_handler=xyz'],
    ['unknown=1'],
    ['cidr=bad'],
    ['cidr=10.0.2.1/24'],
    ['cidr=10.0.0.0/30'],
    ['enable_ipv6=maybe'],
    ['allow_host_loopback=1'],
    ['outbound_addr=x'],
    ['novalue'],
    ['=x'],
    [5],
    'mtu=1500',
  ].map((networkOptions): Case => [
    `slirp4netns options ${JSON.stringify(networkOptions)}`,
    create({ network: 'slirp4netns', networkOptions }),
    'ERR_SLIRP_OPTION',
  ]),
  ...[-1, 0, 1.5, 'x'].map((pid): Case => [`pid ${JSON.stringify(pid)}`, create({ network: 'none', pid }), INVALID]),
  ['pid in mode host', create({ network: 'host', pid: process.pid }), INVALID],
  ['pid of no process', create({ network: 'none', pid: 4194000 }), 'ESRCH'],
];

// ---- the API: runtime and CNI runtime options (the state dir and its paths) ----
const OPTIONS: Case[] = [
  ['a relative state dir', () => new Runtime({ stateDir: 'state' }).list(), INVALID],
  ['a state dir with NUL', () => new Runtime({ stateDir: '/tmp/a\0b' }).list(), INVALID],
  [
    'a state dir that is a file',
    (x) => new Runtime({ stateDir: path.join(x.suite.dir, 'a-file') }).createSandbox({ id: 'rel-bad', network: 'none' }),
    'ERR_STATE_DIR',
  ],
  [
    'a state dir another user owns',
    (x) => new Runtime({ stateDir: path.join(x.suite.dir, 'not-mine') }).createSandbox({ id: 'rel-bad', network: 'none' }),
    'ERR_STATE_DIR',
  ],
  ['a relative CNI config dir', () => Promise.resolve().then(() => new CniRuntime({ confDir: 'net.d' })), INVALID],
  ['a relative CNI cache dir', () => Promise.resolve().then(() => new CniRuntime({ cacheDir: 'cache' })), INVALID],
  ['plugin dirs not an array', () => Promise.resolve().then(() => new CniRuntime({ binDirs: 'x' as never })), INVALID],
  ['plugin dirs not strings', () => Promise.resolve().then(() => new CniRuntime({ binDirs: [5] as never })), INVALID],
  ['a relative plugin dir', () => Promise.resolve().then(() => new CniRuntime({ binDirs: ['bin'] })), INVALID],
  ...[0, -1, 1.5, 'x'].map((t): Case => [
    `plugin timeout ${JSON.stringify(t)}`,
    () => Promise.resolve().then(() => new CniRuntime({ pluginTimeoutMs: t as never })),
    INVALID,
  ]),
  ['a default network with a bad name', () => Promise.resolve().then(() => new CniRuntime({ defaultNetwork: 'a b' })), INVALID],
];

// ---- the API: CniRuntime pods ----
const pod = (o: Record<string, unknown>) => (x: Setup) =>
  x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [x.suite.network], ...o } as never);
const PODS: Case[] = [
  ['a relative netns path', pod({ netnsPath: 'run/netns/x' }), INVALID],
  ['a netns path with NUL', pod({ netnsPath: '/run/netns/a\0b' }), INVALID],
  ['a netns that does not exist', pod({ netnsPath: '/run/netns/rel-nosuch' }), 'ENOENT'],
  ...['eth0123456789012', 'a/b', 'a:b', 'a b', ''].map((ifname): Case => [
    `interface name ${JSON.stringify(ifname)}`,
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: x.suite.network, ifname }] }),
    INVALID,
  ]),
  [
    'the same interface name twice',
    (x) =>
      x.rt.cni.setUpPod({
        id: 'rel-bad',
        netnsPath: x.env.nsPath,
        networks: [
          { name: x.suite.network, ifname: 'eth0' },
          { name: 'rel-bad-plain', ifname: 'eth0' },
        ],
      }),
    INVALID,
  ],
  [
    'aliases not an array',
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: x.suite.network, aliases: 'x' as never }] }),
    INVALID,
  ],
  ['an empty alias', (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: x.suite.network, aliases: [''] }] }), INVALID],
  [
    'bandwidth not an object',
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: x.suite.network, bandwidth: 5 as never }] }),
    INVALID,
  ],
  [
    'dns not an object',
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: x.suite.network, dns: 'x' as never }] }),
    INVALID,
  ],
  ['a pod name with ;', pod({ name: 'a;b' }), INVALID],
  ['a pod namespace with =', pod({ namespace: 'a=b' }), INVALID],
  ['a network entry without a name', pod({ networks: [{}] }), INVALID],
  ['a null network entry', pod({ networks: [null] }), INVALID],
  [
    'a MAC on a network without the mac capability',
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: 'rel-bad-plain', mac: '02:00:00:00:00:01' }] }),
    INVALID,
  ],
  [
    'static IPs on a network without the ips capability',
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: [{ name: 'rel-bad-plain', ips: ['10.89.218.5'] }] }),
    INVALID,
  ],
  [
    'port mappings on a network without portMappings',
    (x) => x.rt.cni.setUpPod({ id: 'rel-bad', netnsPath: x.env.nsPath, networks: ['rel-bad-plain'], portMappings: [{ hostPort: 42904, containerPort: 80 }] }),
    INVALID,
  ],
];

// ---- conflists (each file named for its network) ----
const CONFLISTS: [string, string][] = [
  ['rel-bad-json', '{"cniVersion": "1.0.0", "name": "rel-bad-json", "plugins": ['],
  ['rel-bad-noname', JSON.stringify({ cniVersion: '1.0.0', plugins: [{ type: 'bridge' }] })],
  ['rel-bad-name', JSON.stringify({ cniVersion: '1.0.0', name: 'a b', plugins: [{ type: 'bridge' }] })],
  ['rel-bad-nover', JSON.stringify({ name: 'rel-bad-nover', plugins: [{ type: 'bridge' }] })],
  ['rel-bad-ver', JSON.stringify({ cniVersion: '9.9', name: 'rel-bad-ver', plugins: [{ type: 'bridge' }] })],
  ['rel-bad-plugins', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-plugins', plugins: {} })],
  ['rel-bad-empty', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-empty', plugins: [] })],
  ['rel-bad-notype', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-notype', plugins: [{}] })],
  ['rel-bad-pathtype', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-pathtype', plugins: [{ type: '../bridge' }] })],
  ['rel-bad-emptytype', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-emptytype', plugins: [{ type: '' }] })],
  ['rel-bad-caps', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-caps', plugins: [{ type: 'bridge', capabilities: 5 }] })],
  ['rel-bad-check', JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-check', disableCheck: 'yes', plugins: [{ type: 'bridge' }] })],
  ['rel-bad-vers', JSON.stringify({ cniVersions: '1.0.0', name: 'rel-bad-vers', plugins: [{ type: 'bridge' }] })],
  ['rel-bad-array', JSON.stringify([{ type: 'bridge' }])],
];
const CONF: Case[] = CONFLISTS.map(([name]): Case => [`conflist ${name}`, create({ networks: [name] }), 'ERR_CNI_CONFIG']);

// ---- network creation ----
const netCreate = (o: Record<string, unknown>) => (x: Setup) =>
  x.rt.cni.createNetwork({ name: 'rel-bad-new', bridge: 'pnrel219', subnet: '10.89.219.0/24', ...o } as never);
const NETWORKS: Case[] = [
  ['network name with a space', netCreate({ name: 'a b' }), INVALID],
  ['bridge name of 16 bytes', netCreate({ bridge: 'x'.repeat(16) }), INVALID],
  ['subnet not a CIDR', netCreate({ subnet: 'abc' }), INVALID],
  ['subnet with host bits', netCreate({ subnet: '10.89.219.1/24' }), INVALID],
  ['subnet too small', netCreate({ subnet: '10.89.219.0/31' }), INVALID],
  ['IPv6 subnet given as IPv4', netCreate({ ipv6Subnet: '10.89.219.0/24', subnet: undefined }), INVALID],
  ['gateway outside the subnet', netCreate({ gateway: '10.89.1.1' }), INVALID],
  ['MTU 10', netCreate({ mtu: 10 }), INVALID],
  ['no subnet at all', netCreate({ subnet: undefined }), INVALID],
  ['a subnet another network has', netCreate({ subnet: '10.89.213.0/24' }), 'ERR_CNI_NETWORK_EXISTS'],
  ['a bridge another network has', netCreate({ bridge: 'pnrel213' }), 'ERR_CNI_NETWORK_EXISTS'],
  ['a name another network has', netCreate({ name: 'rel-net213' }), 'ERR_CNI_NETWORK_EXISTS'],
];

// ---- plugin output (the plugin runs; what it did must be undone) ----
const OUTPUTS: [string, string, string, string?][] = [
  ['garbage', `echo 'this is not json'`, 'ERR_CNI_PLUGIN_OUTPUT'],
  ['a number', 'echo 5', 'ERR_CNI_PLUGIN_OUTPUT'],
  ['ips not an array', `echo '{"cniVersion":"1.0.0","ips":5}'`, 'ERR_CNI_PLUGIN_OUTPUT'],
  ['an address that is not one', `echo '{"cniVersion":"1.0.0","ips":[{"address":"x"}]}'`, 'ERR_CNI_PLUGIN_OUTPUT'],
  ['an address outside the IPAM subnet', `echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}'`, 'ERR_CNI_PLUGIN_OUTPUT'],
  [
    'an interface index out of range',
    `echo '{"cniVersion":"1.0.0","interfaces":[],"ips":[{"address":"10.89.217.5/24","interface":3}]}'`,
    'ERR_CNI_PLUGIN_OUTPUT',
  ],
  ['an error (CNI code 7)', `echo '{"cniVersion":"1.0.0","code":7,"msg":"no"}'; exit 1`, 'ERR_CNI_PLUGIN_FAILED'],
  ['exit 1 without output', 'exit 1', 'ERR_CNI_PLUGIN_FAILED'],
  ['killed by a signal', 'kill -9 $$', 'ERR_CNI_PLUGIN_FAILED'],
  ['VERSION garbage', 'exit 0', 'ERR_CNI_PLUGIN_OUTPUT', `echo 'nope'`],
  ['VERSION without supportedVersions', 'exit 0', 'ERR_CNI_PLUGIN_OUTPUT', `echo '{"cniVersion":"1.0.0"}'`],
  ['VERSION without 1.0.0', 'exit 0', 'ERR_CNI_VERSION', `echo '{"cniVersion":"0.3.1","supportedVersions":["0.3.1"]}'`],
];
// ADD output can only be judged once the plugin has run (OUTPUT: what it did is undone); VERSION before anything is made.
const OUTPUT: Case[] = [];
const VERSION: Case[] = [];
OUTPUTS.forEach(([what, , code, version], i) => (version ? VERSION : OUTPUT).push([`plugin output: ${what}`, create({ networks: [`rel-bad-out${i}`] }), code]));

// ---- the CLI (its default runtime; the sandbox name is checked for leftovers) ----
const cli =
  (...args: string[]) =>
  () =>
    promisify(execFile)(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }).then(
      (r) => r,
      (e: { code: number; stderr: string }) => {
        const m = /\((E[A-Z_]+)\)\n/.exec(e.stderr);
        throw new PodnetError(m ? m[1] : 'NO_CODE', `exit ${e.code}: ${e.stderr.split('\n')[0]}`, { details: { exit: e.code } });
      },
    );
const run = (...flags: string[]) => cli('run', '--name', 'rel-bad-cli', ...flags, '--', 'true');
const CLIS: Case[] = [
  ['run without a command', cli('run', '--name', 'rel-bad-cli'), 'ERR_USAGE'],
  ['run with an unknown flag', run('--bogus'), 'ERR_USAGE'],
  ...['abc', '80', '1-2:3', '0:0', '80:70000', '80:80/icmp', '1.2.3:80:80', '[::1]80:80'].map((p): Case => [`run -p ${p}`, run('-p', p), 'ERR_USAGE']),
  ['run --ip not an address', run('--ip', 'x'), INVALID],
  ['run --mac not a MAC', run('--mac', 'zz'), INVALID],
  ['run --network-opt mtu=abc', run('--network', 'slirp4netns', '--network-opt', 'mtu=abc'), 'ERR_SLIRP_OPTION'],
  ['run --network-opt in mode none', run('--network', 'none', '--network-opt', 'mtu=1500'), INVALID],
  ['run --network with an unknown network', run('--network', 'rel-nosuch-net'), 'ERR_CNI_NETWORK_NOT_FOUND'],
  ['run --name with a space', cli('run', '--name', 'a b', '--', 'true'), INVALID],
  ['an unknown command', cli('frobnicate'), 'ERR_USAGE'],
  ['network create with a bad name', cli('network', 'create', 'a b'), INVALID],
  ['network create with a bad subnet', cli('network', 'create', 'rel-bad-cli', '--subnet', 'abc'), INVALID],
  ['netns add a/b', cli('netns', 'add', 'a/b'), INVALID],
  ['inspect a bad id', cli('inspect', 'a b'), INVALID],
  ['stats --interval -1', cli('stats', '--interval', '-1'), 'ERR_USAGE'],
  ['stats --interval 0', cli('stats', '--interval', '0'), 'ERR_USAGE'],
];

// ---- paths given to namespace and statistics calls ----
const PATHS: Case[] = [
  ['NetNS.open of a relative path', () => NetNS.open('run/netns/x'), INVALID],
  ['NetNS.open of a missing path', () => NetNS.open('/run/netns/rel-nosuch'), 'ENOENT'],
  ['NetNS.open of a regular file', () => NetNS.open('/etc/hostname'), 'ERR_NOT_NETNS'],
  ['NetNS.create named a/b', () => NetNS.create({ name: 'a/b' }), INVALID],
  ['NetNS.create named ..', () => NetNS.create({ name: '..' }), INVALID],
  ['NetNS.create with an empty name', () => NetNS.create({ name: '' }), INVALID],
  ['NetNS.create in a relative dir', () => NetNS.create({ dir: 'netns', name: 'rel-x' }), INVALID],
  ['NetNS.removePath of a relative path', () => NetNS.removePath('netns/x'), INVALID],
  ['linkStats of a relative path', () => linkStats('proc/1/ns/net'), INVALID],
];

const GROUPS: Record<string, Case[]> = { API, OPTIONS, PODS, CONF, NETWORKS, OUTPUT, VERSION, CLI: CLIS, PATHS };
const ALL = Object.entries(GROUPS).flatMap(([g, cases]) => cases.map(([label, call, code]): [string, string, string, Case[1]] => [g, label, code, call]));

/** Modification times (ns) of the directories a set-up writes into: unchanged means nothing was made, even briefly. */
function stamps(x: Setup): Record<string, string> {
  const dirs = [
    path.join(x.suite.runtime.stateDir, 'sandboxes'),
    path.join(x.suite.runtime.cni.cacheDir, 'results'),
    `/var/lib/cni/networks/${x.suite.network}`,
  ];
  return Object.fromEntries(dirs.map((d) => [d, existsSync(d) ? String(statSync(d, { bigint: true }).mtimeNs) : 'absent']));
}

describeRoot('bad input: a typed error and nothing made', () => {
  let x: Setup | undefined;
  let listener: net.Server | undefined;
  const counts: Record<string, number> = {};
  const netns = () => (existsSync('/run/netns') ? readdirSync('/run/netns') : []);
  let baseline: { netns: string[]; conf: string[] } = { netns: [], conf: [] };

  beforeAll(async () => {
    x = await setUpSuite(213, [42900, 42999]);
    const { confDir, binDirs } = x.suite.runtime.cni;
    writeFileSync(
      path.join(confDir, 'rel-bad-missing.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-missing', plugins: [{ type: 'rel-nosuch' }] }),
    );
    writeFileSync(
      path.join(confDir, 'rel-bad-plain.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'rel-bad-plain', plugins: [{ type: 'rel-pass' }] }),
    );
    writePlugin(binDirs[0], 'rel-pass', 'cat >/dev/null; echo \'{"cniVersion":"1.0.0"}\'');
    for (const [name, text] of CONFLISTS) writeFileSync(path.join(confDir, `${name}.conflist`), text);
    OUTPUTS.forEach(([, add, , version], i) => {
      writePlugin(binDirs[0], `rel-out${i}`, add, version);
      const plugins = [{ type: `rel-out${i}`, ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.217.0/24' }]] } }];
      writeFileSync(path.join(confDir, `rel-bad-out${i}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: `rel-bad-out${i}`, plugins }));
    });
    writeFileSync(path.join(x.suite.dir, 'a-file'), '');
    mkdirSync(path.join(x.suite.dir, 'not-mine'), { mode: 0o700 });
    chownSync(path.join(x.suite.dir, 'not-mine'), 65534, 65534);
    listener = net.createServer().listen(42999);
    await new Promise((r) => listener!.once('listening', r));
    baseline = { netns: netns(), conf: readdirSync(confDir) };
  });

  // A case that fails must not fail the next ones: what it left goes.
  afterEach(async () => {
    await x!.rt.teardown('rel-bad').catch(() => {});
    await x!.rt.cni.tearDownPod({ id: 'rel-bad', force: true }).catch(() => {});
    await x!.rt.gc().catch(() => {});
    if (existsSync('/sys/class/net/pnrel213')) await promisify(execFile)('ip', ['link', 'delete', 'pnrel213']);
  });

  afterAll(async () => {
    listener?.close();
    printFigures('bad-input', { cases: ALL.length, byGroup: counts });
    await tearDownSuite(x);
  });

  test.each(ALL)('%s: %s -> %s', async (group, _label, code, call) => {
    counts[group] = (counts[group] ?? 0) + 1;
    const touched = stamps(x!);
    const err = await Promise.resolve()
      .then(() => call(x!))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(PodnetError);
    expect(err).toMatchObject({ code });
    const left = census(x!.suite, x!.netnsPrefix, x!.keep);
    expect(censusTotal(left) === 0 ? {} : left).toEqual({});
    // Other runtimes make namespaces meanwhile: only names these inputs could have made count.
    expect(netns().filter((n) => !baseline.netns.includes(n) && /rel-(bad|x)/.test(n))).toEqual([]);
    expect(readdirSync(x!.suite.runtime.cni.confDir).filter((f) => !baseline.conf.includes(f))).toEqual([]);
    expect(existsSync('/run/podnet/sandboxes/rel-bad-cli.json')).toBe(false);
    expect(existsSync('/sys/class/net/pnrel213')).toBe(false); // no bridge plugin ever ran on the suite's network
    // Not even for a moment: a state file or cache entry written and removed again changes its directory.
    if (group !== 'OUTPUT') expect(stamps(x!)).toEqual(touched);
  });

  test('at least 150 bad inputs', () => {
    expect(ALL.length).toBeGreaterThanOrEqual(150);
  });
});
