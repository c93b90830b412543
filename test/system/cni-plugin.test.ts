/**
 * podnet's CNI plugin executable on the real kernel, exec'd as libcni does (one process
 * per command): result shapes per version, CHECK, DEL idempotence, GC and STATUS, and bad
 * input that changes nothing. Resources: network cnip-ex-*, subnet 10.89.231.0/24, host
 * ports 45050-45099, namespaces /run/netns/cnip-ex-*.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NativeNetworks, NetNS } from '../../lib';
import { native } from '../../lib/addon';
import { invokePlugin, type CniEnv } from '../helpers/cniplugin';
import { describeRoot } from '../helpers/system';

jest.setTimeout(60_000);

const NET = `cnip-ex-${process.pid % 100000}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cnip-ex-'));
const networksDir = path.join(tmp, 'networks');
const stateDir = path.join(tmp, 'state');
const nets = new NativeNetworks({ networksDir, stateDir });
const namespaces: NetNS[] = [];
const added: { id: string; ns: string }[] = [];

const conf = (version = '1.0.0', extra: object = {}) => ({ cniVersion: version, name: NET, type: 'podnet', networksDir, stateDir, ...extra });
/** Container ids this file used: their host ends are the links it could have made. */
const ids = new Set<string>();
function env(command: string, id: string, ns?: NetNS | string): CniEnv {
  ids.add(id);
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    ...(ns === undefined ? {} : { CNI_NETNS: typeof ns === 'string' ? ns : ns.path }),
  };
}

let seq = 0;
async function namespace(): Promise<{ id: string; ns: NetNS }> {
  const id = `cnip-ex-${process.pid}-${seq++}`;
  const ns = await NetNS.create({ name: id });
  namespaces.push(ns);
  return { id, ns };
}

async function add(id: string, ns: NetNS, version = '1.0.0', extra: object = {}) {
  added.push({ id, ns: ns.path });
  const r = await invokePlugin(env('ADD', id, ns), conf(version, extra));
  if (r.exit !== 0) throw new Error(`ADD ${id}: ${JSON.stringify(r.out)} ${r.stderr}`);
  return r.out;
}

function leases(): string[] {
  const dir = path.join(stateDir, 'networks', NET);
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => isIP(f) !== 0)
        .sort()
    : [];
}

/** Published ports pointing into this file's subnet, as "proto . port -> ip . port". */
function ports(): string[] {
  const out: string[] = [];
  for (const m of ['hp4', 'hpa4']) {
    let text: string;
    try {
      text = execFileSync('nft', ['-j', 'list', 'map', 'inet', 'podnet', m], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      continue; // no table or map
    }
    for (const o of JSON.parse(text).nftables) {
      for (const [k, v] of o.map?.elem ?? []) {
        const to = v.concat.join(' . ');
        if (to.startsWith('10.89.231.')) out.push(`${k.concat.join(' . ')} -> ${to}`);
      }
    }
  }
  return out.sort();
}

/** What a failed request must leave as it was (this file's network only: other files run meanwhile). */
function snapshot() {
  const records = path.join(stateDir, 'networks', NET, 'attachments');
  return {
    leases: leases(),
    records: existsSync(records) ? readdirSync(records).sort() : [],
    links: [...ids]
      .map((id) => native.nativeHostIfname(NET, id, 'eth0'))
      .filter((l) => existsSync(`/sys/class/net/${l}`))
      .sort(),
    ports: ports(),
  };
}

describeRoot('CNI plugin executable', () => {
  beforeAll(async () => {
    await nets.create({ name: NET, subnet: '10.89.231.0/24', gateway: '10.89.231.1' });
  });
  afterAll(async () => {
    for (const a of added) await invokePlugin(env('DEL', a.id, a.ns), conf()).catch(() => {});
    for (const ns of namespaces) await ns.remove().catch(() => {});
    await nets.remove(NET, { force: true }).catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  });

  it.each([
    ['0.3.0', true],
    ['0.3.1', true],
    ['0.4.0', true],
    ['1.0.0', false],
    ['1.1.0', false],
  ])("ADD %s returns that version's result (ips[].version: %s) and DEL undoes it", async (version, withIpVersion) => {
    const { id, ns } = await namespace();
    const out = await add(id, ns, version);
    expect(out.cniVersion).toBe(version);
    const sandbox = out.interfaces.findIndex((i: { sandbox?: string }) => i.sandbox === ns.path);
    expect(out.interfaces[sandbox].name).toBe('eth0');
    expect(out.interfaces.some((i: { name: string; sandbox?: string }) => i.sandbox === undefined && i.name.startsWith('pn'))).toBe(true);
    expect(out.ips).toHaveLength(1);
    expect(out.ips[0]).toMatchObject({ address: expect.stringMatching(/^10\.89\.231\.\d+\/24$/), gateway: '10.89.231.1', interface: sandbox });
    expect('version' in out.ips[0]).toBe(withIpVersion);
    if (withIpVersion) expect(out.ips[0].version).toBe('4');
    const ip = out.ips[0].address.split('/')[0];
    expect(leases()).toContain(ip);
    // The address is really on eth0 inside the namespace.
    expect(execFileSync('nsenter', [`--net=${ns.path}`, 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })).toContain(`${ip}/24`);

    const del = await invokePlugin(env('DEL', id, ns), conf(version, { prevResult: out }));
    expect(del).toMatchObject({ exit: 0, out: null });
    expect(leases()).not.toContain(ip);
  });

  it('a chained ADD passes prevResult on with its own interface and address appended', async () => {
    const { id, ns } = await namespace();
    const prev = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'other0', sandbox: ns.path }],
      ips: [{ address: '192.0.2.5/24', interface: 0 }],
      dns: { nameservers: ['192.0.2.53'] },
    };
    const out = await add(id, ns, '1.0.0', { prevResult: prev });
    expect(out.interfaces[0]).toEqual({ name: 'other0', sandbox: ns.path });
    expect(out.ips[0]).toEqual({ address: '192.0.2.5/24', interface: 0 });
    expect(out.interfaces[out.ips[1].interface]).toMatchObject({ name: 'eth0', sandbox: ns.path });
    expect(out.dns).toEqual({ nameservers: ['192.0.2.53'] });
  });

  it('CHECK passes on a whole attachment and fails (106) once its interface is gone', async () => {
    const { id, ns } = await namespace();
    const out = await add(id, ns, '0.4.0');
    expect(await invokePlugin(env('CHECK', id, ns), conf('0.4.0', { prevResult: out }))).toMatchObject({ exit: 0, out: null });
    // A prevResult that does not describe this attachment is an error too.
    const wrong = { ...out, ips: [{ version: '4', address: '10.89.231.250/24', interface: 1 }] };
    expect((await invokePlugin(env('CHECK', id, ns), conf('0.4.0', { prevResult: wrong }))).out).toMatchObject({
      code: 106,
      msg: expect.stringContaining('missing from prevResult'),
    });
    execFileSync('nsenter', [`--net=${ns.path}`, 'ip', 'link', 'del', 'eth0']);
    const r = await invokePlugin(env('CHECK', id, ns), conf('0.4.0', { prevResult: out }));
    expect(r.exit).not.toBe(0);
    expect(r.out).toMatchObject({ cniVersion: '0.4.0', code: 106 });
    expect(await invokePlugin(env('CHECK', id, ns), conf('0.4.0'))).toMatchObject({ out: { code: 7, msg: expect.stringContaining('CHECK needs prevResult') } });
  });

  it('DEL is idempotent: twice, without prevResult, after the namespace is gone, and for an unknown container', async () => {
    const { id, ns } = await namespace();
    const out = await add(id, ns, '1.0.0', { runtimeConfig: { portMappings: [{ hostPort: 45050, containerPort: 80, protocol: 'tcp' }] } });
    const ip = out.ips[0].address.split('/')[0];
    const hostIf = out.interfaces.find((i: { sandbox?: string }) => !i.sandbox).name;
    await ns.remove(); // the runtime removed the namespace first: the kernel took the veth pair
    expect(leases()).toContain(ip);
    for (let k = 0; k < 2; k++) {
      const r = await invokePlugin(env('DEL', id, ns), conf('1.0.0', { prevResult: out }));
      expect(r).toMatchObject({ exit: 0, out: null });
    }
    expect(leases()).not.toContain(ip);
    expect(existsSync(`/sys/class/net/${hostIf}`)).toBe(false);
    expect(snapshot().ports.join()).not.toMatch(/\b45050\b/);
    expect(await invokePlugin(env('DEL', 'cnip-never-added'), conf())).toMatchObject({ exit: 0, out: null });
    // A path that is no namespace any more (unmounted, file left) on DEL: released all the same.
    const other = await namespace();
    const out2 = await add(other.id, other.ns);
    const stale = path.join(tmp, 'stale-netns');
    writeFileSync(stale, '');
    expect(await invokePlugin(env('DEL', other.id, stale), conf('1.0.0', { prevResult: out2 }))).toMatchObject({ exit: 0 });
    expect(leases()).not.toContain(out2.ips[0].address.split('/')[0]);
  });

  it('linkGoesWithNamespace: DEL releases address and port at once and leaves the veth to the namespace', async () => {
    const { id, ns } = await namespace();
    const extra = { linkGoesWithNamespace: true, runtimeConfig: { portMappings: [{ hostPort: 45053, containerPort: 80, protocol: 'tcp' }] } };
    const out = await add(id, ns, '1.0.0', extra);
    const ip = out.ips[0].address.split('/')[0];
    const hostIf = out.interfaces.find((i: { sandbox?: string }) => !i.sandbox).name;
    expect(await invokePlugin(env('DEL', id, ns), conf('1.0.0', { ...extra, prevResult: out }))).toMatchObject({ exit: 0, out: null });
    expect(leases()).not.toContain(ip);
    expect(ports().join()).not.toMatch(/\b45053\b/);
    expect(existsSync(`/sys/class/net/${hostIf}`)).toBe(true); // still there: the namespace is
    // The same container and interface again, in a new namespace: the host end left behind is replaced.
    const again = await namespace();
    const out2 = await add(id, again.ns, '1.0.0', extra);
    expect(out2.interfaces.find((i: { sandbox?: string }) => !i.sandbox).name).toBe(hostIf);
    expect(execFileSync('nsenter', [`--net=${ns.path}`, 'ip', '-o', 'link'], { encoding: 'utf8' })).not.toContain('eth0');
    expect(await invokePlugin(env('DEL', id, again.ns), conf('1.0.0', { prevResult: out2 }))).toMatchObject({ exit: 0 });
    expect(existsSync(`/sys/class/net/${hostIf}`)).toBe(false);
  });

  it('GC releases what attachments outside cni.dev/valid-attachments hold; STATUS reports readiness', async () => {
    const a = await namespace();
    const b = await namespace();
    const outA = await add(a.id, a.ns, '1.1.0');
    const outB = await add(b.id, b.ns, '1.1.0');
    const r = await invokePlugin(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: a.id, ifname: 'eth0' }] }),
    );
    expect(r).toMatchObject({ exit: 0, out: null });
    expect(leases()).toContain(outA.ips[0].address.split('/')[0]);
    expect(leases()).not.toContain(outB.ips[0].address.split('/')[0]);
    expect(existsSync(`/sys/class/net/${outB.interfaces[0].name}`)).toBe(false);

    expect(await invokePlugin({ CNI_COMMAND: 'STATUS' }, conf('1.1.0'))).toMatchObject({ exit: 0, out: null });
    const missing = await invokePlugin({ CNI_COMMAND: 'STATUS' }, conf('1.1.0', { network: 'cnip-none' }));
    expect(missing.out).toMatchObject({ code: 50, msg: expect.stringContaining('cnip-none') });
  });

  describe("bad input gets the spec's code and changes nothing", () => {
    const cases: [string, (ns: NetNS) => { env: CniEnv; stdin: object }, number, RegExp][] = [
      ['a config naming a missing network', (ns) => ({ env: env('ADD', 'cnip-bad-1', ns), stdin: conf('1.0.0', { network: 'cnip-none' }) }), 7, /cnip-none/],
      [
        'a prevResult of another version',
        (ns) => ({ env: env('ADD', 'cnip-bad-2', ns), stdin: conf('1.0.0', { prevResult: { cniVersion: '0.4.0', interfaces: [], ips: [] } }) }),
        1,
        /prevResult version does not match/,
      ],
      [
        'an unknown capability value',
        (ns) => ({
          env: env('ADD', 'cnip-bad-3', ns),
          stdin: conf('1.0.0', { runtimeConfig: { portMappings: [{ hostPort: 45051, containerPort: 80, protocol: 'icmp' }] } }),
        }),
        2,
        /protocol="icmp"/,
      ],
      [
        'a netns path that is not a namespace',
        () => ({ env: env('ADD', 'cnip-bad-4', '/proc/self/status'), stdin: conf() }),
        4,
        /CNI_NETNS \/proc\/self\/status is not a network namespace/,
      ],
      [
        'a static address outside the network',
        (ns) => ({ env: { ...env('ADD', 'cnip-bad-5', ns), CNI_ARGS: 'IgnoreUnknown=1;IP=192.0.2.9' }, stdin: conf() }),
        7,
        /192\.0\.2\.9/,
      ],
    ];
    it.each(cases)('%s', async (_what, make, code, msg) => {
      const { ns } = await namespace();
      const before = snapshot();
      const linksInNs = execFileSync('nsenter', [`--net=${ns.path}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
      const { env: e, stdin } = make(ns);
      const r = await invokePlugin(e, stdin);
      expect(r.exit).not.toBe(0);
      expect(r.out).toMatchObject({ code, cniVersion: '1.0.0' });
      expect(r.out.msg).toMatch(msg);
      expect(snapshot()).toEqual(before);
      expect(execFileSync('nsenter', [`--net=${ns.path}`, 'ip', '-o', 'link'], { encoding: 'utf8' })).toBe(linksInNs);
    });

    it('an ADD of an interface that already exists in the namespace fails (104) and keeps the first', async () => {
      const { id, ns } = await namespace();
      const first = await add(id, ns);
      const before = snapshot();
      const r = await invokePlugin(env('ADD', id, ns), conf());
      expect(r.out).toMatchObject({ code: 104 });
      expect(snapshot()).toEqual(before);
      expect(leases()).toContain(first.ips[0].address.split('/')[0]);
    });
  });

  it("an ADD after the network's rules vanished (a firewall reload) writes them again", async () => {
    const a = await namespace();
    await add(a.id, a.ns); // the base rules are there and marked in the state directory
    expect(existsSync(path.join(stateDir, 'networks', NET, '.ensured'))).toBe(true);
    // Only this network's objects: its verdict-map element, then its chain.
    execFileSync('nft', ['delete', 'element', 'inet', 'podnet', 'from4', '{', '10.89.231.0/24', '}']);
    execFileSync('nft', ['delete', 'chain', 'inet', 'podnet', `n-${NET}`]);
    const b = await namespace();
    await add(b.id, b.ns);
    expect(execFileSync('nft', ['list', 'chain', 'inet', 'podnet', `n-${NET}`], { encoding: 'utf8' })).toContain('10.89.231.0/24');
    expect(execFileSync('nft', ['list', 'map', 'inet', 'podnet', 'from4'], { encoding: 'utf8' })).toContain(`10.89.231.0/24 : jump n-${NET}`);
  });

  it('the host port published by ADD is refused to a second container (103)', async () => {
    const a = await namespace();
    const b = await namespace();
    const pm = { runtimeConfig: { portMappings: [{ hostPort: 45052, containerPort: 80, protocol: 'tcp' }] } };
    await add(a.id, a.ns, '1.0.0', pm);
    const before = snapshot();
    const r = await invokePlugin(env('ADD', b.id, b.ns), conf('1.0.0', pm));
    expect(r.out).toMatchObject({ code: 103, msg: expect.stringContaining('45052') });
    expect(snapshot()).toEqual(before);
  });
});
