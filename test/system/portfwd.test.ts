/**
 * PortForwarder against real namespaces: as root (a named netns) and as an
 * unprivileged user (a user+net namespace the test user owns, the forwarder
 * started by a Node process running as that user).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { NetNS, PodnetError } from '../../lib';
import { PortForwarder } from '../../lib/api/portfwd';
import { expandPortMappings } from '../../lib/portfwd/mappings';
import type { PortMapping } from '../../lib/types';
import { createTestUser, type TestUser } from '../helpers/rootless';
import { udpExchange } from '../helpers/net';
import { describeRoot, uniqueName } from '../helpers/system';

jest.setTimeout(30000);

describe('expandPortMappings', () => {
  it('expands ranges and protocol lists, one listener per host port and protocol', () => {
    expect(expandPortMappings([{ hostPort: 19500, containerPort: 80, range: 2, protocol: 'tcp,udp' }])).toEqual([
      { proto: 'tcp', ip: '0.0.0.0', port: 19500, cport: 80 },
      { proto: 'tcp', ip: '0.0.0.0', port: 19501, cport: 81 },
      { proto: 'udp', ip: '0.0.0.0', port: 19500, cport: 80 },
      { proto: 'udp', ip: '0.0.0.0', port: 19501, cport: 81 },
    ]);
    expect(expandPortMappings([{ hostIP: '::1', hostPort: 19500, containerPort: 80, protocol: 'UDP' }])).toEqual([
      { proto: 'udp', ip: '::1', port: 19500, cport: 80 },
    ]);
  });
  it.each<[string, unknown]>([
    ['portMappings', []],
    ['hostPort', [{ hostPort: 0, containerPort: 80 }]],
    ['containerPort', [{ hostPort: 1, containerPort: 65536 }]],
    ['range', [{ hostPort: 65535, containerPort: 80, range: 2 }]],
    ['range', [{ hostPort: 1000, containerPort: 80, range: 0 }]],
    ['protocol', [{ hostPort: 1000, containerPort: 80, protocol: 'sctp' }]],
    ['hostIP', [{ hostIP: 'localhost', hostPort: 1000, containerPort: 80 }]],
    ['hostIP', [{ hostIP: '10.1', hostPort: 1000, containerPort: 80 }]],
    ['hostIP', [{ hostIP: '1.2.3.256', hostPort: 1000, containerPort: 80 }]],
    [
      'is also in portMappings[0]',
      [
        { hostPort: 1000, containerPort: 80 },
        { hostPort: 999, containerPort: 80, range: 2 },
      ],
    ],
  ])('refuses bad %s', (what, m) => {
    expect(() => expandPortMappings(m)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining(what) }));
  });
  it('refuses bad options before starting anything', async () => {
    await expect(PortForwarder.start({ netnsPath: 'relative', portMappings: [{ hostPort: 1, containerPort: 1 }] })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    await expect(
      PortForwarder.start({ netnsPath: '/proc/self/ns/net', containerIP: '127.0.0.1x', portMappings: [{ hostPort: 1, containerPort: 1 }] }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('containerIP') });
  });
});

// Inside the namespace: 8000 tcp+udp echo (tcp honours half-close); 8001 writes "hello",
// half-closes, and logs how many bytes it then received; 8100-8102 write "<port> <peer address>".
// A client's reset reaches the echo as a reset: it must not end the server.
const SERVER = `
const net = require('net'), dgram = require('dgram');
net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); }).listen(8000, '0.0.0.0');
net.createServer({ allowHalfOpen: true }, (s) => {
  let n = 0; s.write('hello'); s.end();
  s.on('data', (d) => { n += d.length; }); s.on('end', () => console.log(JSON.stringify({ halfclose: n })));
}).listen(8001, '0.0.0.0');
for (const p of [8100, 8101, 8102]) net.createServer((s) => s.end(p + ' ' + s.remoteAddress)).listen(p, '0.0.0.0');
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(8000, '0.0.0.0');
setTimeout(() => console.log('listening'), 200);
`;

interface Started {
  pid: number;
  stop(): Promise<void>;
}

/** Resident memory of a process and any children it has (the forwarder has none), KiB. */
function treeRssKiB(pid: number): number {
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  return [pid, ...kids].reduce((sum, p) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]), 0);
}
interface Mode {
  start(m: PortMapping[]): Promise<Started>;
}

function startServer(netnsPath: string): Promise<{ proc: ChildProcess; lines: string[] }> {
  const proc = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      lines.push(l);
      if (l === 'listening') resolve({ proc, lines });
    });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

/** Connects, sends `data`, half-closes, and resolves with everything received until EOF. */
function exchange(port: number, data: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, allowHalfOpen: true });
    const got: Buffer[] = [];
    s.on('connect', () => s.end(data));
    s.on('data', (d) => got.push(d));
    s.on('end', () => {
      s.destroy();
      resolve(Buffer.concat(got));
    });
    s.on('error', reject);
  });
}

/** The behaviour both modes must show; `base` is the first of 50 host ports this mode may use. */
function forwarderSuite(ctx: () => { mode: Mode; ip: string; server: { lines: string[] } }, base: number) {
  let fwd: Started | undefined;
  const mappings: PortMapping[] = [
    { hostPort: base, containerPort: 8000, protocol: 'tcp,udp' },
    { hostIP: '127.0.0.1', hostPort: base + 1, containerPort: 8001 },
    { hostIP: '127.0.0.1', hostPort: base + 10, containerPort: 8100, range: 3 },
  ];
  beforeAll(async () => {
    fwd = await ctx().mode.start(mappings);
  });
  afterAll(async () => {
    await fwd?.stop();
  });

  it('echoes 1 MiB exactly through TCP with the client half-closed', async () => {
    const data = randomBytes(1 << 20);
    const got = await exchange(base, data);
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
  });

  it('respects a half-close by the server: the client still sends 1 MiB after EOF', async () => {
    const n0 = ctx().server.lines.length;
    const got = await exchange(base + 1, randomBytes(1 << 20));
    expect(got.toString()).toBe('hello');
    for (let i = 0; i < 100 && ctx().server.lines.length === n0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ctx().server.lines.slice(n0)).toContain(JSON.stringify({ halfclose: 1 << 20 }));
  });

  it('relays UDP both ways', async () => {
    const msg = randomBytes(1200);
    expect((await udpExchange(base, msg))?.equals(msg)).toBe(true);
  });

  it('answers UDP from the host address the client sent to (wildcard listener)', async () => {
    const msg = randomBytes(100);
    // 127.0.0.2 is on lo, but routing would answer 127.0.0.1 from 127.0.0.1.
    expect((await udpExchange(base, msg, '127.0.0.2'))?.equals(msg)).toBe(true);
  });

  it('completes 200 concurrent connections', async () => {
    const payloads = Array.from({ length: 200 }, () => randomBytes(4096));
    const got = await Promise.all(payloads.map((p) => exchange(base, p)));
    expect(got.filter((g, i) => g.equals(payloads[i])).length).toBe(200);
  });

  it('hands a bulk stream to its own threads, which go when the client resets it', async () => {
    const threads = () => readdirSync(`/proc/${fwd!.pid}/task`).length;
    const idle = threads();
    const s = net.connect({ port: base, host: '127.0.0.1' });
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.write(randomBytes(8 << 20)); // never read back: the echo fills every buffer on the way
    for (let i = 0; i < 100 && threads() < idle + 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(threads()).toBe(idle + 2);
    s.resetAndDestroy();
    for (let i = 0; i < 100 && threads() > idle; i++) await new Promise((r) => setTimeout(r, 20));
    expect(threads()).toBe(idle);
    // The forwarder still relays.
    expect((await exchange(base, Buffer.from('after'))).toString()).toBe('after');
  });

  it('maps each port of a range, reaching the container on its own address (not loopback)', async () => {
    const got = await Promise.all([0, 1, 2].map((k) => exchange(base + 10 + k, Buffer.alloc(0))));
    expect(got.map(String)).toEqual([0, 1, 2].map((k) => `${8100 + k} ${ctx().ip}`));
  });

  it('stays under 5 MB RSS after the traffic above', () => {
    const rss = treeRssKiB(fwd!.pid);

    console.log(`forwarder RSS: ${rss} KiB`);
    expect(rss).toBeGreaterThan(0);
    expect(rss).toBeLessThan(5 * 1024);
  });

  it('fails with a typed error naming the port when it is in use, leaving no listener', async () => {
    const busy = net.createServer().listen(base + 20, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    try {
      const err = await ctx()
        .mode.start([
          { hostIP: '127.0.0.1', hostPort: base + 21, containerPort: 8000 },
          { hostIP: '127.0.0.1', hostPort: base + 20, containerPort: 8000 },
        ])
        .then(
          () => undefined,
          (e) => e,
        );
      expect(err).toMatchObject({ code: 'EADDRINUSE', details: { hostIP: '127.0.0.1', hostPort: base + 20, protocol: 'tcp' } });
      expect(err.message).toContain(`tcp 127.0.0.1:${base + 20}`);
      // The port bound before the failure is free again.
      const probe = net.createServer().listen(base + 21, '127.0.0.1');
      await new Promise((r, j) => {
        probe.once('listening', r);
        probe.once('error', j);
      });
      probe.close();
    } finally {
      busy.close();
    }
  });
}

// A Node process (as root, or as the test user) that owns the forwarder: prints
// {"pid","rss"} once it is ready (or {"error"}), and exits when its stdin closes.
const OWNER = `
const { PortForwarder } = require(process.argv[1]);
PortForwarder.start(JSON.parse(process.argv[2])).then((h) => {
  console.log(JSON.stringify({ pid: h.pid, rss: h.rssKiB() }));
  process.stdin.resume(); process.stdin.on('end', () => process.exit(0));
}, (e) => { console.log(JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } })); process.exit(1); });
`;

describeRoot('PortForwarder as root', () => {
  let ns: NetNS | undefined;
  let server: { proc: ChildProcess; lines: string[] } | undefined;
  const ip = '10.89.96.2';
  const mode: Mode = {
    async start(portMappings) {
      const h = await PortForwarder.start({ netnsPath: ns!.path, portMappings });
      expect(Math.abs(h.rssKiB()! - treeRssKiB(h.pid))).toBeLessThan(256); // the handle reports the same
      return { pid: h.pid, stop: () => h.stop() };
    },
  };
  beforeAll(async () => {
    ns = await NetNS.create({ name: uniqueName('pn-fwd') });
    execFileSync('nsenter', [`--net=${ns.path}`, 'sh', '-c', `ip link set lo up && ip addr add ${ip}/32 dev lo`]);
    server = await startServer(ns.path);
  });
  afterAll(async () => {
    server?.proc.kill('SIGKILL');
    await ns?.remove();
  });

  forwarderSuite(() => ({ mode, ip, server: server! }), 19500);

  it('exits when stopped', async () => {
    const h = await PortForwarder.start({ netnsPath: ns!.path, portMappings: [{ hostPort: 19540, containerPort: 8000 }] });
    await h.stop();
    expect(alive(h.pid)).toBe(false);
    expect(h.rssKiB()).toBeUndefined();
  });

  it('listens on an IPv6 host address', async () => {
    const h = await PortForwarder.start({ netnsPath: ns!.path, portMappings: [{ hostIP: '::1', hostPort: 19542, containerPort: 8000 }] });
    try {
      const data = randomBytes(65536);
      expect((await exchange(19542, data, '::1')).equals(data)).toBe(true);
    } finally {
      await h.stop();
    }
  });

  it('applies back-pressure: a client that does not read does not grow the forwarder', async () => {
    const h = await PortForwarder.start({ netnsPath: ns!.path, portMappings: [{ hostIP: '127.0.0.1', hostPort: 19543, containerPort: 8000 }] });
    const s = net.connect({ port: 19543, host: '127.0.0.1', allowHalfOpen: true });
    try {
      await new Promise((r) => s.once('connect', r));
      s.pause(); // the echo comes back to a reader that does not read
      const rss0 = h.rssKiB()!;
      const chunk = randomBytes(1 << 20);
      let sent = 0;
      // Write until the whole path (socket buffers, forwarder pipes, echo server) is full.
      for (let stalled = 0; stalled < 10 && sent < 256 << 20;) {
        if (s.write(chunk)) {
          sent += chunk.length;
          continue;
        }
        sent += chunk.length;
        const drained = await Promise.race([new Promise((r) => s.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 100))]);
        stalled = drained ? 0 : stalled + 1;
      }
      expect(sent).toBeLessThan(256 << 20); // the writer was stopped, not buffered without bound
      expect(h.rssKiB()! - rss0).toBeLessThan(1024);
      // Reading again lets everything through, intact in length.
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
      });
      s.resume();
      s.end();
      await new Promise((r) => s.once('end', r));
      expect(got).toBe(sent);
    } finally {
      s.destroy();
      await h.stop();
    }
  });

  it("reports a host address that is not the host's as a typed error naming it", async () => {
    await expect(
      PortForwarder.start({ netnsPath: ns!.path, portMappings: [{ hostIP: '10.89.111.1', hostPort: 19545, containerPort: 8000, protocol: 'udp' }] }),
    ).rejects.toMatchObject({ code: 'EADDRNOTAVAIL', details: { hostIP: '10.89.111.1', hostPort: 19545, protocol: 'udp' } });
  });

  it('exits within a second when its owner is killed with SIGKILL', async () => {
    const opts = { netnsPath: ns!.path, portMappings: [{ hostIP: '127.0.0.1', hostPort: 19544, containerPort: 8000 }] };
    const o = spawn(process.execPath, ['-e', OWNER, path.resolve(__dirname, '../../dist/api/portfwd'), JSON.stringify(opts)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((r) => createInterface({ input: o.stdout! }).once('line', r));
      const { pid } = JSON.parse(line);
      expect(alive(pid)).toBe(true);
      o.kill('SIGKILL');
      expect(await waitGone(pid, 1000)).toBe(true);
    } finally {
      o.kill('SIGKILL');
    }
  });

  it('reports a namespace without a global address', async () => {
    const bare = await NetNS.create({ name: uniqueName('pn-fwd') });
    try {
      await expect(PortForwarder.start({ netnsPath: bare.path, portMappings: [{ hostPort: 19541, containerPort: 8000 }] })).rejects.toMatchObject({
        code: 'ERR_PORTFWD_NO_ADDRESS',
      });
    } finally {
      await bare.remove();
    }
  });
});

describeRoot('PortForwarder as an unprivileged user', () => {
  let user: TestUser | undefined;
  let holder: ChildProcess | undefined;
  let server: { proc: ChildProcess; lines: string[] } | undefined;
  const owners = new Set<ChildProcess>();
  const forwarders = new Set<number>();
  const ip = '10.89.96.3';
  const dist = () => path.join(user!.pkg, 'dist'); // the user may not read the checkout

  function owner(portMappings: PortMapping[]): Promise<{ proc: ChildProcess; pid: number; rss: number }> {
    const opts = { netnsPath: `/proc/${holder!.pid}/ns/net`, usernsPath: `/proc/${holder!.pid}/ns/user`, portMappings };
    const [cmd, args] = user!.argv(process.execPath, ['-e', OWNER, path.join(dist(), 'api/portfwd'), JSON.stringify(opts)]);
    const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    owners.add(proc);
    proc.once('exit', () => owners.delete(proc));
    return new Promise((resolve, reject) => {
      createInterface({ input: proc.stdout! }).once('line', (l) => {
        const r = JSON.parse(l);
        if (r.error) reject(new PodnetError(r.error.code, r.error.message, { details: r.error.details }));
        else {
          forwarders.add(r.pid);
          resolve({ proc, pid: r.pid, rss: r.rss });
        }
      });
      proc.once('exit', (c) => reject(new Error(`owner exited ${c}`)));
    });
  }

  const mode: Mode = {
    async start(portMappings) {
      const o = await owner(portMappings);
      return {
        pid: o.pid,
        async stop() {
          o.proc.stdin!.end();
          await waitGone(o.pid, 2000);
        },
      };
    },
  };

  beforeAll(async () => {
    if (!existsSync(path.resolve(__dirname, '../../dist/portfwd/forwarder.js'))) throw new Error('dist/ is not built: run npx tsc -p tsconfig.json');
    user = createTestUser('pnfwd2c');
    const [cmd, args] = user.argv('unshare', [
      '--user',
      '--map-root-user',
      '--net',
      'sh',
      '-c',
      `ip link set lo up && ip addr add ${ip}/32 dev lo && echo up && exec sleep infinity`,
    ]);
    holder = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      holder!.stdout!.once('data', resolve);
      holder!.once('exit', (c) => reject(new Error(`namespace holder exited ${c}`)));
    });
    server = await startServer(`/proc/${holder.pid}/ns/net`);
  });
  afterAll(async () => {
    for (const o of owners) o.kill('SIGKILL');
    server?.proc.kill('SIGKILL');
    holder?.kill('SIGKILL');
    for (const pid of forwarders) if (!(await waitGone(pid, 2000))) process.kill(pid, 'SIGKILL');
    if (holder) await waitGone(holder.pid!, 2000);
    user?.remove();
  });

  forwarderSuite(() => ({ mode, ip, server: server! }), 19550);

  it("runs as the user, itself inside the sandbox's user namespace, with no other process", async () => {
    const o = await owner([{ hostIP: '127.0.0.1', hostPort: 19590, containerPort: 8000 }]);
    try {
      expect(readFileSync(`/proc/${o.pid}/status`, 'utf8')).toMatch(new RegExp(`Uid:\\s+${user!.uid}\\s`));
      expect(readFileSync(`/proc/${o.pid}/task/${o.pid}/children`, 'utf8').trim()).toBe('');
      expect(execFileSync('readlink', [`/proc/${o.pid}/ns/user`], { encoding: 'utf8' })).toBe(
        execFileSync('readlink', [`/proc/${holder!.pid}/ns/user`], { encoding: 'utf8' }),
      );
      // Its own network namespace is still the host's: it listens there.
      expect(execFileSync('readlink', [`/proc/${o.pid}/ns/net`], { encoding: 'utf8' })).toBe(
        execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }),
      );
    } finally {
      o.proc.stdin!.end();
      await waitGone(o.pid, 2000);
    }
  });

  it('reports a privileged host port as EACCES', async () => {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    if (start <= 1023) {
      console.warn(`SKIP privileged port: ip_unprivileged_port_start is ${start}`);
      return;
    }
    await expect(mode.start([{ hostIP: '127.0.0.1', hostPort: 1023, containerPort: 8000 }])).rejects.toMatchObject({
      code: 'EACCES',
      details: { hostIP: '127.0.0.1', hostPort: 1023, protocol: 'tcp' },
    });
  });

  it('exits within a second when its owner is killed with SIGKILL', async () => {
    const o = await owner([{ hostIP: '127.0.0.1', hostPort: 19591, containerPort: 8000 }]);
    expect(alive(o.pid)).toBe(true);
    o.proc.kill('SIGKILL');
    expect(await waitGone(o.pid, 1000)).toBe(true);
  });
});
