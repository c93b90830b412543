/**
 * Network mode 'pasta' through the runtime and the CLI, as root: a server in
 * the sandbox reached through a published port, inspect and stats, teardown
 * that leaves no pasta, gc after the owner is SIGKILLed, bad input with
 * nothing left. Ports 43020-43039, subnet 10.89.242.0/30, sandbox ids pasta-*.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { ErrorCode, NetNS, Runtime } from '../../lib';
import { describeRoot, httpGet, uniqueName } from '../helpers/system';

const DIST = path.join(__dirname, '..', '..', 'dist');
const CLI = path.join(DIST, 'cli', 'main.js');
// Answers a request (the client speaks first: see README on the Debian 12 pasta).
const SERVER = (port: number) => `require('http').createServer((q,s)=>s.end('pong '+q.socket.remoteAddress)).listen(${port},'0.0.0.0',()=>console.log('up'))`;

const HOST_IP = '10.89.242.1';
const VETH = `pnq${process.pid.toString(36).slice(-5)}`;
const hostIfname = () => execFileSync('ip', ['-o', '-4', 'route', 'show', 'default'], { encoding: 'utf8' }).split(' ')[4];

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSafe(`/proc/${pid}/status`));
function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`exited with ${c}`)));
  });
}

/** Namespaces of this file's runtime (podnet-<hash of the state dir>-...). */
let ownNamespaces = (): string[] => [];

describeRoot("network mode 'pasta' (root)", () => {
  let dir = '';
  let rt: Runtime;
  const opts = () => ({ stateDir: path.join(dir, 'state'), cni: { confDir: path.join(dir, 'net.d'), cacheDir: path.join(dir, 'cache') } });

  let peer: NetNS | undefined; // holds the far end of the veth whose host end has HOST_IP
  let hostServer: net.Server | undefined;

  // Runs node inside the sandbox to completion; its stdout.
  const runIn = async (id: string, args: string[]): Promise<string> => {
    const c = await rt.spawn(id, process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.on('data', (b) => (out += b));
    await new Promise((r) => c.once('close', r));
    return out;
  };

  beforeAll(async () => {
    peer = await NetNS.create({ name: uniqueName('pasta-peer') });
    execFileSync('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer.path]);
    execFileSync('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', VETH]);
    execFileSync('ip', ['link', 'set', VETH, 'up']);
    hostServer = net.createServer((c) => c.once('data', () => c.end('host'))).listen(43025, HOST_IP);
    await new Promise((r) => hostServer!.once('listening', r));
    dir = mkdtempSync(path.join(os.tmpdir(), 'pasta-rt-'));
    rt = new Runtime(opts());
    ownNamespaces = () => readdirSync('/run/netns').filter((n) => n.startsWith(rt.netnsPrefix));
  });
  afterAll(async () => {
    hostServer?.close();
    try {
      execFileSync('ip', ['link', 'del', VETH], { stdio: 'ignore' });
    } catch {
      /* not made */
    }
    await peer?.remove();
    for (const s of (await rt?.list()) ?? []) await rt.teardown(s.id).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  test('published port, inspect and stats as Podman prints them, teardown leaves nothing', async () => {
    const id = uniqueName('pasta-rt');
    const sb = await rt.createSandbox({
      id,
      network: 'pasta',
      portMappings: [
        { hostIP: '127.0.0.1', hostPort: 43020, containerPort: 8000 },
        { hostPort: 0, containerPort: 53, protocol: 'udp' },
      ],
    });
    const pid = sb.helpers.pasta!.pid;
    expect(alive(pid)).toBe(true);
    expect(sb.mode).toBe('pasta');
    expect(sb.portMappings[1].hostPort).toBeGreaterThan(0); // hostPort 0 resolved before pasta started
    const server = await rt.spawn(id, process.execPath, ['-e', SERVER(8000)], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await started(server);
      expect(await httpGet(43020)).toBe('pong 127.0.0.1');
      const inspect = await rt.inspect(id);
      expect(inspect.SandboxKey).toBe(sb.netnsPath);
      expect(inspect.Ports).toEqual({
        '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '43020' }],
        '53/udp': [{ HostIp: '', HostPort: String(sb.portMappings[1].hostPort) }],
      });
      expect(inspect.Networks).toBeUndefined(); // no CNI network: as for slirp4netns
      // Loopback clients take pasta's splice path (the namespace's lo); an outbound connection to a host address crosses its interface.
      const client = `require('net').connect(43025, '${HOST_IP}', function () { this.write('hi'); }).on('data', (b) => console.log(String(b)))`;
      expect((await runIn(id, ['-e', client])).trim()).toBe('host');
      const stats = await rt.stats(id);
      expect(Object.keys(stats!)).toEqual([hostIfname()]); // the interface --config-net made, named as the host's
      expect(stats![hostIfname()].rxBytes).toBeGreaterThan(0);
      expect(stats![hostIfname()].txBytes).toBeGreaterThan(0);
    } finally {
      server.kill('SIGKILL');
      await rt.teardown(id);
    }
    expect(await waitGone(pid, 0)).toBe(true); // teardown waited for pasta to be reaped
    expect(existsSync(sb.netnsPath!)).toBe(false);
    expect(await rt.get(id)).toBeUndefined();
  });

  test('gc after the owner is SIGKILLed ends its pasta and removes the namespace', async () => {
    const id = uniqueName('pasta-gc');
    const script = `
      const { Runtime } = require(${JSON.stringify(DIST)});
      const rt = new Runtime(${JSON.stringify(opts())});
      rt.createSandbox({ id: '${id}', network: 'pasta', ephemeral: true, portMappings: [{ hostPort: 43021, containerPort: 80 }] })
        .then((s) => { process.stdout.write(JSON.stringify(s)); setInterval(() => {}, 1000); }, (e) => { console.error(e); process.exit(1); });`;
    const owner = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sb = await new Promise<{ helpers: { pasta: { pid: number } }; netnsPath: string }>((resolve, reject) => {
      owner.stdout!.once('data', (b) => resolve(JSON.parse(String(b))));
      owner.once('exit', (c) => reject(new Error(`owner exited ${c}`)));
    });
    owner.kill('SIGKILL');
    await new Promise((r) => owner.once('exit', r));
    const pid = sb.helpers.pasta.pid;
    expect(alive(pid)).toBe(true); // pasta outlives its owner: only gc can end it
    const removed = await new Runtime(opts()).gc();
    expect(removed.sandboxes).toEqual([id]);
    expect(await waitGone(pid)).toBe(true);
    expect(existsSync(sb.netnsPath)).toBe(false);
    expect(ownNamespaces()).toEqual([]);
  });

  test.each([
    [{ networkOptions: ['--no-such-option'] }, ErrorCode.PASTA_OPTION],
    [{ networkOptions: ['--mtu', '70000'] }, ErrorCode.PASTA_OPTION],
    [{ portMappings: [{ hostPort: 43022, containerPort: 1, protocol: 'sctp' }] }, ErrorCode.INVALID_ARGUMENT],
  ])('bad input %j: %s, no sandbox, namespace or pasta left', async (o, code) => {
    const id = uniqueName('pasta-bad');
    await expect(rt.createSandbox({ id, network: 'pasta', ...o })).rejects.toMatchObject({ code });
    expect(await rt.get(id)).toBeUndefined();
    expect(ownNamespaces()).toEqual([]);
  });

  test('a pasta binary that is missing: ERR_PASTA_NOT_FOUND, nothing left', async () => {
    const other = new Runtime({ ...opts(), pastaBinary: '/nonexistent/pasta' });
    const id = uniqueName('pasta-nobin');
    await expect(other.createSandbox({ id, network: 'pasta' })).rejects.toMatchObject({ code: ErrorCode.PASTA_NOT_FOUND });
    expect(await other.get(id)).toBeUndefined();
    expect(ownNamespaces()).toEqual([]);
  });

  test('podnet run --network pasta:OPTS serves on the published port until SIGINT, then leaves nothing', async () => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        '--network',
        'pasta:--mtu,1500',
        '-p',
        '127.0.0.1:43023:8000',
        '--',
        'sh',
        '-c',
        `ip -o link | grep -c 'mtu 1500'; exec ${process.execPath} -e "${SERVER(8000).replace(/"/g, '\\"')}"`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (err += b));
    const done = new Promise<number | null>((r) => child.once('close', r));
    try {
      expect(await httpGet(43023)).toBe('pong 127.0.0.1');
      expect(out).toMatch(/^1\n/); // --mtu 1500 reached pasta
      const pasta = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && readFileSafe(`/proc/${p}/cmdline`).includes('127.0.0.1/43023:8000'));
      expect(pasta.length).toBe(1);
      child.kill('SIGINT');
      expect(await done).toBe(130);
      expect(err).toBe('');
      expect(await waitGone(Number(pasta[0]))).toBe(true);
    } finally {
      // A failed expectation still ends podnet gracefully (its teardown ends pasta); SIGKILL only if it hangs.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await done;
        clearTimeout(t);
      }
    }
  });
});
