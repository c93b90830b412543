/**
 * podnet's CNI plugin driven by a client nobody here wrote: Debian's podman 4.3 with its
 * CNI backend, in its own configuration and storage (test/helpers/podman.ts). Containers
 * and podnet's own sandboxes share one native network: addresses, published ports and the
 * nftables table. Resources: network cnip-pm-*, subnet 10.89.230.0/24, host ports
 * 45000-45049, namespaces /run/netns/cnip-pm-*.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { NativeNetworks, NetNS } from '../../lib';
import { pluginConflist } from '../../lib/cniplugin/install';
import { PLUGIN } from '../helpers/cniplugin';
import { PodmanEnv } from '../helpers/podman';
import { describeRoot, httpGet } from '../helpers/system';

jest.setTimeout(120_000);

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const NET = `cnip-pm-${process.pid % 100000}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cnip-pm-'));
const networksDir = path.join(tmp, 'networks');
const stateDir = path.join(tmp, 'state');
const www = path.join(tmp, 'www');
const nets = new NativeNetworks({ networksDir, stateDir });
const servers: ChildProcess[] = [];
const sandboxes: { id: string; ns: NetNS }[] = [];
let env: PodmanEnv;

const FETCH = 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())';
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Lease files of the network: address -> "containerId\nifname\n". */
function leases(): Record<string, string> {
  const dir = path.join(stateDir, 'networks', NET);
  if (!existsSync(dir)) return {};
  return Object.fromEntries(
    readdirSync(dir)
      .filter((f) => isIP(f) !== 0)
      .map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]),
  );
}

/** Whether nftables publishes `port` (podnet's host-port maps). */
function published(port: number): boolean {
  let out = '';
  for (const map of ['hp4', 'hpa4']) {
    try {
      out += sh('nft', ['list', 'map', 'inet', 'podnet', map]);
    } catch {
      /* no table or map */
    }
  }
  return new RegExp(`\\b${port}\\b`).test(out);
}

const linkExists = (name: string) => existsSync(`/sys/class/net/${name}`);

interface Inspected {
  id: string;
  ip: string;
  mac: string;
  netns: string;
  hostIfname: string;
}

async function inspect(name: string): Promise<Inspected> {
  const out = JSON.parse(await env.podmanOk(['inspect', name]))[0];
  const n = out.NetworkSettings.Networks[NET];
  const rec = (await nets.attachments(NET)).find((a) => a.containerId === out.Id);
  return { id: out.Id, ip: n.IPAddress, mac: n.MacAddress, netns: out.NetworkSettings.SandboxKey, hostIfname: rec?.hostIfname ?? '' };
}

/** Nothing of the container is left: namespace, host link, published port, lease, record. */
async function expectGone(c: Inspected, port: number): Promise<void> {
  expect(existsSync(c.netns)).toBe(false);
  expect(linkExists(c.hostIfname)).toBe(false);
  expect(published(port)).toBe(false);
  expect(Object.values(leases()).filter((o) => o.startsWith(`${c.id}\n`))).toEqual([]);
  expect((await nets.attachments(NET)).map((a) => a.containerId)).not.toContain(c.id);
}

/** A podnet sandbox (namespace + native attachment, podnet's API) on the network, serving `www` on 8080. */
async function podnetSandbox(): Promise<{ ns: NetNS; ip: string }> {
  const id = `cnip-pm-sb-${process.pid}-${sandboxes.length}`;
  const ns = await NetNS.create({ name: id });
  sandboxes.push({ id, ns });
  await ns.setLoopbackUp();
  const a = await nets.attach({ network: NET, containerId: id, ifname: 'eth0', netnsPath: ns.path });
  const p = spawn('nsenter', [`--net=${ns.path}`, '/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
  servers.push(p);
  return { ns, ip: a.ips[0].address.split('/')[0] };
}

describeRoot('CNI plugin with podman (CNI backend)', () => {
  beforeAll(async () => {
    mkdirSync(www, { recursive: true });
    writeFileSync(path.join(www, 'index.html'), 'hello from podnet\n');
    await nets.create({ name: NET, subnet: '10.89.230.0/24', gateway: '10.89.230.1' });
    env = new PodmanEnv({ plugins: { podnet: PLUGIN } });
    const list = pluginConflist(NET, { networksDir, stateDir }) as { plugins: object[] };
    env.writeConflist(NET, list.plugins);
  });

  afterAll(async () => {
    for (const p of servers) p.kill('SIGKILL');
    await env?.cleanup().catch((e) => console.error(`podman cleanup: ${e}`));
    for (const s of sandboxes) {
      await nets.detach(NET, s.id, 'eth0', s.ns.path).catch(() => {});
      await s.ns.remove().catch(() => {});
    }
    await nets.remove(NET, { force: true }).catch(() => {});
    // podman's libcni keeps its results in the host's cache; a container whose namespace
    // vanished under podman (the SIGKILL test) leaves its entry behind there.
    const cache = '/var/lib/cni/results';
    for (const f of existsSync(cache) ? readdirSync(cache) : []) if (f.startsWith(`${NET}-`)) rmSync(path.join(cache, f), { force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serves a published port, shares the network with a podnet sandbox both ways, and podman rm -f leaves nothing', async () => {
    await env.runHttpd('cnip-web', NET, ['-p', '45000:80']);
    expect(await httpGet(45000)).toBe('hello from podman\n');

    const c = await inspect('cnip-web');
    // The address podman shows is the one podnet leased to this container.
    expect(leases()[c.ip]).toBe(`${c.id}\neth0\n`);
    expect(c.ip).toMatch(/^10\.89\.230\.\d+$/);
    expect(c.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(linkExists(c.hostIfname)).toBe(true);
    expect(published(45000)).toBe(true);

    const sb = await podnetSandbox();
    // sandbox -> container, and container -> sandbox (its server may need a moment to listen)
    // (busybox-static's wget crashes here: python3 on the sandbox side, nc in the container.)
    expect(sh('nsenter', [`--net=${sb.ns.path}`, '/usr/bin/python3', '-c', FETCH, `http://${c.ip}/`])).toBe('hello from podman\n');
    let fromContainer = '';
    await waitFor('the container to reach the sandbox', async () => {
      const r = await env.podman(['exec', 'cnip-web', '/bin/busybox', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 ${sb.ip} 8080`]);
      fromContainer = r.stdout.toString();
      return r.code === 0 && fromContainer.includes('200 OK');
    });
    expect(fromContainer.endsWith('\r\n\r\nhello from podnet\n')).toBe(true);

    await env.podmanOk(['rm', '-f', '-t', '0', 'cnip-web']);
    await expectGone(c, 45000);
  });

  it('podman run with --ip and --mac gets that address and MAC', async () => {
    await env.runHttpd('cnip-static', NET, ['--ip', '10.89.230.77', '--mac-address', '02:89:23:00:00:77', '-p', '45001:80']);
    const c = await inspect('cnip-static');
    expect(c.ip).toBe('10.89.230.77');
    expect(c.mac).toBe('02:89:23:00:00:77');
    expect(leases()['10.89.230.77']).toBe(`${c.id}\neth0\n`);
    expect(await httpGet(45001)).toBe('hello from podman\n');
    await env.podmanOk(['rm', '-f', '-t', '0', 'cnip-static']);
    await expectGone(c, 45001);
  });

  it('podman SIGKILLed between ADD and DEL: podnet gc keeps the live container, releases it once its namespace is gone', async () => {
    // A foreground podman run: ADD is done once the port serves; then podman dies.
    const fg = spawn(
      'podman',
      [
        ...env.baseArgs,
        'run',
        '--name',
        'cnip-killed',
        '--network',
        NET,
        '-p',
        '45002:80',
        '--rootfs',
        env.rootfs,
        '/bin/busybox',
        'httpd',
        '-f',
        '-p',
        '80',
        '-h',
        '/www',
      ],
      { env: env.env, stdio: 'ignore' },
    );
    servers.push(fg);
    expect(await httpGet(45002)).toBe('hello from podman\n');
    const c = await inspect('cnip-killed');
    fg.kill('SIGKILL');
    await waitFor('podman to die', () => fg.exitCode !== null || fg.signalCode !== null);

    // The namespace lives on (podman's bind mount, the container still runs): gc keeps it all.
    execFileSync('node', [CLI, 'gc', '--networks-dir', networksDir, '--state-dir', stateDir], { stdio: 'pipe' });
    expect(leases()[c.ip]).toBe(`${c.id}\neth0\n`);
    expect(published(45002)).toBe(true);
    expect(await httpGet(45002)).toBe('hello from podman\n');

    // Then the container and its conmon die too (no cleanup ever runs), and the namespace goes
    // as on a reboot (/run is a tmpfs): the kernel takes the veth pair with it.
    const state = JSON.parse(await env.podmanOk(['inspect', 'cnip-killed']))[0].State;
    for (const pid of [state.ConmonPid, state.Pid]) if (pid > 0) process.kill(pid, 'SIGKILL');
    sh('umount', [c.netns]);
    rmSync(c.netns);
    await waitFor('the kernel to remove the veth pair', () => !linkExists(c.hostIfname));
    expect(leases()[c.ip]).toBe(`${c.id}\neth0\n`); // what a crash leaves: the lease and the published port
    expect(published(45002)).toBe(true);

    const out = execFileSync('node', [CLI, 'gc', '--networks-dir', networksDir, '--state-dir', stateDir], { encoding: 'utf8' });
    expect(out).toContain(`released ${NET}/${c.id}/eth0`);
    await expectGone(c, 45002);

    // podman's own cleanup afterwards: its DEL finds nothing left and succeeds. (podman 4.3
    // first fails to stop a container whose namespace vanished: "container state improper".)
    if ((await env.podman(['rm', '-f', '-t', '0', 'cnip-killed'])).code !== 0) await env.podmanOk(['rm', '-f', '-t', '0', 'cnip-killed']);
    expect((await env.podman(['container', 'exists', 'cnip-killed'])).code).toBe(1);
    await expectGone(c, 45002);
  });
});
