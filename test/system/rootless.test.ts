/**
 * Unprivileged callers, for real: a test user (created here, removed after)
 * runs podnet from dist/ to start a UserNetns and slirp4netns in it, reaches a
 * server inside through add_hostfwd on 127.0.0.1, and cleans up. Ports 19020-19029.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { buildNativeNetwork } from '../../lib/native/network';
import { UserNetns } from '../../lib/rootless';
import { createTestUser, grantTun, revokeTun, tunOpenToAll, type TestUser } from '../helpers/rootless';
import { describeRoot } from '../helpers/system';

// Run as the test user, from the copy of the package it can read (process.argv[1]: its dist/api).
const SCRIPT = `
const { UserNetns } = require(process.argv[1] + '/rootless');
const { Slirp4netns } = require(process.argv[1] + '/slirp4netns');
const net = require('net');
const fs = require('fs');
const SERVER = "require('net').createServer(s => s.end('hello from ' + require('os').networkInterfaces().tap0[0].address)).listen(8080, () => console.log('listening'))";
const fetchTcp = (port) => new Promise((resolve, reject) => {
  const c = net.connect(port, '127.0.0.1'); const out = [];
  c.on('data', (b) => out.push(b)); c.on('end', () => resolve(Buffer.concat(out).toString())); c.on('error', reject);
});
(async () => {
  const r = { uid: process.getuid() };
  const u = await UserNetns.start();
  let s, server;
  try {
    r.lo = (await u.exec('ip', ['-o', 'link', 'show', 'lo'])).stdout;
    r.idMap = u.idMap; r.holder = u.pid; r.uidMap = fs.readFileSync('/proc/' + u.pid + '/uid_map', 'utf8');
    s = await Slirp4netns.start({ netns: u.netnsPath, userns: u.usernsPath, options: ['port_handler=slirp4netns', 'mtu=1500'] });
    r.slirpPid = s.pid; r.args = s.args;
    r.addr = (await u.exec('ip', ['-o', '-4', 'addr', 'show', 'tap0'])).stdout;
    r.link = (await u.exec('ip', ['-o', 'link', 'show', 'tap0'])).stdout;
    r.route = (await u.exec('ip', ['route', 'show', 'default'])).stdout;
    r.insideUid = (await u.exec('id', ['-u'])).stdout.trim();
    server = u.spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((res) => server.stdout.once('data', res));
    const id = await s.addHostForward({ hostAddr: '127.0.0.1', hostPort: 19020, guestPort: 8080 });
    r.reply = await fetchTcp(19020);
    r.list = await s.listHostForwards();
    await s.removeHostForward(id);
    r.listAfter = await s.listHostForwards();
  } finally {
    if (server) { server.kill(); await new Promise((res) => server.once('exit', res)); }
    if (s) r.slirpExit = await s.stop();
    await u.stop();
  }
  const single = await UserNetns.start({ idMap: 'single' });
  r.single = { idMap: single.idMap, uidMap: fs.readFileSync('/proc/' + single.pid + '/uid_map', 'utf8'), pid: single.pid };
  try {
    // Without the sandbox slirp4netns joins the user namespace itself, from --userns-path alone.
    const s2 = await Slirp4netns.start({ netns: single.netnsPath, userns: single.usernsPath, sandbox: false, seccomp: false });
    r.single.args = s2.args;
    r.single.addr = (await single.exec('ip', ['-o', '-4', 'addr', 'show', 'tap0'])).stdout;
    r.single.exit = await s2.stop();
  } finally {
    await single.stop();
  }
  console.log(JSON.stringify(r));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describeRoot('unprivileged callers (test user pnslirp)', () => {
  let user: TestUser | undefined;
  let granted = false;

  beforeAll(() => {
    user = createTestUser('pnslirp');
  }, 120000);

  test('without access to /dev/net/tun: a typed EACCES before slirp4netns is spawned', async () => {
    if (tunOpenToAll()) {
      console.warn('SKIP tun access check: /dev/net/tun is mode 0666 here');
      return;
    }
    const api = path.join(user!.pkg, 'dist', 'api');
    const script = `const { UserNetns } = require(${JSON.stringify(api + '/rootless')});
const { Slirp4netns } = require(${JSON.stringify(api + '/slirp4netns')});
      (async () => { const u = await UserNetns.start(); try { await Slirp4netns.start({ netns: u.netnsPath, userns: u.usernsPath }); console.log('started'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); } finally { await u.stop(); } })();`;
    const { stdout } = await user!.run(process.execPath, ['-e', script], { timeout: 30000 });
    const r = JSON.parse(stdout.trim());
    expect(r.code).toBe('EACCES');
    expect(r.message).toContain('/dev/net/tun');
    granted = grantTun(user!.name); // for the next test
  });

  test("gc by an unprivileged caller leaves root's native networks alone (their IPAM state is root's only)", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pn-ugc-'));
    try {
      chmodSync(dir, 0o755);
      mkdirSync(path.join(dir, 'networks'), { mode: 0o755 });
      mkdirSync(path.join(dir, 'ipam'), { mode: 0o700 });
      const def = buildNativeNetwork({ name: 'ugc', subnet: '10.89.164.0/24' });
      writeFileSync(path.join(dir, 'networks', 'ugc.json'), JSON.stringify(def), { mode: 0o644 });
      const script = `const { Runtime } = require(${JSON.stringify(path.join(user!.pkg, 'dist'))});
        const os = require('os'), fs = require('fs'), path = require('path');
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pn-ugc-state-'));
        new Runtime({ stateDir, native: ${JSON.stringify({ networksDir: path.join(dir, 'networks'), stateDir: path.join(dir, 'ipam') })} }).gc()
          .then((r) => console.log(JSON.stringify(r.errors.map(String))), (e) => console.log(JSON.stringify([String(e)])))
          .finally(() => fs.rmSync(stateDir, { recursive: true, force: true }));`;
      const { stdout } = await user!.run(process.execPath, ['-e', script], { timeout: 30000 });
      expect(JSON.parse(stdout.trim())).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  afterAll(() => {
    if (user && granted) revokeTun(user.name);
    user?.remove(); // refuses while a process of the user runs: a leak fails here
  });

  test('UserNetns + slirp4netns with --userns-path: tap0, MTU, default route, add/list/remove_hostfwd on 127.0.0.1', async () => {
    if (!granted) granted = grantTun(user!.name);
    const { stdout } = await user!.run(process.execPath, ['-e', SCRIPT, path.join(user!.pkg, 'dist', 'api')], { timeout: 60000 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(r.uid).toBe(user!.uid);
    expect(r.idMap).toBe('subid'); // useradd gave the user a subordinate range
    expect(
      r.uidMap
        .trim()
        .split('\n')
        .map((l: string) => l.trim().split(/\s+/).map(Number)),
    ).toEqual([
      [0, user!.uid, 1],
      [1, expect.any(Number), 65536],
    ]);
    expect(r.args).toEqual(
      expect.arrayContaining([`--userns-path=/proc/${r.holder}/ns/user`, '--netns-type=path', `/proc/${r.holder}/ns/net`, '--enable-sandbox']),
    );
    expect(r.insideUid).toBe('0');
    expect(r.addr).toContain('inet 10.0.2.100/24');
    expect(r.link).toContain(' mtu 1500 ');
    expect(r.lo).toMatch(/<LOOPBACK,UP,LOWER_UP>/); // set up by the holder's forked child
    expect(r.route).toMatch(/^default via 10\.0\.2\.2 dev tap0/);
    expect(r.reply).toBe('hello from 10.0.2.100');
    expect(r.list).toEqual([{ id: expect.any(Number), proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 19020, guestAddr: '10.0.2.100', guestPort: 8080 }]);
    expect(r.listAfter).toEqual([]);
    expect(r.slirpExit).toEqual({ code: 0, signal: null });
    expect(r.single.idMap).toBe('single');
    expect(r.single.uidMap.trim().split(/\s+/).map(Number)).toEqual([0, user!.uid, 1]);
    expect(r.single.args).not.toContain('--enable-sandbox');
    expect(r.single.args).toContain(`--userns-path=/proc/${r.single.pid}/ns/user`);
    expect(r.single.addr).toContain('inet 10.0.2.100/24');
    expect(r.single.exit).toEqual({ code: 0, signal: null });
    for (const pid of [r.holder, r.slirpPid, r.single.pid]) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});

describeRoot('UserNetns as root', () => {
  test('identity map; processes run inside both namespaces; stop ends the holder', async () => {
    const u = await UserNetns.start();
    try {
      expect(u.idMap).toBe('identity');
      expect(readFileSync(`/proc/${u.pid}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
      const r = await u.exec('sh', ['-c', 'readlink /proc/self/ns/user /proc/self/ns/net; ip -o link show']);
      const [userns, netns] = r.stdout.split('\n');
      expect(userns).toBe(execFileSync('readlink', [u.usernsPath], { encoding: 'utf8' }).trim());
      expect(netns).toBe(execFileSync('readlink', [u.netnsPath], { encoding: 'utf8' }).trim());
      expect(r.stdout).toMatch(/1: lo:/);
      expect(r.stdout).not.toMatch(/eth0|tap0/);
    } finally {
      await u.stop();
    }
    expect(existsSync(`/proc/${u.pid}`)).toBe(false);
    expect(u.netnsFd).toBe(-1);
  });
});
