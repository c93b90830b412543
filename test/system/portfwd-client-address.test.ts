/**
 * The client's address through podnet's port forwarder, against real
 * namespaces: a server in the sandbox reports the peer address it sees.
 * Clients: the host's loopback, and a "remote" client in a namespace of its own
 * joined to the host by a veth pair. The sandbox has a default route via a
 * gateway (the host side, as the container sees it). As root (a named netns)
 * and as an unprivileged user (a user+net namespace the test user owns, the
 * forwarder started by a Node process running as that user).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

import { NetNS, PodnetError, Runtime } from '../../lib';
import { PortForwarder } from '../../lib/api/portfwd';
import type { PortMapping } from '../../lib/types';
import { createTestUser, type TestUser } from '../helpers/rootless';
import { udpExchange } from '../helpers/net';
import { describeRoot, uniqueName } from '../helpers/system';

jest.setTimeout(30000);

const HOST_SIDE = '10.89.249.1';
const REMOTE = '10.89.249.2';
const HOST_SIDE6 = 'fd89:249::1';
const REMOTE6 = 'fd89:249::2';

// In the sandbox: 8100 tcp and udp answer with the peer address they see, 8101 with address and port,
// 8102 (IPv6) with the address; 8000 echoes tcp.
const SERVER = `
const net = require('net'), dgram = require('dgram');
net.createServer((s) => s.end(s.remoteAddress)).listen(8100, '0.0.0.0');
net.createServer((s) => s.end(s.remoteAddress + ' ' + s.remotePort)).listen(8101, '0.0.0.0');
net.createServer((s) => s.end(s.remoteAddress)).listen({ port: 8102, host: '::', ipv6Only: true });
net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); }).listen(8000, '0.0.0.0');
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(r.address, r.port, r.address)); u.bind(8100, '0.0.0.0');
setTimeout(() => console.log('listening'), 200);
`;

// In the client namespace: argv kind host port. tcp: what the server wrote;
// port: that and the client's own port;
// many: the distinct answers of 40 concurrent connections; echo: 'ok N' when
// 1 MiB came back intact; udp: the first reply (resent until one comes).
const CLIENT = `
const net = require('net'), dgram = require('dgram'), crypto = require('crypto');
const [kind, host, port] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const read = () => new Promise((res, rej) => { const s = net.connect(port, host); let d = '';
  s.on('data', (c) => { d += c; }); s.on('end', () => res(d)); s.on('error', rej); });
(async () => {
  if (kind === 'tcp') console.log(await read());
  if (kind === 'port') {
    const s = net.connect(port, host); let d = '';
    s.on('data', (c) => { d += c; }); s.on('end', () => console.log(d + ' ' + s.localPort));
  }
  if (kind === 'many') console.log(JSON.stringify([...new Set(await Promise.all(Array.from({ length: 40 }, read)))]));
  if (kind === 'echo') {
    const data = crypto.randomBytes(1 << 20), got = [];
    const s = net.connect({ port, host, allowHalfOpen: true });
    s.on('connect', () => s.end(data)); s.on('data', (c) => got.push(c));
    s.on('end', () => { const b = Buffer.concat(got); console.log(b.equals(data) ? 'ok ' + b.length : 'bad ' + b.length); s.destroy(); });
  }
  if (kind === 'udp') {
    const u = dgram.createSocket('udp4');
    u.on('message', (m) => { console.log(String(m)); process.exit(0); });
    u.connect(port, host, () => { u.send('x'); setInterval(() => u.send('x'), 200); });
    setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);
  }
})().catch((e) => { console.log('error ' + e.message); });
`;

let client: NetNS | undefined;

/** Runs the client script inside the remote client's namespace. */
async function fromRemote(kind: string, port: number, host = HOST_SIDE): Promise<string> {
  const r = await promisify(execFile)('nsenter', [`--net=${client!.path}`, process.execPath, '-e', CLIENT, kind, host, String(port)], { encoding: 'utf8' });
  return r.stdout.trim();
}

function fromLoopback(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    let d = '';
    s.on('data', (c) => {
      d += c;
    });
    s.on('end', () => resolve(d));
    s.on('error', reject);
  });
}

function startServer(netnsPath: string): Promise<ChildProcess> {
  const proc = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (l === 'listening') resolve(proc);
    });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

// Shell commands that give a namespace `ip`/24 on eth0 and a default route via
// `gw` (the other end of eth0's veth pair stays in the namespace, up: the
// gateway never answers, and need not, since replies to clients are local).
const sandboxNet = (ip: string, gw: string) =>
  `ip link set lo up && ip link add eth0 type veth peer name gw0 && ip link set gw0 up && ip addr add ${ip}/24 dev eth0 && ` +
  `ip link set eth0 up && ip route add default via ${gw}`;

beforeAll(async () => {
  // The remote client: its own namespace, a veth pair to the host.
  client = await NetNS.create({ name: uniqueName('fwd-cli') });
  const hostIf = `fwd-h${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client.path]);
  execFileSync('ip', ['addr', 'add', `${HOST_SIDE}/24`, 'dev', hostIf]);
  execFileSync('ip', ['addr', 'add', `${HOST_SIDE6}/64`, 'dev', hostIf, 'nodad']);
  execFileSync('ip', ['link', 'set', hostIf, 'up']);
  execFileSync('nsenter', [
    `--net=${client.path}`,
    'sh',
    '-c',
    `ip link set lo up && ip addr add ${REMOTE}/24 dev eth0 && ip addr add ${REMOTE6}/64 dev eth0 nodad && ip link set eth0 up`,
  ]);
});
afterAll(async () => {
  await client?.remove(); // the veth pair goes with it
});

interface Mode {
  start(m: PortMapping[], keepClientAddress?: boolean): Promise<{ pid: number; stop(): Promise<void> }>;
}

/** What both callers must show; `base` is the first of 20 host ports. */
function clientAddressSuite(ctx: () => { mode: Mode; ip: string; gw: string; netnsPath: string }, base: number) {
  const stops: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    const { mode } = ctx();
    const kept = await mode.start([
      { hostPort: base, containerPort: 8100, protocol: 'tcp,udp' },
      { hostPort: base + 1, containerPort: 8000 },
      { hostPort: base + 2, containerPort: 8101 },
    ]);
    stops.push(kept.stop);
    const plain = await mode.start([{ hostPort: base + 10, containerPort: 8100, protocol: 'tcp,udp' }], false);
    stops.push(plain.stop);
  });
  afterAll(async () => {
    for (const s of stops) await s();
  });

  it('a remote client is seen from its own address', async () => {
    expect(await fromRemote('tcp', base)).toBe(REMOTE);
  });

  it('a remote client is seen with its own port too', async () => {
    const [addr, seenPort, ownPort] = (await fromRemote('port', base + 2)).split(' ');
    expect(addr).toBe(REMOTE);
    expect(seenPort).toBe(ownPort);
  });

  it('40 concurrent remote connections are all seen from the client address', async () => {
    expect(JSON.parse(await fromRemote('many', base))).toEqual([REMOTE]);
  });

  it('1 MiB echoes intact through a transparent connection (replies routed back to it)', async () => {
    expect(await fromRemote('echo', base + 1)).toBe(`ok ${1 << 20}`);
  });

  it('a loopback client is seen from the host side of the default route, never a loopback address', async () => {
    expect(await fromLoopback(base)).toBe(ctx().gw);
  });

  it('the namespace got the policy routing: a fwmark rule and a local table', () => {
    const inNs = (args: string[]) => execFileSync('nsenter', [`--net=${ctx().netnsPath}`, 'ip', ...args], { encoding: 'utf8' });
    expect(inNs(['rule', 'show'])).toMatch(/fwmark 0x504e lookup 20558/);
    expect(inNs(['route', 'show', 'table', '20558'])).toMatch(/local default dev lo/);
    expect(execFileSync('nsenter', [`--net=${ctx().netnsPath}`, 'cat', '/proc/sys/net/ipv4/tcp_fwmark_accept'], { encoding: 'utf8' }).trim()).toBe('1');
  });

  it("UDP reaches the server from the namespace's own address (not kept)", async () => {
    expect(await fromRemote('udp', base)).toBe(ctx().ip);
  });

  it("with keepClientAddress false, remote and loopback clients come from the namespace's own address", async () => {
    expect(await fromRemote('tcp', base + 10)).toBe(ctx().ip);
    expect(await fromLoopback(base + 10)).toBe(ctx().ip);
    expect((await udpExchange(base + 10, Buffer.from('x')))?.toString()).toBe(ctx().ip);
  });
}

describeRoot('client address through the forwarder, as root', () => {
  let ns: NetNS | undefined;
  let server: ChildProcess | undefined;
  const ip = '10.89.248.2';
  const gw = '10.89.248.1';
  const mode: Mode = {
    async start(portMappings, keepClientAddress) {
      const h = await PortForwarder.start({ netnsPath: ns!.path, portMappings, keepClientAddress });
      return { pid: h.pid, stop: () => h.stop() };
    },
  };
  beforeAll(async () => {
    ns = await NetNS.create({ name: uniqueName('fwd-sbx') });
    execFileSync('nsenter', [`--net=${ns.path}`, 'sh', '-c', sandboxNet(ip, gw)]);
    server = await startServer(ns.path);
  });
  afterAll(async () => {
    server?.kill('SIGKILL');
    await ns?.remove();
  });

  clientAddressSuite(() => ({ mode, ip, gw, netnsPath: ns!.path }), 46500);

  it("keeps an IPv6 client's address; a ::1 client is seen as the IPv6 gateway", async () => {
    execFileSync('nsenter', [`--net=${ns!.path}`, 'sh', '-c', 'ip addr add fd89:248::2/64 dev eth0 nodad && ip -6 route add default via fd89:248::1']);
    const h = await PortForwarder.start({
      netnsPath: ns!.path,
      containerIP: 'fd89:248::2',
      portMappings: [{ hostIP: '::', hostPort: 46541, containerPort: 8102 }],
    });
    try {
      expect(await fromRemote('tcp', 46541, HOST_SIDE6)).toBe(REMOTE6);
      expect(await fromLoopback(46541, '::1')).toBe('fd89:248::1');
    } finally {
      await h.stop();
    }
    // An IPv6 client of an IPv4 container address cannot be kept: it comes from the namespace's address.
    const mixed = await PortForwarder.start({ netnsPath: ns!.path, portMappings: [{ hostIP: '::', hostPort: 46542, containerPort: 8100 }] });
    try {
      expect(await fromRemote('tcp', 46542, HOST_SIDE6)).toBe(ip);
    } finally {
      await mixed.stop();
    }
  });

  it('keeps the client address with the target given (as the slirp4netns mode gives 10.0.2.100)', async () => {
    const h = await PortForwarder.start({ netnsPath: ns!.path, containerIP: ip, portMappings: [{ hostPort: 46540, containerPort: 8100 }] });
    try {
      expect(await fromRemote('tcp', 46540)).toBe(REMOTE);
    } finally {
      await h.stop();
    }
  });
});

// A Node process running as the test user that owns a forwarder: prints {"pid"}
// once it is ready (or {"error"}), and exits when its stdin closes.
const OWNER = `
const { PortForwarder } = require(process.argv[1]);
PortForwarder.start(JSON.parse(process.argv[2])).then((h) => {
  console.log(JSON.stringify({ pid: h.pid }));
  process.stdin.resume(); process.stdin.on('end', () => process.exit(0));
}, (e) => { console.log(JSON.stringify({ error: { code: e.code, message: e.message } })); process.exit(1); });
`;

function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

describeRoot('client address through the forwarder, as an unprivileged user', () => {
  let user: TestUser | undefined;
  let holder: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  const owners = new Set<ChildProcess>();
  const forwarders = new Set<number>();
  const ip = '10.89.250.2';
  const gw = '10.89.250.1';
  const netnsPath = () => `/proc/${holder!.pid}/ns/net`;

  const mode: Mode = {
    start(portMappings, keepClientAddress) {
      const opts = { netnsPath: netnsPath(), usernsPath: `/proc/${holder!.pid}/ns/user`, portMappings, keepClientAddress };
      // The user may not read the checkout: podnet from the user's readable copy.
      const [cmd, args] = user!.argv(process.execPath, ['-e', OWNER, path.join(user!.pkg, 'dist', 'api/portfwd'), JSON.stringify(opts)]);
      const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
      owners.add(proc);
      return new Promise((resolve, reject) => {
        createInterface({ input: proc.stdout! }).once('line', (l) => {
          const r = JSON.parse(l);
          if (r.error) return reject(new PodnetError(r.error.code, r.error.message));
          forwarders.add(r.pid);
          resolve({
            pid: r.pid,
            async stop() {
              proc.stdin!.end();
              await waitGone(r.pid, 2000);
            },
          });
        });
        proc.once('exit', (c) => reject(new Error(`owner exited ${c}`)));
      });
    },
  };

  beforeAll(async () => {
    user = createTestUser('pnfwd2a');
    const [cmd, args] = user.argv('unshare', ['--user', '--map-root-user', '--net', 'sh', '-c', `${sandboxNet(ip, gw)} && echo up && exec sleep infinity`]);
    holder = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      holder!.stdout!.once('data', resolve);
      holder!.once('exit', (c) => reject(new Error(`namespace holder exited ${c}`)));
    });
    server = await startServer(netnsPath());
  });
  afterAll(async () => {
    for (const o of owners) o.kill('SIGKILL');
    server?.kill('SIGKILL');
    holder?.kill('SIGKILL');
    for (const pid of forwarders) if (!(await waitGone(pid, 2000))) process.kill(pid, 'SIGKILL');
    if (holder?.pid) await waitGone(holder.pid, 2000);
    user?.remove();
  });

  clientAddressSuite(() => ({ mode, ip, gw, netnsPath: netnsPath() }), 46560);
});

describeRoot('client address in a slirp4netns sandbox (runtime, port_handler=rootlesskit)', () => {
  let dir = '';
  let rt: Runtime;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fwd-rt-'));
    rt = new Runtime({ stateDir: path.join(dir, 'state') });
  });
  afterAll(async () => {
    for (const s of await rt.list()) await rt.teardown(s.id).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  /** What a server in a new slirp4netns sandbox sees of a remote client, with these network options. */
  async function seenFromRemote(port: number, networkOptions: string[]): Promise<string> {
    const id = uniqueName('fwd-rt');
    await rt.createSandbox({ id, network: 'slirp4netns', networkOptions, portMappings: [{ hostPort: port, containerPort: 8100 }] });
    const server = await rt.spawn(id, process.execPath, ['-e', "require('net').createServer((s) => s.end(s.remoteAddress)).listen(8100, '0.0.0.0')"], {
      stdio: 'ignore',
    });
    try {
      const end = Date.now() + 10000;
      for (;;) {
        // until the server listens
        const got = await fromRemote('tcp', port);
        if ((got && !got.startsWith('error')) || Date.now() > end) return got;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      server.kill('SIGKILL');
      await rt.teardown(id);
    }
  }

  it('the server sees the remote client by default, and 10.0.2.100 with keep_client_address=false', async () => {
    expect(await seenFromRemote(46590, [])).toBe(REMOTE);
    expect(await seenFromRemote(46591, ['keep_client_address=false'])).toBe('10.0.2.100');
  });
});
