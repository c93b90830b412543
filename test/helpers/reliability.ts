/**
 * Shared by the reliability suites: CNI plugins that misbehave as shell
 * scripts (fork, hang, fail), a fresh-process runner for owners that get
 * SIGKILLed, and a census of everything a sandbox can leave on the host.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { NetNS, Runtime } from '../../lib';

/** A bridge conflist with `last` appended to the usual chain (portmap, firewall), written into confDir. */
export function writeChain(s: Suite, n: number, last: Record<string, unknown>): string {
  const network = `rel-net${n}`;
  const plugins = [
    { type: 'bridge', bridge: `pnrel${n}`, isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: `10.89.${n}.0/24` }]] } },
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'firewall' },
    last,
  ];
  mkdirSync(s.runtime.cni.confDir, { recursive: true });
  writeFileSync(path.join(s.runtime.cni.confDir, `${network}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: network, plugins }));
  s.extra.push({ network, bridge: `pnrel${n}`, subnetPrefix: `10.89.${n}.` });
  return network;
}

/** Writes an executable plugin script `name` into `dir`: `body` handles ADD; VERSION answers unless `version` replaces it. */
export function writePlugin(
  dir: string,
  name: string,
  body: string,
  version = 'echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\'',
): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `#!/bin/sh
# A test CNI plugin: ${name}
input=$(cat)
case "$CNI_COMMAND" in
  VERSION) ${version} ;;
  ADD) ${body} ;;
  *) exit 0 ;;
esac
`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** ADD that passes prevResult through (what a no-op plugin in a chain returns). */
export const PASS_THROUGH = `printf '%s' "$input" | node -e 'const c=JSON.parse(require("fs").readFileSync(0,"utf8"));process.stdout.write(JSON.stringify(c.prevResult??{cniVersion:c.cniVersion}))'`;

/** Starts a fresh node process running `code` with podnet's compiled sources (dist/) as `podnet`; resolves when it prints `marker`. */
export function startOwner(code: string, marker = 'READY'): { child: ChildProcess; ready: Promise<void>; out: () => string } {
  const root = path.join(__dirname, '..', '..');
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const podnet = require(${JSON.stringify(path.join(root, 'dist/index.js'))});\n(async () => { ${code} })().catch((e) => { console.error('FAILED', e.code, e.message); process.exit(1); });`,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const seen = (b: Buffer) => {
      out += b.toString();
      if (out.includes(marker)) resolve();
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (c, s) => reject(new Error(`owner exited (${c ?? s}) before ${marker}: ${out}`)));
  });
  ready.catch(() => {});
  return { child, ready, out: () => out };
}

/** Polls `fn` until it returns a truthy value, or throws naming `what` at the deadline. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** iptables and ip6tables rules (iptables-save lines) containing any of `needles`. */
export function iptablesRules(needles: string[]): string[] {
  const text = execFileSync('iptables-save', { encoding: 'utf8' }) + execFileSync('ip6tables-save', { encoding: 'utf8' });
  return text.split('\n').filter((l) => !l.startsWith('#') && needles.some((n) => l.includes(n)));
}

/** nftables rules and set elements (`nft list ruleset` lines) containing any of `needles`. */
export function nftRules(needles: string[]): string[] {
  const text = execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  return text.split('\n').filter((l) => needles.some((n) => l.includes(n)));
}

/** Files under `dir` (recursively), for caches, leases and state. */
export function filesUnder(dir: string, keep: (name: string) => boolean = () => true): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, keep));
    else if (keep(e.name)) out.push(p);
  }
  return out;
}

/** Leases of host-local networks `nets` (files named for addresses). */
export function leases(nets: string[]): string[] {
  return nets.flatMap((n) => filesUnder(`/var/lib/cni/networks/${n}`, (f) => /^[0-9a-f.:]+$/.test(f)));
}

/** Processes whose command line contains `needle` (other than this one). */
export function processesWith(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(stat)) continue; // a zombie waiting for init
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push({ pid: Number(d), cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The host end of a native attachment, as the engine names it (csrc/core/native/engine.cc HostIfname: FNV-1a 64 of the three names). */
export function nativeHostIfname(network: string, containerId: string, ifname: string): string {
  let h = 1469598103934665603n;
  const mask = (1n << 64n) - 1n;
  for (const s of [network, containerId, ifname]) {
    for (const c of Buffer.from(s)) h = ((h ^ BigInt(c)) * 1099511628211n) & mask;
    h = (h * 1099511628211n) & mask;
  }
  return `pn${(h & 0xfffffffffffffn).toString(16).padStart(13, '0')}`;
}

/** Host routes (IPv4 and IPv6, main table) naming an address that starts with one of `prefixes`, other than the subnet routes `except`. */
export function routesTo(prefixes: string[], except: string[] = []): string[] {
  const text = execFileSync('ip', ['route', 'show'], { encoding: 'utf8' }) + execFileSync('ip', ['-6', 'route', 'show'], { encoding: 'utf8' });
  return text.split('\n').filter((l) => prefixes.some((p) => l.includes(p)) && !except.some((e) => l.startsWith(e)));
}

/** Host veth links whose peer is gone or attached to `bridges`. */
export function bridgePorts(bridges: string[]): string[] {
  return bridges.flatMap((b) => (existsSync(`/sys/class/net/${b}/brif`) ? readdirSync(`/sys/class/net/${b}/brif`).map((l) => `${b}:${l}`) : []));
}

// ---- the network modes every suite runs, and the environment they need ----

/** What a suite sets up once for the modes: a CNI network, a namespace to join, a sandbox to share. */
export interface ModeEnv {
  network: string;
  /** A native network (routed veths, nftables elements, IPAM on disk). */
  nativeNetwork: string;
  /** Ids of the sandboxes given the native network (the census derives their host veth names). */
  nativeIds: Set<string>;
  /** A namespace made outside the runtime (for ns:<path>). */
  nsPath: string;
  /** A ready sandbox (for container:<id>). */
  target: string;
  /** The next host port of the suite's range. */
  port(): number;
}

/**
 * One entry per network mode: the createSandbox options for a sandbox of that
 * mode. A new mode (native, pasta) is one more entry here; every suite
 * (soak, faults, concurrency, bad input) then covers it.
 */
export interface ModeCase {
  name: string;
  options(id: string, env: ModeEnv): Record<string, unknown>;
}

export const MODES: ModeCase[] = [
  { name: 'bridge', options: (id, env) => ({ id, networks: [env.network], portMappings: [{ hostPort: env.port(), containerPort: 8080 }] }) },
  {
    name: 'native',
    options: (id, env) => {
      env.nativeIds.add(id);
      return { id, networks: [env.nativeNetwork], portMappings: [{ hostPort: env.port(), containerPort: 8080 }] };
    },
  },
  { name: 'pasta', options: (id, env) => ({ id, network: 'pasta', portMappings: [{ hostPort: env.port(), containerPort: 8080 }] }) },
  { name: 'slirp4netns', options: (id, env) => ({ id, network: 'slirp4netns', portMappings: [{ hostPort: env.port(), containerPort: 8080 }] }) },
  { name: 'none', options: (id) => ({ id, network: 'none' }) },
  { name: 'host', options: (id) => ({ id, network: 'host' }) },
  { name: 'ns', options: (id, env) => ({ id, network: `ns:${env.nsPath}` }) },
  { name: 'container', options: (id, env) => ({ id, network: `container:${env.target}` }) },
];

/** A runtime's directories and the resources of one suite. */
export interface Suite {
  dir: string;
  runtime: {
    stateDir: string;
    cni: { confDir: string; cacheDir: string; binDirs: string[]; pluginTimeoutMs: number };
    native: { networksDir: string; stateDir: string };
  };
  network: string;
  bridge: string;
  /** e.g. '10.89.210.' (the suite's /24). */
  subnetPrefix: string;
  ports: [number, number];
  /** More CNI networks of the suite (each its own bridge and /24). */
  extra: { network: string; bridge: string; subnetPrefix: string }[];
  /** The suite's native network (its own /24) and the ids of the sandboxes given it. */
  native: { network: string; subnet: string; subnetPrefix: string; ids: Set<string> };
}

/** Runs the reliability worker (test/fixtures/reliability/worker.js) on `job`; resolves with its JSON report. */
export function runWorker(job: Record<string, unknown>, opts: { dist?: string; timeoutMs?: number } = {}): Promise<WorkerReport> {
  const { child, done } = startWorker(job, opts);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  return done.finally(() => clearTimeout(timer));
}

export interface WorkerReport {
  samples: { cycle: number; fds: number; threads: number; rssMiB: number; heapMiB: number }[];
  addresses: string[];
  ports: number[];
  errors: { what: string; code: string; message: string }[];
  gc?: { sandboxes: string[]; namespaces: string[]; cniAttachments: string[] };
}

let jobSeq = 0;

/** Starts the worker; `lines` collects its stdout lines as they come (for STEP markers). */
export function startWorker(job: Record<string, unknown>, opts: { dist?: string } = {}): { child: ChildProcess; lines: string[]; done: Promise<WorkerReport> } {
  const root = path.join(__dirname, '..', '..');
  const file = path.join((job.runtime as { stateDir: string }).stateDir, '..', `job-${process.pid}-${jobSeq++}.json`);
  writeFileSync(file, JSON.stringify(job));
  const child = spawn(process.execPath, ['--expose-gc', path.join(root, 'test/fixtures/reliability/worker.js'), opts.dist ?? path.join(root, 'dist'), file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<WorkerReport>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      rmSync(file, { force: true });
      const last = lines.filter((l) => l.startsWith('{')).pop();
      if (code === 0 && last) resolve(JSON.parse(last));
      else reject(Object.assign(new Error(`worker ${code ?? signal}: ${err.slice(-2000)}`), { signal }));
    });
  });
  done.catch(() => {});
  return { child, lines, done };
}

/**
 * Everything a suite's sandboxes can leave on the host, by kind; `keep` are
 * the suite's own long-lived sandboxes. Zero everywhere means clean.
 */
export function census(s: Suite, netnsPrefix: string, keep: string[] = []): Record<string, string[]> {
  const kept = (x: string) => keep.some((k) => x.includes(k));
  const stateFiles = filesUnder(path.join(s.runtime.stateDir, 'sandboxes')).filter((f) => !kept(f));
  const nat = s.native;
  const natState = path.join(s.runtime.native.stateDir, 'networks', nat.network);
  const subnets = [s.subnetPrefix, ...s.extra.map((e) => e.subnetPrefix), nat.subnetPrefix];
  return {
    state: stateFiles,
    namespaces: (existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((n) => n.startsWith(netnsPrefix) && !kept(n)),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(netnsPrefix) && !kept(l)),
    cache: filesUnder(path.join(s.runtime.cni.cacheDir, 'results')).filter((f) => !kept(f)),
    leases: leases([s.network, ...s.extra.map((e) => e.network)]),
    links: bridgePorts([s.bridge, ...s.extra.map((e) => e.bridge)]),
    iptables: iptablesRules(subnets),
    nftables: nftRules(subnets).filter((l) => !l.includes(nat.subnet)),
    // Native attachments: leases and attachment records (and temporary files) under the engine's state,
    // host veth ends (named from the container id, as the engine does) and /32 (/128) routes.
    // (.ensured and last_reserved_ip.* belong to the network, not to a sandbox.)
    nativeLeases: filesUnder(natState, (f) => f !== '.ensured' && !f.startsWith('last_reserved_ip.')).filter((f) => !kept(f)),
    nativeLinks: existsSync('/sys/class/net')
      ? readdirSync('/sys/class/net').filter(
          (l) => /^pn[0-9a-f]{13}$/.test(l) && [...nat.ids].some((id) => nativeHostIfname(nat.network, netnsPrefix + id, 'eth0') === l),
        )
      : [],
    routes: routesTo([nat.subnetPrefix], [nat.subnet]),
    pasta: processesWith(netnsPrefix)
      .filter((p) => isPasta(p.cmd))
      .map((p) => `${p.pid} ${p.cmd}`),
    // Readiness FIFO dirs of pasta starts (the runtime makes them under its state dir).
    pastaTemp: existsSync(path.join(s.runtime.stateDir, 'tmp')) ? readdirSync(path.join(s.runtime.stateDir, 'tmp')) : [],
    processes: [...processesWith(netnsPrefix), ...processesWith(s.runtime.stateDir)]
      .filter((p) => !isPasta(p.cmd))
      .map((p) => `${p.pid} ${p.cmd}`)
      .filter((p) => !kept(p)),
    plugins: orphanPlugins(netnsPrefix).map((p) => `${p.pid} ${p.cmd}`),
  };
}

/** A pasta process (the binary may be pasta or pasta.avx2, from PATH or a full path). */
const isPasta = (cmd: string) => /^(\S*\/)?pasta(\.avx2)? /.test(cmd);

/** Processes (CNI plugins) whose environment names a namespace of this runtime. */
export function orphanPlugins(netnsPrefix: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'utf8').includes(`CNI_NETNS=/run/netns/${netnsPrefix}`)) {
        out.push({ pid: Number(d), cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ') });
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Total of a census. */
export function censusTotal(c: Record<string, string[]>): number {
  return Object.values(c).reduce((n, l) => n + l.length, 0);
}

/** Figures for the log: `suite: {...}` on one line, as RELIABILITY.md quotes them. */
export function printFigures(suite: string, figures: Record<string, unknown>): void {
  console.log(`RELIABILITY ${suite}: ${JSON.stringify(figures)}`);
}

/** Full sizes under `npm run soak` (PODNET_RELIABILITY=full), quick ones in `npm test`. */
export const FULL = process.env.PODNET_RELIABILITY === 'full';

/**
 * A suite's runtime, its CNI network (bridge pnrel<n>, 10.89.<n>.0/24), its native network
 * (rel-nat<n>, 10.89.<n-110>.0/24: suites 210-213 use 10.89.100-103), a namespace to join and a sandbox to share.
 */
export async function setUpSuite(
  n: number,
  ports: [number, number],
): Promise<{ suite: Suite; env: ModeEnv; rt: Runtime; ns: NetNS; netnsPrefix: string; keep: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `pnrel-${n}-`));
  const binDir = path.join(dir, 'bin');
  mkdirSync(binDir);
  // Plugin time limit: long enough for iptables on a machine shared with other suites (a hanging
  // plugin in the fault suite is cut short by its owner's kill, not by this).
  const suite: Suite = {
    dir,
    runtime: {
      stateDir: path.join(dir, 'state'),
      cni: { confDir: path.join(dir, 'net.d'), cacheDir: path.join(dir, 'cache'), binDirs: [binDir], pluginTimeoutMs: 20_000 },
      native: { networksDir: path.join(dir, 'networks'), stateDir: path.join(dir, 'native') },
    },
    network: `rel-net${n}`,
    bridge: `pnrel${n}`,
    subnetPrefix: `10.89.${n}.`,
    ports,
    extra: [],
    native: { network: `rel-nat${n}`, subnet: `10.89.${n - 110}.0/24`, subnetPrefix: `10.89.${n - 110}.`, ids: new Set() },
  };
  const rt = new Runtime(suite.runtime);
  await rt.cni.createNetwork({ name: suite.network, subnet: `10.89.${n}.0/24`, bridge: suite.bridge });
  await rt.native.create({ name: suite.native.network, subnet: suite.native.subnet });
  const ns = await NetNS.create({ name: `rel-ns${n}-${process.pid}` });
  const target = `rel-target${n}-${process.pid}`;
  await rt.createSandbox({ id: target, network: 'none' });
  let next = ports[0];
  const env: ModeEnv = {
    network: suite.network,
    nativeNetwork: suite.native.network,
    nativeIds: suite.native.ids,
    nsPath: ns.path,
    target,
    port: () => {
      const p = next;
      next = next >= ports[1] ? ports[0] : next + 1;
      return p;
    },
  };
  return { suite, env, rt, ns, netnsPrefix: rt.netnsPrefix, keep: [target] };
}

/** Undoes setUpSuite, whatever the tests left (they should have left nothing). */
export async function tearDownSuite(x: { suite: Suite; rt: Runtime; ns: NetNS } | undefined): Promise<void> {
  if (!x) return;
  for (const s of [...(await x.rt.list().catch(() => []))].reverse()) await x.rt.teardown(s.id).catch(() => {});
  await x.rt.gc().catch(() => {});
  await x.rt.cni.removeNetwork(x.suite.network, { force: true }).catch(() => {});
  await x.rt.native.remove(x.suite.native.network, { force: true }).catch(() => {});
  for (const n of [x.suite, ...x.suite.extra]) {
    if (existsSync(`/sys/class/net/${n.bridge}`)) execFileSync('ip', ['link', 'delete', n.bridge]);
    rmSync(`/var/lib/cni/networks/${n.network}`, { recursive: true, force: true });
  }
  await x.ns.remove().catch(() => {});
  rmSync(x.suite.dir, { recursive: true, force: true });
}
