/**
 * The CNI protocol layer of the podnet plugin executable (csrc/cniplugin/protocol.cc),
 * exec'd with crafted environments and stdin: every vector fails before any system
 * change, so no root is needed. Codes are SPEC.md's "Error" table.
 */
import { invokePlugin, type CniEnv } from '../../helpers/cniplugin';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
// A path that exists and is not a network namespace: requests that get past every
// pure check stop there (code 4 naming CNI_NETNS), before the engine is reached.
const NOT_NETNS = '/etc/hostname';
const ADD: CniEnv = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'cnip-unit-1', CNI_NETNS: NOT_NETNS, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const conf = (extra: object = {}, version = '1.0.0') => ({ cniVersion: version, name: 'cnip-unit', type: 'podnet', ...extra });
const result10 = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }], ips: [{ address: '10.89.230.5/24', interface: 0 }] };

interface Vector {
  name: string;
  env: CniEnv;
  stdin: string | object;
  code: number;
  msg: RegExp;
  /** cniVersion the error must report (default: the config's, else 1.1.0). */
  version?: string;
}

const vectors: Vector[] = [
  { name: 'no CNI_COMMAND', env: {}, stdin: conf(), code: 4, msg: /CNI_COMMAND/, version: '1.1.0' },
  { name: 'unknown CNI_COMMAND', env: { ...ADD, CNI_COMMAND: 'ATTACH' }, stdin: conf(), code: 4, msg: /unknown CNI_COMMAND: ATTACH/, version: '1.1.0' },
  {
    name: 'ADD without container id and netns',
    env: { ...ADD, CNI_CONTAINERID: '', CNI_NETNS: '' },
    stdin: conf(),
    code: 4,
    msg: /\[CNI_CONTAINERID,CNI_NETNS\] missing/,
    version: '1.1.0',
  },
  {
    name: 'CHECK without ifname',
    env: { ...ADD, CNI_COMMAND: 'CHECK', CNI_IFNAME: '' },
    stdin: conf(),
    code: 4,
    msg: /\[CNI_IFNAME\] missing/,
    version: '1.1.0',
  },
  {
    name: 'DEL without container id',
    env: { CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0' },
    stdin: conf(),
    code: 4,
    msg: /\[CNI_CONTAINERID\] missing/,
    version: '1.1.0',
  },
  { name: 'container id with a space', env: { ...ADD, CNI_CONTAINERID: 'a b' }, stdin: conf(), code: 4, msg: /CNI_CONTAINERID/, version: '1.1.0' },
  { name: 'container id starting with a dash', env: { ...ADD, CNI_CONTAINERID: '-abc' }, stdin: conf(), code: 4, msg: /CNI_CONTAINERID/, version: '1.1.0' },
  {
    name: 'interface name of 16 bytes',
    env: { ...ADD, CNI_IFNAME: 'eth0123456789012' },
    stdin: conf(),
    code: 4,
    msg: /CNI_IFNAME: interface name is too long/,
    version: '1.1.0',
  },
  { name: 'interface name with a slash', env: { ...ADD, CNI_IFNAME: 'a/b' }, stdin: conf(), code: 4, msg: /CNI_IFNAME/, version: '1.1.0' },
  { name: 'interface name ..', env: { ...ADD, CNI_IFNAME: '..' }, stdin: conf(), code: 4, msg: /CNI_IFNAME/, version: '1.1.0' },
  {
    name: 'relative netns path',
    env: { ...ADD, CNI_NETNS: 'run/netns/x' },
    stdin: conf(),
    code: 4,
    msg: /CNI_NETNS must be an absolute path/,
    version: '1.1.0',
  },
  { name: 'stdin not JSON', env: ADD, stdin: '{"cniVersion": ', code: 6, msg: /not JSON/, version: '1.1.0' },
  { name: 'stdin a JSON list', env: ADD, stdin: '[]', code: 6, msg: /not a JSON object/, version: '1.1.0' },
  { name: 'cniVersion a number', env: ADD, stdin: { ...conf(), cniVersion: 1 }, code: 6, msg: /cniVersion must be a string/, version: '1.1.0' },
  { name: 'no cniVersion (0.1.0)', env: ADD, stdin: { name: 'cnip-unit', type: 'podnet' }, code: 1, msg: /incompatible CNI versions/, version: '1.1.0' },
  { name: 'cniVersion 0.2.0', env: ADD, stdin: conf({}, '0.2.0'), code: 1, msg: /incompatible CNI versions/, version: '1.1.0' },
  { name: 'cniVersion 2.0.0', env: ADD, stdin: conf({}, '2.0.0'), code: 1, msg: /incompatible CNI versions/, version: '1.1.0' },
  { name: 'CHECK on a 0.3.1 config', env: { ...ADD, CNI_COMMAND: 'CHECK' }, stdin: conf({}, '0.3.1'), code: 1, msg: /0\.3\.1 does not allow CHECK/ },
  { name: 'GC on a 1.0.0 config', env: { CNI_COMMAND: 'GC' }, stdin: conf({ 'cni.dev/valid-attachments': [] }), code: 1, msg: /1\.0\.0 does not allow GC/ },
  { name: 'STATUS on a 1.0.0 config', env: { CNI_COMMAND: 'STATUS' }, stdin: conf(), code: 1, msg: /1\.0\.0 does not allow STATUS/ },
  { name: 'GC without valid attachments', env: { CNI_COMMAND: 'GC' }, stdin: conf({}, '1.1.0'), code: 7, msg: /cni\.dev\/valid-attachments/ },
  {
    name: 'GC with a malformed attachment',
    env: { CNI_COMMAND: 'GC' },
    stdin: conf({ 'cni.dev/valid-attachments': [{ containerID: 'a' }] }, '1.1.0'),
    code: 7,
    msg: /containerID and ifname/,
  },
  { name: 'missing name', env: ADD, stdin: { cniVersion: '1.0.0', type: 'podnet' }, code: 7, msg: /missing network name/ },
  { name: 'name with a slash', env: ADD, stdin: conf({ name: 'a/b' }), code: 7, msg: /invalid characters found in network name/ },
  { name: 'podnet network with a slash', env: ADD, stdin: conf({ network: '../etc' }), code: 7, msg: /network must be a podnet network name/ },
  { name: 'relative networksDir', env: ADD, stdin: conf({ networksDir: 'etc' }), code: 7, msg: /networksDir must be an absolute path/ },
  {
    name: 'linkGoesWithNamespace not a boolean',
    env: ADD,
    stdin: conf({ linkGoesWithNamespace: 'yes' }),
    code: 7,
    msg: /linkGoesWithNamespace must be true or false/,
  },
  { name: 'dns not an object', env: ADD, stdin: conf({ dns: ['1.1.1.1'] }), code: 7, msg: /dns must be an object/ },
  { name: 'runtimeConfig a list', env: ADD, stdin: conf({ runtimeConfig: [] }), code: 7, msg: /runtimeConfig must be an object/ },
  { name: 'portMappings not a list', env: ADD, stdin: conf({ runtimeConfig: { portMappings: {} } }), code: 7, msg: /portMappings must be a list/ },
  {
    name: 'unknown protocol',
    env: ADD,
    stdin: conf({ runtimeConfig: { portMappings: [{ hostPort: 45001, containerPort: 80, protocol: 'icmp' }] } }),
    code: 2,
    msg: /runtimeConfig\.portMappings\[0\]\.protocol="icmp"/,
  },
  {
    name: 'hostPort 0',
    env: ADD,
    stdin: conf({ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }),
    code: 7,
    msg: /portMappings\[0\]\.hostPort must be a port number/,
  },
  {
    name: 'containerPort 70000',
    env: ADD,
    stdin: conf({ runtimeConfig: { portMappings: [{ hostPort: 45001, containerPort: 70000 }] } }),
    code: 7,
    msg: /containerPort must be a port number/,
  },
  {
    name: 'hostPort a string',
    env: ADD,
    stdin: conf({ runtimeConfig: { portMappings: [{ hostPort: '45001', containerPort: 80 }] } }),
    code: 7,
    msg: /hostPort must be a port number/,
  },
  {
    name: 'hostIP not an address',
    env: ADD,
    stdin: conf({ runtimeConfig: { portMappings: [{ hostPort: 45001, containerPort: 80, hostIP: '1.2.3' }] } }),
    code: 7,
    msg: /hostIP must be an IP address/,
  },
  {
    name: 'ips with a bad address',
    env: ADD,
    stdin: conf({ runtimeConfig: { ips: ['10.89.230.300'] } }),
    code: 7,
    msg: /runtimeConfig\.ips holds a value that is not an IP address/,
  },
  { name: 'ips with a bad prefix', env: ADD, stdin: conf({ runtimeConfig: { ips: ['10.89.230.3/33'] } }), code: 7, msg: /runtimeConfig\.ips/ },
  { name: 'multicast mac', env: ADD, stdin: conf({ runtimeConfig: { mac: '01:00:5e:00:00:01' } }), code: 7, msg: /runtimeConfig\.mac must be a unicast MAC/ },
  { name: 'mac not a MAC', env: ADD, stdin: conf({ runtimeConfig: { mac: 'zz:zz' } }), code: 7, msg: /runtimeConfig\.mac/ },
  { name: 'CNI_ARGS unknown key', env: { ...ADD, CNI_ARGS: 'FOO=bar' }, stdin: conf(), code: 4, msg: /CNI_ARGS: unknown args \["FOO=bar"\]/ },
  { name: 'CNI_ARGS pair without =', env: { ...ADD, CNI_ARGS: 'IgnoreUnknown=1;FOO' }, stdin: conf(), code: 4, msg: /CNI_ARGS: invalid pair "FOO"/ },
  { name: 'CNI_ARGS bad IP', env: { ...ADD, CNI_ARGS: 'IgnoreUnknown=1;IP=10.89.230.5,nope' }, stdin: conf(), code: 4, msg: /CNI_ARGS: IP/ },
  { name: 'CNI_ARGS bad MAC', env: { ...ADD, CNI_ARGS: 'MAC=02:00:00:00:00' }, stdin: conf(), code: 4, msg: /CNI_ARGS: MAC/ },
  {
    name: 'prevResult of another version',
    env: ADD,
    stdin: conf({ prevResult: { ...result10, cniVersion: '0.4.0' } }),
    code: 1,
    msg: /prevResult version does not match/,
  },
  { name: 'prevResult not an object', env: ADD, stdin: conf({ prevResult: 'x' }), code: 6, msg: /prevResult: not a JSON object/ },
  {
    name: 'prevResult interface index out of range',
    env: ADD,
    stdin: conf({ prevResult: { ...result10, ips: [{ address: '10.89.230.5/24', interface: 3 }] } }),
    code: 6,
    msg: /interface index out of range/,
  },
  {
    name: 'prevResult address without prefix',
    env: ADD,
    stdin: conf({ prevResult: { ...result10, ips: [{ address: '10.89.230.5' }] } }),
    code: 6,
    msg: /address without a prefix/,
  },
  // Everything above is pure; these two reach the namespace check, the last step before the engine.
  {
    name: 'netns path that is not a namespace',
    env: ADD,
    stdin: conf({ runtimeConfig: { portMappings: [{ hostPort: 45001, containerPort: 80 }] } }),
    code: 4,
    msg: /CNI_NETNS \/etc\/hostname is not a network namespace/,
  },
  {
    name: 'netns path that does not exist',
    env: { ...ADD, CNI_NETNS: '/run/netns/cnip-none' },
    stdin: conf(),
    code: 4,
    msg: /CNI_NETNS \/run\/netns\/cnip-none cannot be opened/,
  },
];

describe('podnet CNI plugin protocol', () => {
  test.each(vectors)('$name: code $code', async (v) => {
    const r = await invokePlugin(v.env, v.stdin);
    expect(r.exit).not.toBe(0);
    expect(r.out).toMatchObject({ code: v.code });
    expect(r.out.msg).toMatch(v.msg);
    const stdinVersion = typeof v.stdin === 'object' ? (v.stdin as { cniVersion?: unknown }).cniVersion : undefined;
    expect(r.out.cniVersion).toBe(v.version ?? stdinVersion);
  });

  test('accepted inputs get past the pure checks (stop at the netns check)', async () => {
    const ok = [
      { env: { ...ADD, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web;FOO=1;IP=10.89.230.7;MAC=02:11:22:33:44:55' }, stdin: conf() },
      { env: ADD, stdin: conf({ prevResult: result10 }) },
      { env: ADD, stdin: conf({ prevResult: { interfaces: [], ips: [] } }, '0.3.1') }, // pre-1.0 results may omit cniVersion
      {
        env: ADD,
        stdin: conf({
          runtimeConfig: {
            portMappings: [{ hostPort: 45001, containerPort: 80, protocol: 'UDP', hostIP: '::1' }],
            ips: ['10.89.230.9/24'],
            mac: '02:00:00:00:00:09',
            bandwidth: {},
          },
        }),
      },
      { env: ADD, stdin: conf({ capabilities: { portMappings: true }, ipMasq: true, args: { labels: {} } }, '0.4.0') },
    ];
    for (const { env, stdin } of ok) {
      const r = await invokePlugin(env, stdin);
      expect(r.out).toMatchObject({ code: 4, msg: expect.stringContaining('is not a network namespace') });
    }
  });

  test('VERSION answers with the input version and every supported one', async () => {
    for (const v of ['0.4.0', '1.1.0']) {
      const r = await invokePlugin({ CNI_COMMAND: 'VERSION' }, { cniVersion: v });
      expect(r.exit).toBe(0);
      expect(r.out).toEqual({ cniVersion: v, supportedVersions: VERSIONS });
    }
    const empty = await invokePlugin({ CNI_COMMAND: 'VERSION' }, '');
    expect(empty.out).toEqual({ cniVersion: '1.1.0', supportedVersions: VERSIONS });
  });

  test('run by hand, it says what it is on stderr', async () => {
    const r = await invokePlugin({}, '');
    expect(r.stderr).toMatch(/podnet CNI plugin; CNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/);
  });
});
