/**
 * pasta for real (lib/pasta), as root: a server inside a namespace reached
 * through published TCP and UDP ports, nothing forwarded when nothing is
 * asked, outbound connections to a host address, a dying pasta reported,
 * bad input typed with nothing left behind. Ports 43001-43009, subnet
 * 10.89.240.0/30, names pasta-*.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ErrorCode, PodnetError } from '../../lib/errors';
import { NetNS } from '../../lib/netns';
import { Pasta } from '../../lib/pasta';
import { runCommand } from '../../lib/command';
import { describeRoot, uniqueName } from '../helpers/system';

// A TCP server answering a request with the peer's address, and a UDP echo, both inside the namespace.
// The client speaks first: the Debian 12 pasta completes a handshake from a non-loopback client only with the client's first data (README).
const SERVER = `
const [tcp, udp] = process.argv.slice(1).map(Number);
const s = require('net').createServer((c) => c.once('data', () => c.end('hello ' + c.remoteAddress.replace(/^::ffff:/, '')))).listen(tcp, () => {
  const u = require('dgram').createSocket('udp4');
  u.on('message', (m, r) => u.send(Buffer.concat([Buffer.from('echo '), m]), r.port, r.address));
  u.bind(udp, () => console.log('listening'));
});`;

function startServer(ns: NetNS, tcp: number, udp: number): Promise<ChildProcess> {
  const child = ns.spawn(process.execPath, ['-e', SERVER, String(tcp), String(udp)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function stopChild(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await gone;
}

/** Sends a request to host:port over TCP (from inside `ns` when given): 'ok <reply>' or the error code. */
async function connects(port: number, host: string, ns?: NetNS): Promise<string> {
  const script = `const c = require('net').connect(${port}, ${JSON.stringify(host)}, () => c.write('hi')); let d = '';
    c.setTimeout(3000, () => { console.log('ETIMEDOUT'); process.exit(0); });
    c.on('data', (b) => d += b); c.on('end', () => console.log('ok ' + d)); c.on('error', (e) => console.log(e.code));`;
  if (ns) return (await ns.exec(process.execPath, ['-e', script])).stdout.trim();
  return (await runCommand(process.execPath, ['-e', script])).stdout.toString().trim();
}

/** The interface of the host's default route and its first IPv4 address (what --config-net copies). */
function hostAddress(): { ifname: string; addr: string } {
  const ifname = execFileSync('ip', ['-o', '-4', 'route', 'show', 'default'], { encoding: 'utf8' }).split(' ')[4];
  const addr = execFileSync('ip', ['-o', '-4', 'addr', 'show', 'dev', ifname], { encoding: 'utf8' }).split(/\s+/)[3].split('/')[0];
  return { ifname, addr };
}
const HOST = hostAddress();
const HOST_IP = '10.89.240.1';
const REMOTE_IP = '10.89.240.2';
const VETH = `pnp${process.pid.toString(36).slice(-5)}`;

/** Sends 'ping' over UDP from inside `ns` and resolves with the reply (resent every 200 ms, 3 s limit). */
async function udpFrom(ns: NetNS, port: number, host: string): Promise<string> {
  const script = `const u = require('dgram').createSocket('udp4'); const t = setInterval(() => u.send('ping', ${port}, ${JSON.stringify(host)}), 200);
    u.send('ping', ${port}, ${JSON.stringify(host)}); u.on('message', (m) => { console.log(m.toString()); process.exit(0); });
    setTimeout(() => { console.log('no reply'); process.exit(0); }, 3000);`;
  if (ns) return (await ns.exec(process.execPath, ['-e', script])).stdout.trim();
  return (await runCommand(process.execPath, ['-e', script])).stdout.toString().trim();
}

describeRoot('pasta as root', () => {
  let ns: NetNS;
  let remote: NetNS; // a remote client: a namespace behind a veth whose host end has HOST_IP
  let work: string; // the readiness FIFO's temp dirs go here: empty again after every test
  const server: ChildProcess[] = [];

  beforeAll(async () => {
    ns = await NetNS.create({ name: uniqueName('pasta') });
    remote = await NetNS.create({ name: uniqueName('pasta-remote') });
    execFileSync('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', remote.path]);
    execFileSync('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', VETH]);
    execFileSync('ip', ['link', 'set', VETH, 'up']);
    await remote.exec('ip', ['addr', 'add', `${REMOTE_IP}/30`, 'dev', 'eth0']);
    await remote.exec('ip', ['link', 'set', 'eth0', 'up']);
    work = mkdtempSync(path.join(tmpdir(), 'pasta-test-'));
  });
  afterEach(async () => {
    for (const c of server.splice(0)) await stopChild(c);
    expect(readdirSync(work)).toEqual([]);
  });
  afterAll(async () => {
    try {
      execFileSync('ip', ['link', 'del', VETH], { stdio: 'ignore' });
    } catch {
      /* not made */
    }
    await remote?.remove();
    await ns?.remove();
    rmSync(work, { recursive: true, force: true });
  });

  test('a server inside is reached through published TCP and UDP ports, from loopback and a remote client; stop ends pasta', async () => {
    const p = await Pasta.start({
      netns: ns.path,
      tmpDir: work,
      portMappings: [
        { hostPort: 43001, containerPort: 8080 },
        { hostIP: HOST_IP, hostPort: 43002, containerPort: 5353, protocol: 'udp' },
      ],
    });
    try {
      expect(p.args).toEqual(
        expect.arrayContaining(['--config-net', '-t', '43001:8080', '-u', `${HOST_IP}/43002:5353`, '-T', 'none', '-U', 'none', '--runas', '0:0']),
      );
      // --config-net copied the host's address onto an interface of the same name.
      expect((await ns.exec('ip', ['-o', '-4', 'addr', 'show', HOST.ifname])).stdout).toContain(` ${HOST.addr}/`);
      server.push(await startServer(ns, 8080, 5353));
      expect(await connects(43001, '127.0.0.1')).toBe('ok hello 127.0.0.1'); // pasta's splice path for local clients
      // A remote client keeps its address (pasta's tap path).
      expect(await connects(43001, HOST_IP, remote)).toBe(`ok hello ${REMOTE_IP}`);
      // UDP from the remote client: the Debian 12 pasta loses UDP replies to loopback clients (README).
      expect(await udpFrom(remote, 43002, HOST_IP)).toBe('echo ping');
    } finally {
      const e = await p.stop();
      expect(e.signal === 'SIGTERM' || e.code === 0).toBe(true);
    }
    expect(p.running).toBe(false);
    expect(() => process.kill(p.pid, 0)).toThrow();
  });

  test('no mappings: no port forwarded either way; outbound to a host address works', async () => {
    let host: net.Server | undefined;
    let hostLocal: net.Server | undefined;
    let p: Pasta | undefined;
    try {
      host = net.createServer((c) => c.once('data', () => c.end('host'))).listen(43003, HOST_IP);
      hostLocal = net.createServer((c) => c.end('host-lo')).listen(43004, '127.0.0.1');
      await Promise.all([host, hostLocal].map((s) => new Promise((r) => s.once('listening', r))));
      p = await Pasta.start({ netns: ns.path, tmpDir: work });
      expect(p.args).toEqual(expect.arrayContaining(['-t', 'none', '-u', 'none', '-T', 'none', '-U', 'none']));
      server.push(await startServer(ns, 43005, 43006));
      expect(await connects(43005, '127.0.0.1')).toBe('ECONNREFUSED'); // host -> namespace: not forwarded
      expect(await connects(43005, HOST_IP, remote)).toBe('ECONNREFUSED');
      expect(await connects(43004, '127.0.0.1', ns)).toBe('ECONNREFUSED'); // namespace -> host loopback: not forwarded
      expect(await connects(43003, HOST_IP, ns)).toBe('ok host'); // outbound through pasta's sockets
    } finally {
      await p?.stop();
      host?.close();
      hostLocal?.close();
    }
  });

  test('a pasta that dies is reported with a typed error', async () => {
    const p = await Pasta.start({ netns: ns.path, tmpDir: work });
    process.kill(p.pid, 'SIGKILL');
    const e = await p.died;
    expect(e).toBeInstanceOf(PodnetError);
    expect(e.code).toBe(ErrorCode.PASTA_EXITED);
    expect(e.details).toMatchObject({ pid: p.pid, signal: 'SIGKILL' });
    await p.stop();
  });

  test.each([
    [{ options: ['--bogus'] }, ErrorCode.PASTA_OPTION, /--bogus.*unknown/],
    [{ options: ['--netns', '/run/netns/x'] }, ErrorCode.PASTA_OPTION, /set by podnet/],
    [{ options: ['--mtu', '70000'] }, ErrorCode.PASTA_OPTION, /exited with status 1 before it was ready: Invalid MTU/],
    [{ binary: '/nonexistent/pasta' }, ErrorCode.PASTA_NOT_FOUND, /not found/],
    [{ binary: '/bin/true' }, ErrorCode.PASTA_NOT_FOUND, /does not work as pasta/],
    [{ netns: '/run/netns/pasta-missing' }, ErrorCode.PASTA_EXITED, /Couldn't open network namespace/],
    [{ portMappings: [{ hostPort: 43007, containerPort: 1, protocol: 'sctp' }] }, ErrorCode.INVALID_ARGUMENT, /tcp and udp only/],
  ])('bad input %j: %s, nothing left', async (o, code, msg) => {
    await expect(Pasta.start({ netns: ns.path, tmpDir: work, ...o })).rejects.toMatchObject({ code, message: expect.stringMatching(msg) });
    expect(childPids()).toEqual([]);
  });

  test.each(['tcp', 'udp'])('a %s host port in use: ERR_PASTA_PORT before pasta starts', async (protocol) => {
    const busy = protocol === 'tcp' ? net.createServer().listen(43008, '127.0.0.1') : require('node:dgram').createSocket('udp4').bind(43008, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    try {
      await expect(Pasta.start({ netns: ns.path, tmpDir: work, portMappings: [{ hostPort: 43008, containerPort: 80, protocol }] })).rejects.toMatchObject({
        code: ErrorCode.PASTA_PORT,
        message: expect.stringContaining(`43008/${protocol}`),
      });
      expect(childPids()).toEqual([]);
    } finally {
      busy.close();
    }
  });
});

/** This process's children (pasta would be one). */
function childPids(): number[] {
  return readdirSync(`/proc/${process.pid}/task`).flatMap((t) => {
    try {
      return readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}
