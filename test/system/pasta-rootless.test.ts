/**
 * Network mode 'pasta' for an unprivileged caller, for real: a test user
 * (created here, removed after) runs podnet from dist/. pasta joins the user
 * namespace of podnet's holder (`--userns`); a server in the sandbox is
 * reached through published TCP ports; with no mappings nothing is forwarded;
 * a dying pasta is reported; gc after the owner is SIGKILLed ends pasta.
 * Ports 43040-43059, test user pnpasta1, sandbox ids pasta-*.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { createTestUser, grantTun, revokeTun, tunOpenToAll, type TestUser } from '../helpers/rootless';
import { describeRoot } from '../helpers/system';

// The scripts run as the user, who may not read the checkout: they load podnet from the user's readable copy (PODNET_DIST).

// Runs as the user: a sandbox with published ports, a server inside, requests through them, inspect, stats, teardown.
const SCRIPT = `
const { Runtime } = require(process.env.PODNET_DIST + '/index.js');
const { Pasta } = require(process.env.PODNET_DIST + '/api/pasta');
const { UserNetns } = require(process.env.PODNET_DIST + '/api/rootless');
const net = require('net');
const os = require('os');
const ask = (port) => new Promise((resolve) => {
  const c = net.connect(port, '127.0.0.1', () => c.write('hi')); let d = '';
  c.setTimeout(3000, () => { c.destroy(); resolve('ETIMEDOUT'); });
  c.on('data', (b) => (d += b)); c.on('end', () => resolve('ok ' + d)); c.on('error', (e) => resolve(e.code));
});
const SERVER = "require('net').createServer((c) => c.once('data', () => c.end('hello ' + process.getuid()))).listen(8080, () => console.log('up'))";
(async () => {
  const r = {};
  const rt = new Runtime({ stateDir: os.homedir() + '/state' });
  const sb = await rt.createSandbox({ id: 'pasta-u1', network: 'pasta', portMappings: [{ hostIP: '127.0.0.1', hostPort: 43040, containerPort: 8080 }] });
  r.helpers = Object.keys(sb.helpers).sort(); r.pastaPid = sb.helpers.pasta.pid; r.holderPid = sb.helpers.holder.pid;
  r.args = require('fs').readFileSync('/proc/' + r.pastaPid + '/cmdline', 'utf8').split('\\0');
  const server = await rt.spawn('pasta-u1', process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res) => server.stdout.once('data', res));
  r.reply = await ask(43040);
  r.inspect = await rt.inspect('pasta-u1');
  r.stats = Object.keys(await rt.stats('pasta-u1'));
  server.kill('SIGKILL');
  await new Promise((res) => server.once('exit', res));
  await rt.teardown('pasta-u1');
  r.after = await rt.list();

  // No mappings: nothing forwarded. Then a pasta that dies is reported.
  const u = await UserNetns.start();
  try {
    const p = await Pasta.start({ netns: u.netnsPath, userns: u.usernsPath });
    const inner = u.spawn(process.execPath, ['-e', SERVER.replace('8080', '43041')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((res) => inner.stdout.once('data', res));
    r.unforwarded = await ask(43041);
    inner.kill('SIGKILL');
    await new Promise((res) => inner.once('exit', res));
    process.kill(p.pid, 'SIGKILL');
    const e = await p.died;
    r.died = { code: e.code, signal: e.details.signal };
    await p.stop();
  } finally {
    await u.stop();
  }
  console.log(JSON.stringify(r));
})().catch((e) => { console.error(e); process.exit(1); });
`;

// Runs as the user: an ephemeral sandbox whose owner (this process) is then SIGKILLed by the test.
const OWNER = `
const { Runtime } = require(process.env.PODNET_DIST + '/index.js');
new Runtime({ stateDir: require('os').homedir() + '/state' })
  .createSandbox({ id: 'pasta-u2', network: 'pasta', ephemeral: true, portMappings: [{ hostPort: 43042, containerPort: 80 }] })
  .then((s) => { console.log(JSON.stringify(s.helpers)); setInterval(() => {}, 1000); }, (e) => { console.error(e); process.exit(1); });
`;
const NO_TUN = `
const { Runtime } = require(process.env.PODNET_DIST + '/index.js');
const rt = new Runtime({ stateDir: require('os').homedir() + '/state' });
rt.createSandbox({ id: 'pasta-u0', network: 'pasta' }).then(() => console.log('started'),
  async (e) => console.log(JSON.stringify({ code: e.code, message: e.message, left: await rt.list() })));
`;
const GC = `
const { Runtime } = require(process.env.PODNET_DIST + '/index.js');
new Runtime({ stateDir: require('os').homedir() + '/state' }).gc().then((r) => console.log(JSON.stringify({ sandboxes: r.sandboxes, errors: r.errors.map(String) })));
`;

/** Pids of the user's processes (zombies included). */
function processesOf(uid: number): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] === String(uid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const gone = async (pid: number, ms = 5000) => {
  const end = Date.now() + ms;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
};

describeRoot("network mode 'pasta' for an unprivileged caller (test user pnpasta1)", () => {
  let user: TestUser | undefined;
  const distEnv = () => ({ PODNET_DIST: path.join(user!.pkg, 'dist') });
  let granted = false;

  beforeAll(() => {
    user = createTestUser('pnpasta1');
  }, 120000);

  afterAll(async () => {
    if (user && granted) revokeTun(user.name);
    // Processes the tests ended may still be on their way out (reaped by init): wait for that state, then
    // remove the user, which refuses while a process of the user runs: a leak fails here.
    const end = Date.now() + 10_000;
    while (user && processesOf(user.uid).length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    user?.remove();
  });

  test('without access to /dev/net/tun: a typed EACCES before pasta is spawned, nothing left', async () => {
    if (tunOpenToAll()) {
      console.warn('SKIP tun access check: /dev/net/tun is mode 0666 here');
      return;
    }
    const { stdout } = await user!.run(process.execPath, ['-e', NO_TUN], { timeout: 30000, env: distEnv() });
    expect(JSON.parse(stdout)).toEqual({ code: 'EACCES', message: expect.stringContaining('pasta needs read-write access to /dev/net/tun'), left: [] });
  });

  test('pasta in the holder: published port, nothing forwarded unasked, death reported, teardown', async () => {
    granted ||= grantTun(user!.name); // pasta opens /dev/net/tun as the caller (0600 here: no udev)
    const { stdout } = await user!.run(process.execPath, ['-e', SCRIPT], { timeout: 60000, env: distEnv() });
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(r.helpers).toEqual(['holder', 'pasta']);
    expect(r.args).toEqual(
      expect.arrayContaining([
        '--netns',
        `/proc/${r.holderPid}/ns/net`,
        '--userns',
        `/proc/${r.holderPid}/ns/user`,
        '-t',
        '127.0.0.1/43040:8080',
        '-T',
        'none',
      ]),
    );
    expect(r.args).not.toContain('--runas');
    expect(r.reply).toBe('ok hello 0'); // the server runs as root of the user namespace
    expect(r.inspect.Ports).toEqual({ '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '43040' }] });
    expect(r.inspect.SandboxKey).toBe(`/proc/${r.holderPid}/ns/net`);
    expect(r.stats.length).toBe(1);
    expect(r.after).toEqual([]);
    expect(r.unforwarded).toBe('ECONNREFUSED');
    expect(r.died).toEqual({ code: 'ERR_PASTA_EXITED', signal: 'SIGKILL' });
    for (const pid of [r.pastaPid, r.holderPid]) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  test('gc after the owner is SIGKILLed ends pasta and the holder', async () => {
    granted ||= grantTun(user!.name);
    const [cmd, args] = user!.argv(process.execPath, ['-e', OWNER]);
    const owner = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH, HOME: `/home/${user!.name}`, ...distEnv() } });
    let helpers: { pasta: { pid: number }; holder: { pid: number } };
    try {
      helpers = await new Promise((resolve, reject) => {
        owner.stdout!.once('data', (b) => resolve(JSON.parse(String(b))));
        owner.once('exit', (c) => reject(new Error(`owner exited ${c}`)));
      });
    } finally {
      owner.kill('SIGKILL');
      await new Promise((r) => (owner.exitCode !== null || owner.signalCode !== null ? r(null) : owner.once('exit', r)));
    }
    try {
      // The holder leaves with its owner (its exit pipe closes); pasta keeps the namespaces open until gc ends it.
      expect(await gone(helpers.holder.pid)).toBe(true);
      expect(existsSync(`/proc/${helpers.pasta.pid}`)).toBe(true);
      const { stdout } = await user!.run(process.execPath, ['-e', GC], { timeout: 30000, env: distEnv() });
      expect(JSON.parse(stdout)).toEqual({ sandboxes: ['pasta-u2'], errors: [] });
      expect(await gone(helpers.pasta.pid)).toBe(true);
    } finally {
      for (const pid of [helpers.pasta.pid, helpers.holder.pid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone, as it should be */
        }
      }
    }
  });
});
