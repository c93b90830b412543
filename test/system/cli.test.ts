/**
 * `podnet run` and `podnet demo` end to end, as root (bridge, the embedded
 * default network) and as an unprivileged user (slirp4netns + the forwarder):
 * the published port answers while the command runs, signals and the exit code
 * pass through, and nothing is left once it ends.
 * Resources: host ports 21100-21199, test user pncli.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { createTestUser, grantTun, revokeTun, type TestUser } from '../helpers/rootless';
import { describeRoot, httpGet, ipNetnsList } from '../helpers/system';

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const SERVER = (port: number) => `require('http').createServer((q,s)=>s.end('pong')).listen(${port},'0.0.0.0')`;

function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (b) => (stderr += b));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

function leftovers(hostPort: number): string[] {
  const found: string[] = [];
  if (ipNetnsList().some((n) => /^podnet-[0-9a-f]{8}-run-/.test(n))) found.push('netns');
  if (execFileSync('iptables-save', { encoding: 'utf8' }).includes(`--dport ${hostPort} `)) found.push('iptables');
  if (execFileSync('ss', ['-Htln', `sport = :${hostPort}`], { encoding: 'utf8' }).trim()) found.push('listener');
  return found;
}

/** Commands of the user's processes (zombies included); ps exits 1 when there are none. */
function processesOf(name: string): string[] {
  try {
    return execFileSync('ps', ['-u', name, '-o', 'comm='], { encoding: 'utf8' }).trim().split('\n');
  } catch {
    return [];
  }
}

describeRoot('podnet run as root (default network)', () => {
  it.each([
    ['SIGINT', 21101, 130],
    ['SIGTERM', 21102, 143],
  ] as const)('serves on the published port until %s, then exits and leaves nothing', async (signal, port, want) => {
    const child = spawn(process.execPath, [CLI, 'run', '-p', `${port}:8000`, '--', process.execPath, '-e', SERVER(8000)], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    const done = exited(child);
    try {
      expect(await httpGet(port)).toBe('pong');
      child.kill(signal);
      const { code, stderr } = await done;
      expect({ code, stderr }).toEqual({ code: want, stderr: '' });
    } finally {
      child.kill('SIGKILL');
    }
    expect(leftovers(port)).toEqual([]);
  });

  it("--debug shows the helpers' output; a --debug after -- belongs to the command", async () => {
    const r = spawn(process.execPath, [CLI, 'run', '--debug', '--network', 'slirp4netns', '--', 'sh', '-c', 'echo "$@"', 'sh', '--debug'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    r.stdout!.on('data', (b) => (out += b));
    const { code, stderr } = await exited(r);
    expect(code).toBe(0);
    expect(out.trim()).toBe('--debug');
    expect(stderr).toMatch(/slirp4netns \d+: .*--mtu/);
    expect(stderr).toMatch(/slirp4netns output:/);
  });

  it('passes the command exit code through', async () => {
    const r = spawn(process.execPath, [CLI, 'run', '--network', 'none', '--', 'sh', '-c', 'ip -o link | wc -l; exit 7'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    r.stdout!.on('data', (b) => (out += b));
    const { code } = await exited(r);
    expect(code).toBe(7);
    expect(out.trim()).toBe('1'); // only lo in a 'none' network
  });

  it('podnet demo fetches a page through the published port and prints inspect and stats', () => {
    const out = execFileSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toMatch(/hello from inside the sandbox, you are 10\.89\.16\.1/);
    expect(out).toMatch(/"IPAddress": "10\.89\.(1[6-9]|2\d|3[01])\.\d+"/); // the native default network, 10.89.16.0/20
    expect(out).toMatch(/eth0: rx [1-9]\d* bytes/);
    expect(out).toMatch(/torn down/);
  });
});

describeRoot('podnet netns, network, inspect, stats and gc (root)', () => {
  const cli = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

  it('netns add, ls, exec and rm work like ip netns', () => {
    const name = `pn-cli-ns-${process.pid}`;
    expect(() => cli('netns', 'rm', '../../etc/hostname')).toThrow(/namespace name/);
    expect(existsSync('/etc/hostname')).toBe(true);
    try {
      cli('netns', 'add', name);
      expect(cli('netns', 'ls').split('\n')).toContain(name);
      expect(ipNetnsList()).toContain(name);
      expect(cli('netns', 'exec', name, '--', 'ip', '-o', 'link').trim().split('\n')).toHaveLength(1);
    } finally {
      cli('netns', 'rm', name);
    }
    expect(ipNetnsList()).not.toContain(name);
  });

  it('network create, ls and rm manage a conflist', () => {
    const name = `pn-cli-net-${process.pid}`;
    try {
      cli('network', 'create', name, '--subnet', '10.89.42.0/24', '--bridge', 'pncli0', '--mtu', '1400');
      expect(cli('network', 'ls').split('\n')).toEqual(expect.arrayContaining(['podnet', name]));
      expect(existsSync(`/etc/cni/net.d/${name}.conflist`)).toBe(true);
    } finally {
      cli('network', 'rm', name);
    }
    expect(existsSync(`/etc/cni/net.d/${name}.conflist`)).toBe(false);
  });

  it('inspect and stats show a running sandbox; gc leaves it alone', async () => {
    const name = `pn-cli-sb-${process.pid}`;
    const child = spawn(process.execPath, [CLI, 'run', '--name', name, '-p', '21120:8000', '--', process.execPath, '-e', SERVER(8000)], { stdio: 'ignore' });
    const done = exited(child);
    try {
      expect(await httpGet(21120)).toBe('pong');
      const inspect = JSON.parse(cli('inspect', name));
      expect(inspect.IPAddress).toMatch(/^10\.89\.(1[6-9]|2\d|3[01])\.\d+$/); // the native default network, 10.89.16.0/20
      expect(inspect.Ports['8000/tcp']).toEqual([{ HostIp: '', HostPort: '21120' }]);
      const row = cli('stats', name)
        .split('\n')
        .find((l) => l.startsWith(name));
      expect(row).toMatch(new RegExp(`^${name}\\s+\\d`));
      expect(cli('gc')).not.toContain(name);
      // --watch refreshes the table with rates until interrupted.
      const watch = spawn(process.execPath, [CLI, 'stats', name, '--watch', '--interval', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let screen = '';
      watch.stdout!.on('data', (b) => (screen += b));
      // Until it has redrawn twice (start-up under load takes a while), then interrupt.
      for (let i = 0; i < 200 && screen.split('\x1b[2J').length <= 2; i++) await new Promise((r) => setTimeout(r, 50));
      watch.kill('SIGINT');
      expect((await exited(watch)).code).toBe(0);
      expect(screen.split('\x1b[2J').length).toBeGreaterThan(2);
      expect(screen).toMatch(new RegExp(`${name}.*/s`));
    } finally {
      child.kill('SIGTERM');
      await done;
    }
    expect(leftovers(21120)).toEqual([]);
  });
});

describeRoot('podnet as an unprivileged user (slirp4netns and the forwarder)', () => {
  let user: TestUser;
  let granted = false;
  const userCli = () => path.join(user.pkg, 'dist', 'cli', 'main.js'); // the user may not read the checkout
  beforeAll(() => {
    user = createTestUser('pncli');
    granted = grantTun(user.name);
  });
  afterAll(() => {
    if (granted) revokeTun(user.name);
    user.remove();
  });

  it.each([
    ['rootlesskit', 21110],
    ['slirp4netns', 21111],
  ] as const)('run -p with port_handler=%s serves, then SIGTERM leaves nothing', async (handler, port) => {
    const [cmd, args] = user.argv(process.execPath, [
      userCli(),
      'run',
      '--network-opt',
      `port_handler=${handler}`,
      '-p',
      `${port}:8000`,
      '--',
      process.execPath,
      '-e',
      SERVER(8000),
    ]);
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'inherit', 'pipe'],
      env: { ...process.env, HOME: `/home/${user.name}`, XDG_RUNTIME_DIR: `/home/${user.name}/.run` },
    });
    const done = exited(child);
    try {
      expect(await httpGet(port)).toBe('pong');
      process.kill(child.pid!, 'SIGTERM'); // setpriv execs podnet: this is podnet's pid
      expect((await done).code).toBe(143);
    } finally {
      child.kill('SIGKILL');
    }
    expect(processesOf(user.name)).toEqual([]);
    expect(
      existsSync(`/home/${user.name}/.run/podnet/sandboxes`) ? execFileSync('ls', [`/home/${user.name}/.run/podnet/sandboxes`], { encoding: 'utf8' }) : '',
    ).toBe('');
    expect(leftovers(port)).toEqual([]);
  });

  it('run --network none gives a namespace with loopback up only', async () => {
    const { stdout } = await user.run(process.execPath, [userCli(), 'run', '--network', 'none', '--', 'ip', '-o', 'link'], { timeout: 30_000 });
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stdout).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    expect(processesOf(user.name)).toEqual([]);
  });

  it('post-configure mode: slirp4netns for a process that made its own user and network namespaces', async () => {
    const script = `
      const { Runtime } = require(${JSON.stringify(path.join(user.pkg, 'dist'))});
      const { spawn, execFileSync } = require('child_process');
      const fs = require('fs');
      (async () => {
        const proc = spawn('unshare', ['--user', '--map-root-user', '--net', 'sleep', '60'], { stdio: 'ignore' });
        while (fs.readlinkSync('/proc/' + proc.pid + '/ns/net') === fs.readlinkSync('/proc/self/ns/net')) await new Promise((r) => setTimeout(r, 5));
        const rt = new Runtime();
        try {
          const sb = await rt.attachToPid(proc.pid, { id: 'pn-cli-pid', network: 'slirp4netns' });
          const addr = execFileSync('nsenter', ['--user=/proc/' + proc.pid + '/ns/user', '--net=/proc/' + proc.pid + '/ns/net', '--preserve-credentials', 'ip', '-4', '-o', 'addr', 'show', 'tap0'], { encoding: 'utf8' });
          process.stdout.write(sb.netnsPath + ' ' + addr);
        } finally {
          await rt.teardown('pn-cli-pid');
          proc.kill('SIGKILL');
        }
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const { stdout } = await user.run(process.execPath, ['-e', script], { timeout: 30_000 });
    expect(stdout).toMatch(/^\/proc\/\d+\/ns\/net .*inet 10\.0\.2\.100\/24/);
    expect(processesOf(user.name)).toEqual([]);
  });

  it('podnet demo runs over slirp4netns', async () => {
    const { stdout } = await user.run(process.execPath, [userCli(), 'demo'], { timeout: 60_000 });
    expect(stdout).toMatch(/network slirp4netns/);
    expect(stdout).toMatch(/hello from inside the sandbox/);
    expect(stdout).toMatch(/tap0: rx \d+ bytes \/ \d+ packets, tx [1-9]\d* bytes/);
  });
});
