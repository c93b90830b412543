import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';

import { NetNS, PodnetError, linkStats, linkStatsMany } from '../../lib';
import { releaseStats, statsCacheInfo } from '../../lib/stats';
import type { LinkStats } from '../../lib';
import { describeRoot, openFdCount, threadNetns, uniqueName } from '../helpers/system';

const run = promisify(execFile);
const made: NetNS[] = [];

afterAll(async () => {
  await releaseStats();
  for (const ns of made.splice(0)) await ns.remove().catch(() => {});
});

async function create(tag: string): Promise<NetNS> {
  const ns = await NetNS.create({ name: uniqueName(`pn-st-${tag}`) });
  made.push(ns);
  return ns;
}

async function sh(ns: NetNS, script: string): Promise<string> {
  const r = await ns.exec('bash', ['-euc', script]);
  if (r.code !== 0) throw new Error(`in ${ns.name}: ${script}: ${r.stderr}`);
  return r.stdout;
}

// Quiet links (no IPv6 autoconf traffic) so only what a test sends is counted.
const QUIET = 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1';

// Waits until the kernel activated the link's queue (linkwatch may lag under load;
// before that, datagrams are dropped without being counted).
const waitUp = (dev: string) => `until ip link show ${dev} | grep -q 'qdisc noqueue.*state UP'; do sleep 0.01; done`;

// `count` UDP datagrams of `size` payload bytes to `addr` (a static neighbour: no ARP).
const sendUdp = (addr: string, count: number, size: number) =>
  `p=$(head -c ${size} /dev/zero | tr '\\0' x); for i in $(seq ${count}); do printf %s "$p" > /dev/udp/${addr}/9; done`;

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const threads = () => readdirSync('/proc/self/task').length;

describe('linkStats input checks', () => {
  it('none networking gives null, bad input a typed error before any syscall', async () => {
    await expect(linkStats(null)).resolves.toBeNull();
    await expect(linkStats('', 'eth0')).resolves.toBeNull();
    await expect(linkStats('relative/ns', 'eth0')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    for (const bad of ['', 'a/b', 'a:b', 'a b', 'x'.repeat(16), '..']) {
      await expect(linkStats('/proc/self/ns/net', bad)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /interface name/ });
    }
    await expect(linkStatsMany('x' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('a path that is not a network namespace is ERR_NOT_NETNS; a missing one ENOENT', async () => {
    await expect(linkStats('/etc/hostname')).rejects.toMatchObject({ code: 'ERR_NOT_NETNS', path: '/etc/hostname' });
    await expect(linkStats('/proc/self/ns/mnt')).rejects.toMatchObject({ code: 'ERR_NOT_NETNS' });
    await expect(linkStats('/run/netns/pn-st-never-there', 'eth0')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'stat' });
  });
});

describeRoot('linkStats on real namespaces', () => {
  it('counters move by exactly what was sent through a veth between two namespaces', async () => {
    const a = await create('a');
    const b = await create('b');
    await sh(a, `${QUIET}; ip link add pnsta0 type veth peer name pnstb0 netns ${b.path}`);
    // Static neighbours both ways: no ARP, so only the datagrams (and b's ICMP answers) cross.
    const mac = async (ns: NetNS, dev: string) => JSON.parse(await sh(ns, `ip -j link show ${dev}`))[0].address as string;
    const [aMac, bMac] = [await mac(a, 'pnsta0'), await mac(b, 'pnstb0')];
    await sh(b, `ip addr add 10.89.64.2/30 dev pnstb0; ip link set pnstb0 up; ip neigh add 10.89.64.1 lladdr ${aMac} dev pnstb0 nud permanent`);
    await sh(a, `ip addr add 10.89.64.1/30 dev pnsta0; ip link set pnsta0 up; ip neigh add 10.89.64.2 lladdr ${bMac} dev pnsta0 nud permanent`);
    await sh(a, waitUp('pnsta0'));
    await sh(b, waitUp('pnstb0'));

    const read = async () => {
      const [sa, sb] = await linkStatsMany([
        { netnsPath: a.path, ifname: 'pnsta0' },
        { netnsPath: b.path, ifname: 'pnstb0' },
      ]);
      expect(sa.error).toBeUndefined();
      expect(sb.error).toBeUndefined();
      return [sa.stats as LinkStats, sb.stats as LinkStats];
    };
    const [a0, b0] = await read();
    const count = 37;
    const size = 100;
    await sh(a, sendUdp('10.89.64.2', count, size));
    const [a1, b1] = await read();
    // Ethernet 14 + IPv4 20 + UDP 8 header bytes per datagram.
    expect(a1.txPackets - a0.txPackets).toBe(count);
    expect(a1.txBytes - a0.txBytes).toBe(count * (size + 42));
    expect(b1.rxPackets - b0.rxPackets).toBe(count);
    expect(b1.rxBytes - b0.rxBytes).toBe(count * (size + 42));
    // Whatever b answered (ICMP port unreachable) is what a received.
    expect(a1.rxPackets - a0.rxPackets).toBe(b1.txPackets - b0.txPackets);
    expect(a1.rxErrors + a1.txErrors + a1.collisions).toBe(0);

    // No interface name: every non-loopback link, keyed by name, same counters.
    const all = await linkStats(a.path);
    expect(Object.keys(all!)).toEqual(['pnsta0']);
    expect(all!.pnsta0.txPackets).toBe(a1.txPackets);
    await expect(linkStats(a.path, 'eth0')).rejects.toMatchObject({ code: 'ERR_NO_SUCH_INTERFACE', path: a.path });
    await expect(linkStats(a.path, 'eth0')).rejects.toBeInstanceOf(PodnetError);
    expect(await linkStats(a.path, 'lo')).toMatchObject({ txErrors: 0 });
  });

  it('keeps one socket per namespace and drops it when the namespace goes or is released', async () => {
    const ns = await create('c');
    await sh(ns, `${QUIET}; ip link add pnstc0 type veth peer name pnstc1`);
    await releaseStats();
    expect(await statsCacheInfo()).toEqual({ sockets: 0, paths: 0 });
    await linkStats(ns.path);
    await linkStats(ns.handlePath); // a second path to the same namespace shares the socket
    expect(await statsCacheInfo()).toEqual({ sockets: 1, paths: 2 });
    expect(await releaseStats(ns.path)).toBe(1);
    expect(await statsCacheInfo()).toEqual({ sockets: 0, paths: 0 });

    await linkStats(ns.path, 'pnstc0');
    const fds = openFdCount();
    await ns.remove();
    made.splice(made.indexOf(ns), 1);
    const [gone] = await linkStatsMany([{ netnsPath: ns.path, ifname: 'pnstc0' }]);
    expect(gone.error).toMatchObject({ code: 'ENOENT', path: ns.path });
    expect(await statsCacheInfo()).toEqual({ sockets: 0, paths: 0 });
    expect(openFdCount()).toBe(fds - 2); // the namespace handle and the socket

    // Not polled again: a later poll of anything sweeps it (within a second), so
    // the socket does not keep a removed namespace alive.
    const other = await create('c');
    const doomed = await create('c');
    await linkStats(doomed.path);
    expect((await statsCacheInfo()).sockets).toBe(1);
    await doomed.remove();
    made.splice(made.indexOf(doomed), 1);
    await new Promise((r) => setTimeout(r, 1100));
    await linkStats(other.path);
    expect(await statsCacheInfo()).toEqual({ sockets: 1, paths: 1 });
    await releaseStats();
  });

  it('the same path naming a new namespace gets a new socket, not the old namespace', async () => {
    const name = uniqueName('pn-st-r');
    const first = await NetNS.create({ name });
    made.push(first);
    await sh(first, 'ip link add pnstr0 type veth peer name pnstr1');
    expect(Object.keys((await linkStats(first.path))!).sort()).toEqual(['pnstr0', 'pnstr1']);
    await first.remove();
    made.splice(made.indexOf(first), 1);
    const second = await NetNS.create({ name });
    made.push(second);
    await sh(second, 'ip link add pnstr2 type veth peer name pnstr3');
    expect(Object.keys((await linkStats(second.path))!).sort()).toEqual(['pnstr2', 'pnstr3']);
    await releaseStats(second.path);
  });

  it('a batch over 200 namespaces returns each its own values; a missing one fails alone', async () => {
    const n = 200;
    const spaces: NetNS[] = [];
    for (let i = 0; i < n; i++) spaces.push(await create('b'));
    // Namespace i sends i % 7 + 1 datagrams of i bytes; its link is named pnst<i>.
    const setUp = async (i: number) =>
      sh(
        spaces[i],
        `${QUIET}; ip link add pnst${i} type veth peer name pnstp${i}; ip addr add 10.89.66.1/24 dev pnst${i}; ` +
          `ip link set pnst${i} up; ip link set pnstp${i} up; ` +
          `ip neigh add 10.89.66.2 lladdr 02:00:00:00:00:02 dev pnst${i} nud permanent; ${waitUp(`pnst${i}`)}; ${sendUdp('10.89.66.2', (i % 7) + 1, i + 1)}`,
      );
    for (let i = 0; i < n; i += 8) await Promise.all(spaces.slice(i, i + 8).map((_, j) => setUp(i + j)));

    const missing = `/run/netns/${uniqueName('pn-st-missing')}`;
    const entries = spaces.map((ns, i) => (i % 2 ? { netnsPath: ns.path, ifname: `pnst${i}` } : { netnsPath: ns.path }));
    entries.splice(100, 0, { netnsPath: missing, ifname: 'eth0' });
    const res = await linkStatsMany(entries);
    expect(res).toHaveLength(n + 1);
    expect(res[100]).toMatchObject({ netnsPath: missing, error: { code: 'ENOENT' } });
    res.splice(100, 1);
    res.forEach((r, i) => {
      expect(r.error).toBeUndefined();
      expect(r.netnsPath).toBe(spaces[i].path);
      const s = (i % 2 ? r.stats : (r.stats as Record<string, LinkStats>)[`pnst${i}`]) as LinkStats;
      if (i % 2 === 0) expect(Object.keys(r.stats!).sort()).toEqual([`pnst${i}`, `pnstp${i}`].sort());
      expect([i, s.txPackets]).toEqual([i, (i % 7) + 1]);
      expect(s.txBytes).toBe(((i % 7) + 1) * (i + 1 + 42));
    });
    expect((await statsCacheInfo()).sockets).toBeGreaterThanOrEqual(n);
    expect(await Promise.all(spaces.map((ns) => releaseStats(ns.path)))).toEqual(Array(n).fill(1));
    for (const ns of spaces) {
      await ns.remove();
      made.splice(made.indexOf(ns), 1);
    }
  }, 180000);

  it('10,000 reads leave every thread in its namespace and no fd, thread or memory behind', async () => {
    const spaces = [await create('t'), await create('t')];
    for (const ns of spaces) await sh(ns, `${QUIET}; ip link add pnstt0 type veth peer name pnstt1`);
    const ownNs = threadNetns()[0];
    await linkStats(spaces[0].path, 'pnstt0'); // warm up: sockets, pool threads
    const fds = openFdCount();
    const mem = rss();
    const tasks = threads();
    const batch = Array.from({ length: 100 }, (_, i) => ({ netnsPath: spaces[i % 2].path, ifname: i % 3 ? 'pnstt0' : undefined }));
    for (let round = 0; round < 90; round++) {
      const res = await linkStatsMany(batch);
      expect(res.every((r) => r.error === undefined)).toBe(true);
    }
    for (let i = 0; i < 1000; i++) await linkStats(spaces[i % 2].path, 'pnstt1');
    // Sockets are made afresh after a release, too: 20 release/read cycles.
    for (let i = 0; i < 20; i++) {
      await releaseStats();
      await linkStats(spaces[i % 2].path);
    }
    expect(new Set(threadNetns())).toEqual(new Set([ownNs]));
    expect(threads()).toBeLessThanOrEqual(tasks);
    expect(openFdCount()).toBeLessThanOrEqual(fds);
    expect(rss() - mem).toBeLessThan(32 * 1024 * 1024);
  }, 120000);
});

describeRoot('linkStats of a rootless (slirp4netns) sandbox', () => {
  let user: import('../helpers/rootless').TestUser | undefined;
  const pids: number[] = [];

  afterAll(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    user?.remove();
  });

  it('reads tap0 of a namespace owned by an unprivileged user, as root and as that user', async () => {
    const { createTestUser } = await import('../helpers/rootless');
    const { spawn } = await import('node:child_process');
    user = createTestUser('pnstats');
    const [cmd, args] = user.argv('unshare', ['-Urn', 'sleep', '120']);
    const sandbox = spawn(cmd, args, { stdio: 'ignore' });
    pids.push(sandbox.pid!);
    const nsPath = `/proc/${sandbox.pid}/ns/net`;
    // Wait for unshare to have exec'd sleep in its new namespaces.
    for (let i = 0; i < 100 && readFileSync(`/proc/${sandbox.pid}/cmdline`, 'utf8').split('\0')[0] !== 'sleep'; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // slirp4netns runs as root here: /dev/net/tun is 0600 on this machine. It
    // joins the user's namespaces, so tap0 lives in the user-owned namespace.
    const slirp = spawn('slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', String(sandbox.pid), 'tap0'], { stdio: 'ignore' });
    pids.push(slirp.pid!);
    let links: Record<string, LinkStats> | null = null;
    for (let i = 0; i < 100; i++) {
      links = await linkStats(nsPath).catch(() => null);
      if (links && links.tap0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(Object.keys(links!)).toEqual(['tap0']);
    // One datagram first so the gateway's neighbour entry is resolved: datagrams queued behind ARP can be dropped.
    await run('nsenter', ['-t', String(sandbox.pid), '-U', '-n', '--preserve-credentials', 'bash', '-c', sendUdp('10.0.2.2', 1, 10)]);
    await new Promise((r) => setTimeout(r, 200));
    const before = (await linkStats(nsPath, 'tap0'))!;
    // 5 datagrams to slirp's virtual gateway (dropped there: host loopback is disabled).
    await run('nsenter', ['-t', String(sandbox.pid), '-U', '-n', '--preserve-credentials', 'bash', '-c', sendUdp('10.0.2.2', 5, 10)]);
    const after = (await linkStats(nsPath, 'tap0'))!;
    expect(after.txPackets - before.txPackets).toBeGreaterThanOrEqual(5);
    await releaseStats(nsPath);

    // The user's own podnet process cannot setns there directly; it reads through a forked helper.
    const script =
      `require(${JSON.stringify(`${user.pkg}/dist`)}).linkStats(${JSON.stringify(nsPath)}, 'tap0')` +
      '.then((s) => console.log(JSON.stringify(s)), (e) => { console.error(e.code, e.message); process.exit(1); })';
    const out = await user.run(process.execPath, ['-e', script]);
    const mine = JSON.parse(out.stdout) as LinkStats;
    expect(mine.txPackets).toBeGreaterThanOrEqual(after.txPackets);
    expect(mine.txBytes).toBeGreaterThan(0);

    // Unprivileged: its own (host) namespace reads without setns; pid 1's is refused with a typed error.
    const probe = (p: string) =>
      `require(${JSON.stringify(`${user!.pkg}/dist`)}).linkStats(${JSON.stringify(p)})` +
      '.then((s) => console.log(JSON.stringify(Object.keys(s))), (e) => console.log(JSON.stringify(e.code)))';
    const own = JSON.parse((await user.run(process.execPath, ['-e', probe('/proc/self/ns/net')])).stdout);
    // (Other sessions add and remove host links meanwhile: check the shape, not the list.)
    expect(Array.isArray(own) && own.length > 0).toBe(true);
    expect(own).not.toContain('lo');
    const init = JSON.parse((await user.run(process.execPath, ['-e', probe('/proc/1/ns/net')])).stdout);
    expect(['EACCES', 'EPERM']).toContain(init);
  }, 60000);
});
