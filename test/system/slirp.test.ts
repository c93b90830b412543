/**
 * slirp4netns for real, as root: tap0 configuration, API socket port
 * forwarding over host loopback, the sandbox's effect on /run/netns, PID mode,
 * stopping, and failure reporting with fake binaries. Ports 19000-19099.
 */
import { type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { NetNS } from '../../lib/netns';
import { Slirp4netns, hostForwardsFromPortMappings } from '../../lib/slirp';
import { spawnHelper, CLONE_NEWNET } from '../../lib/spawn';
import { spawnFdCount } from '../helpers/fds';
import { tcpRead } from '../helpers/net';
import { describeRoot, ipNetnsList, nsfsMounts, uniqueName } from '../helpers/system';

const SERVER = `require('net').createServer(s => s.end('hello from ' + require('os').networkInterfaces().tap0[0].address)).listen(8080, () => console.log('listening'))`;

/** A TCP server inside the namespace on :8080 that answers with its tap0 address. */
export function startServer(spawn: (cmd: string, args: string[]) => ChildProcess): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['-e', SERVER]);
  return new Promise((resolve, reject) => {
    p.stdout!.once('data', () => resolve(p));
    p.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

describeRoot('Slirp4netns (root)', () => {
  let ns: NetNS;
  let fakes: string;

  beforeAll(async () => {
    ns = await NetNS.create({ name: uniqueName('pn-sl') });
    fakes = mkdtempSync(path.join(tmpdir(), 'pn-sl-fake-'));
    // Fakes answer --help/--version as the real binary does (feature probe), then misbehave.
    const fake = (name: string, body: string) => {
      const p = path.join(fakes, name);
      writeFileSync(p, `#!/bin/sh\ncase "$1" in --help|--version) exec slirp4netns "$1";; esac\n${body}\n`);
      chmodSync(p, 0o755);
      return p;
    };
    fake('exits', 'echo "fake: cannot configure tap0" >&2; date +%s%3N >&2; exit 3');
    fake('sleeps', 'echo "fake: sleeping"; exec sleep 30');
    fake('marker', `touch ${fakes}/ran; exit 1`);
    // The real slirp4netns, then the moment it exited, so the report delay can be measured.
    fake('timed', 'slirp4netns "$@"; rc=$?; date +%s%3N >&2; exit $rc');
  });

  afterAll(async () => {
    await ns?.remove();
    rmSync(fakes, { recursive: true, force: true });
  });

  test('configures tap0, forwards a host loopback port to a server inside, lists and removes it', async () => {
    const fdsBefore = spawnFdCount();
    const s = await Slirp4netns.start({ netns: ns.path, options: ['port_handler=slirp4netns'] });
    let server: ChildProcess | undefined;
    try {
      expect(s.args).toEqual(expect.arrayContaining(['-c', '-e', '3', '-r', '4', '--netns-type=path', ns.path, 'tap0', '--enable-sandbox']));
      const addr = await ns.exec('ip', ['-o', '-4', 'addr', 'show', 'tap0']);
      expect(addr.stdout).toContain('inet 10.0.2.100/24');
      expect((await ns.exec('ip', ['-o', 'link', 'show', 'tap0'])).stdout).toContain(' mtu 65520 ');
      expect((await ns.exec('ip', ['route', 'show', 'default'])).stdout).toMatch(/^default via 10\.0\.2\.2 dev tap0/);

      server = await startServer((c, a) => ns.spawn(c, a, { stdio: ['ignore', 'pipe', 'inherit'] }));
      const id = await s.addHostForward({ hostAddr: '127.0.0.1', hostPort: 19001, guestPort: 8080 });
      expect(await tcpRead(19001)).toBe('hello from 10.0.2.100');
      expect(await s.listHostForwards()).toEqual([{ id, proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 19001, guestAddr: '10.0.2.100', guestPort: 8080 }]);
      // the same port twice: slirp4netns's error, naming the mapping
      await expect(s.addHostForward({ hostAddr: '127.0.0.1', hostPort: 19001, guestPort: 8080 })).rejects.toMatchObject({
        code: 'ERR_SLIRP_API',
        message: expect.stringContaining('tcp 127.0.0.1:19001 -> :8080'),
      });
      await s.removeHostForward(id);
      expect(await s.listHostForwards()).toEqual([]);
      await expect(tcpRead(19001)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      await expect(s.removeHostForward(id)).rejects.toMatchObject({ code: 'ERR_SLIRP_API' });
    } finally {
      server?.kill();
      const e = await s.stop();
      expect(e).toEqual({ code: 0, signal: null }); // left on exit-pipe EOF, not killed
    }
    expect(alive(s.pid)).toBe(false); // reaped: no zombie
    expect(existsSync(path.dirname(s.apiSocket!))).toBe(false);
    expect(spawnFdCount()).toBe(fdsBefore);
  });

  test("the sandbox does not take the host's /run/netns bind mounts with it", async () => {
    const other = await NetNS.create({ name: uniqueName('pn-sl-keep') });
    try {
      const hostForwards = hostForwardsFromPortMappings([{ hostIP: '127.0.0.1', hostPort: 19003, containerPort: 8080, protocol: 'tcp,udp' }]);
      const s = await Slirp4netns.start({ netns: ns.path, sandbox: true, hostForwards });
      try {
        expect(s.args).toContain('--enable-sandbox');
        expect((await s.listHostForwards()).map((f) => `${f.proto} ${f.hostAddr}:${f.hostPort}->${f.guestPort}`)).toEqual([
          'tcp 127.0.0.1:19003->8080',
          'udp 127.0.0.1:19003->8080',
        ]);
        // slirp4netns has pivoted and unmounted the old root in its namespace by now
        expect(nsfsMounts()).toEqual(expect.arrayContaining([ns.path, other.path]));
        expect(ipNetnsList()).toEqual(expect.arrayContaining([ns.name, other.name]));
      } finally {
        await s.stop();
      }
      expect(nsfsMounts()).toEqual(expect.arrayContaining([ns.path, other.path]));
    } finally {
      await other.remove();
    }
  });

  test('post-configure mode: the namespace of a running process, by pid', async () => {
    const holder = spawnHelper('cat', [], { stdin: 'exit', readyFd: false, unshare: CLONE_NEWNET });
    try {
      const s = await Slirp4netns.start({ pid: holder.pid, options: ['mtu=1500'] });
      try {
        const target = await NetNS.open(`/proc/${holder.pid}/ns/net`);
        try {
          expect((await target.exec('ip', ['-o', '-4', 'addr', 'show', 'tap0'])).stdout).toContain('inet 10.0.2.100/24');
          expect((await target.exec('ip', ['-o', 'link', 'show', 'tap0'])).stdout).toContain(' mtu 1500 ');
        } finally {
          target.close();
        }
      } finally {
        await s.stop();
      }
    } finally {
      await holder.stop();
    }
  });

  describe('failures: typed errors with the helper output, nothing left behind', () => {
    let fdsBefore: number;
    beforeEach(() => (fdsBefore = spawnFdCount()));
    afterEach(() => expect(spawnFdCount()).toBe(fdsBefore));

    test('binary missing', async () => {
      await expect(Slirp4netns.start({ netns: ns.path, binary: path.join(fakes, 'absent') })).rejects.toMatchObject({ code: 'ERR_HELPER_NOT_FOUND' });
    });

    test('bad option or bad input: refused before anything is spawned', async () => {
      const binary = path.join(fakes, 'marker');
      await expect(Slirp4netns.start({ netns: ns.path, binary, options: ['mtu'] })).rejects.toMatchObject({ code: 'ERR_SLIRP_OPTION' });
      await expect(Slirp4netns.start({ netns: 'relative/ns', binary })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      await expect(Slirp4netns.start({ netns: ns.path, pid: 1, binary })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      await expect(Slirp4netns.start({ netns: ns.path, binary, interfaceName: 'tap0:1' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      expect(existsSync(path.join(fakes, 'ran'))).toBe(false);
    });

    test('a binary that exits at once is reported within 50 ms of its exit', async () => {
      let err: (Error & { code?: string; details?: { output?: string; pid?: number } }) | undefined;
      try {
        await Slirp4netns.start({ netns: ns.path, binary: path.join(fakes, 'exits') });
      } catch (e) {
        err = e as typeof err;
      }
      const reportedAt = Date.now();
      expect(err).toMatchObject({ code: 'ERR_HELPER_EXITED', message: expect.stringContaining('exited with status 3') });
      expect(err!.message).toContain('fake: cannot configure tap0');
      const exitedAt = Number(err!.details!.output!.trim().split('\n').pop());
      expect(reportedAt - exitedAt).toBeLessThan(50);
      expect(alive(err!.details!.pid!)).toBe(false);
    });

    test("a bad namespace path: slirp4netns's own message, within 50 ms of its exit", async () => {
      const bad = '/run/netns/pn-sl-does-not-exist';
      let err: (Error & { code?: string; details?: { output?: string; pid?: number } }) | undefined;
      await Slirp4netns.start({ netns: bad, binary: path.join(fakes, 'timed') }).catch((e) => (err = e));
      const reportedAt = Date.now();
      expect(err).toMatchObject({ code: 'ERR_HELPER_EXITED', message: expect.stringContaining(bad) });
      const exitedAt = Number(err!.details!.output!.trim().split('\n').pop());
      expect(reportedAt - exitedAt).toBeLessThan(50);
      expect(alive(err!.details!.pid!)).toBe(false);
    });

    test('ready never arriving: a timeout error with the output, the helper killed and reaped', async () => {
      const t0 = Date.now();
      let err: (Error & { code?: string; details?: { pid?: number } }) | undefined;
      await Slirp4netns.start({ netns: ns.path, binary: path.join(fakes, 'sleeps'), readyTimeoutMs: 300 }).catch((e) => (err = e));
      expect(err).toMatchObject({ code: 'ERR_HELPER_TIMEOUT', message: expect.stringContaining('fake: sleeping') });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(alive(err!.details!.pid!)).toBe(false);
    });
  });
});

describe('slirpFeatures', () => {
  test('probes --help once per binary file, again when the file changes', async () => {
    const { slirpFeatures } = await import('../../lib/slirp');
    const real = await slirpFeatures();
    expect(real.binary).toMatch(/\/slirp4netns$/);
    expect(real.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(real).toMatchObject({ sandbox: true, seccomp: true, mtu: true, apiSocket: true, usernsPath: true, cidr: true });
    expect(await slirpFeatures(real.binary)).toBe(real); // cached

    const dir = mkdtempSync(path.join(tmpdir(), 'pn-sl-feat-'));
    try {
      const bin = path.join(dir, 'slirp4netns');
      writeFileSync(bin, '#!/bin/sh\necho "--mtu=MTU --disable-host-loopback"\n');
      chmodSync(bin, 0o755);
      const old = await slirpFeatures(bin);
      expect(old).toMatchObject({ binary: bin, mtu: true, disableHostLoopback: true, sandbox: false, apiSocket: false });
      writeFileSync(bin, '#!/bin/sh\necho "--mtu=MTU --enable-sandbox"\n');
      const { utimesSync } = await import('node:fs');
      utimesSync(bin, new Date(), new Date(Date.now() + 5000)); // a new mtime even within the same tick
      expect(await slirpFeatures(bin)).toMatchObject({ sandbox: true, disableHostLoopback: false });
      await expect(slirpFeatures(path.join(dir, 'absent'))).rejects.toMatchObject({ code: 'ERR_HELPER_NOT_FOUND' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
