/**
 * The runtime on native networks, side by side with a CNI network: traffic,
 * published ports, inspect, stats, restartNetwork, teardown from a fresh
 * process and gc after SIGKILL behave the same.
 * Resources: native network nat-rt 10.89.149.0/24, CNI network nat-cni
 * (bridge natcni0, 10.89.156.0/24), host ports 44200-44299, sandbox ids nat-*.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Runtime } from '../../lib';
import { describeRoot } from '../helpers/system';

jest.setTimeout(120000);

const ECHO = path.join(__dirname, '..', 'fixtures', 'native', 'echo.py');
const DIST = path.join(__dirname, '..', '..', 'dist');
const dir = mkdtempSync(path.join(os.tmpdir(), 'nat-rt-'));
const opts = {
  stateDir: path.join(dir, 'state'),
  cni: { confDir: path.join(dir, 'net.d'), cacheDir: path.join(dir, 'cache') },
  native: { networksDir: path.join(dir, 'networks'), stateDir: path.join(dir, 'ipam') },
};

async function client(ns: string | null, kind: 'tcp' | 'udp', host: string, port: number): Promise<string> {
  const args = ['/usr/bin/python3', ECHO, kind, host, String(port)];
  const { stdout } = ns === null ? await promisify(execFile)(args[0], args.slice(1)) : await promisify(execFile)('nsenter', [`--net=${ns}`, ...args]);
  return stdout.trim();
}

/** Retries `fn` until it resolves (the server in the sandbox is starting), 10 s at most. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Waits until `cond` holds (the kernel frees a removed namespace's veth pair in its cleanup worker), 10 s at most. */
async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`still not true after 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function fresh(code: string): void {
  execFileSync(process.execPath, [
    '-e',
    `const { Runtime } = require(${JSON.stringify(DIST)}); const rt = new Runtime(${JSON.stringify(opts)}); (async () => { ${code} })().catch((e) => { console.error(e); process.exit(1); });`,
  ]);
}

describeRoot('runtime on native networks, compared with CNI', () => {
  const rt = new Runtime(opts);
  const ids: string[] = [];

  beforeAll(async () => {
    await rt.native.create({ name: 'nat-rt', subnet: '10.89.149.0/24' });
    await rt.cni.createNetwork({ name: 'nat-cni', bridge: 'natcni0', subnet: '10.89.156.0/24' });
  });

  afterAll(async () => {
    for (const id of ids) await rt.teardown(id).catch(() => undefined);
    await rt.gc().catch(() => undefined);
    await rt.native.remove('nat-rt', { force: true }).catch(() => undefined);
    await rt.cni.removeNetwork('nat-cni', { force: true }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    ['nat-rt', 44200, '10.89.149.1'],
    ['nat-cni', 44210, '10.89.156.1'],
  ])('network %s: traffic, published ports, inspect, stats, restart, teardown from a fresh process', async (network, port, gateway) => {
    const id = `nat-rt-${network}`;
    ids.push(id);
    const sb = await rt.createSandbox({ id, networks: [network], portMappings: [{ hostPort: port, containerPort: 8080, protocol: 'tcp,udp' }] });
    const server = await rt.spawn(id, '/usr/bin/python3', [ECHO, 'serve', '8080'], { stdio: 'ignore' });
    try {
      const settings = await rt.inspect(id);
      const ip = settings.Networks![network].IPAddress;
      expect(ip.startsWith(gateway.slice(0, -1))).toBe(true);
      expect(settings.Networks![network].Gateway).toBe(gateway);
      expect(settings.Ports['8080/tcp']).toEqual([{ HostIp: '', HostPort: String(port) }]);
      expect(await eventually(() => client(null, 'tcp', '127.0.0.1', port))).toMatch(/^hello /);
      expect(await client(null, 'udp', '127.0.0.1', port)).toMatch(/^pong /);
      // the sandbox reaches a server on the host at its gateway
      const srv = net.createServer((c) => c.end(`hello ${c.remoteAddress}`));
      await new Promise<void>((r) => srv.listen(port + 1, gateway, r));
      try {
        expect(await client(sb.netnsPath!, 'tcp', gateway, port + 1)).toBe(`hello ${ip}`);
      } finally {
        srv.close();
      }
      const stats = await rt.stats(id);
      expect(Object.keys(stats!)).toContain('eth0');
      // restart: a working network again, the ports still published
      await rt.restartNetwork(id);
      expect(await eventually(() => client(null, 'tcp', '127.0.0.1', port))).toMatch(/^hello /);
    } finally {
      server.kill('SIGKILL');
    }
    const host = (await rt.get(id))!.results[0].result.interfaces![network === 'nat-rt' ? 0 : 1].name;
    fresh(`await rt.teardown(${JSON.stringify(id)});`);
    expect(await rt.get(id)).toBeUndefined();
    expect(existsSync(sb.netnsPath!)).toBe(false);
    await until(`${host} is gone`, () => !existsSync(`/sys/class/net/${host}`));
    await expect(client(null, 'tcp', '127.0.0.1', port)).rejects.toThrow();
  });

  test('SIGKILL during createSandbox, then gc from a fresh process: no lease, element, link, route or namespace left', async () => {
    for (const delay of [30, 80, 150]) {
      const script = `
        const { Runtime } = require(${JSON.stringify(DIST)});
        const rt = new Runtime(${JSON.stringify(opts)});
        (async () => { for (let i = 0; ; i++) { await rt.createSandbox({ id: 'nat-kill-${delay}-' + i, networks: ['nat-rt'], portMappings: [{ hostPort: 44220 + i, containerPort: 80 }] }); process.stdout.write('.'); } })();
      `;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => child.stdout!.once('data', r));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // the sandboxes that finished belong to a dead owner but are 'ready': tear them down, then gc the rest
      fresh(`for (const s of await rt.list()) await rt.teardown(s.id); const r = await rt.gc(); if (r.errors.length) throw r.errors[0];`);
      const ipam = path.join(opts.native.stateDir, 'networks', 'nat-rt');
      expect(readdirSync(ipam).filter((f) => net.isIP(f))).toEqual([]);
      expect(execFileSync('nft', ['list', 'map', 'inet', 'podnet', 'hp4'], { encoding: 'utf8' })).not.toContain('10.89.149.');
      await until(
        'no host route into 10.89.149.0/24',
        () => execFileSync('ip', ['-o', 'route', 'show', 'root', '10.89.149.0/24'], { encoding: 'utf8' }).trim() === '',
      );
      expect(readdirSync('/run/netns').filter((n) => n.startsWith(rt.netnsPrefix))).toEqual([]);
    }
  });
});
