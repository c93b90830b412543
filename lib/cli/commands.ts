/** The smaller `podnet` subcommands: netns, network, inspect, stats, pool, gc. */
import { bridgeOf, loadConfigDir } from '../cni/config';
import { gcNativeNetwork } from '../cniplugin/gc';
import { installCniPlugin } from '../cniplugin/install';
import { ErrorCode, PodnetError } from '../errors';
import { NativeNetworks } from '../native/networks';
import { DEFAULT_NETNS_DIR, NetNS } from '../netns';
import { checkFileName } from '../validate';
import { Runtime } from '../runtime/runtime';
import { SignalGuard } from './supervise';
import { USAGE, UsageError, parse } from './usage';

const out = (s: string) => process.stdout.write(`${s}\n`);

function help(cmd: string, values: { help?: boolean | undefined }): boolean {
  if (values.help) process.stdout.write(USAGE[cmd]);
  return Boolean(values.help);
}

export async function netnsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('netns', argv);
  if (help('netns', values)) return 0;
  const [sub, ...args] = positionals;
  switch (sub) {
    case 'add':
      if (args.length !== 1) throw new UsageError('netns', 'netns add takes one NAME');
      (await NetNS.create({ name: checkFileName('namespace name', args[0]) })).close();
      return 0;
    case 'ls':
    case 'list':
      for (const n of await NetNS.list()) out(n);
      return 0;
    case 'rm':
    case 'del':
      if (args.length === 0) throw new UsageError('netns', 'netns rm takes at least one NAME');
      for (const n of args) await NetNS.removePath(`${DEFAULT_NETNS_DIR}/${checkFileName('namespace name', n)}`);
      return 0;
    case 'exec': {
      if (args.length < 2) throw new UsageError('netns', 'netns exec takes NAME -- CMD ARGS...');
      const ns = await NetNS.open(`${DEFAULT_NETNS_DIR}/${checkFileName('namespace name', args[0])}`);
      const guard = new SignalGuard();
      try {
        return await guard.wait(ns.spawn(args[1], args.slice(2), { stdio: 'inherit' }), args[1]);
      } finally {
        guard.release();
        ns.close();
      }
    }
    default:
      throw new UsageError('netns', sub ? `unknown netns command '${sub}'` : 'missing netns command');
  }
}

export async function networkCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('network', argv, {
    subnet: { type: 'string' },
    gateway: { type: 'string' },
    bridge: { type: 'string' },
    'ipv6-subnet': { type: 'string' },
    'ipv6-gateway': { type: 'string' },
    internal: { type: 'boolean' },
    mtu: { type: 'string' },
    driver: { type: 'string' },
    'no-isolate': { type: 'boolean' },
    dir: { type: 'string' },
    'conf-dir': { type: 'string' },
    'networks-dir': { type: 'string' },
  });
  if (help('network', values)) return 0;
  const [sub, ...args] = positionals;
  const rt = new Runtime();
  switch (sub) {
    case 'ls':
    case 'list': {
      // Native networks, CNI lists, and the embedded default (native) unless one of its name exists.
      const names = new Set([
        ...rt.native.list().map((n) => n.name),
        ...(await loadConfigDir(rt.cni.confDir)).networks.map((n) => n.name),
        rt.cni.defaultNetwork,
      ]);
      for (const n of names) out(n);
      return 0;
    }
    case 'create': {
      if (args.length !== 1) throw new UsageError('network', 'network create takes one NAME');
      if (values.mtu !== undefined && !/^\d+$/.test(values.mtu as string)) throw new UsageError('network', `--mtu '${values.mtu}' is not a number`);
      // native by default; a bridge name only means something to CNI's bridge plugin
      const driver = (values.driver as string | undefined) ?? (values.bridge !== undefined ? 'cni' : 'native');
      if (driver !== 'native' && driver !== 'cni') throw new UsageError('network', `--driver '${driver}' is not native or cni`);
      if (driver === 'native') {
        if (values.bridge !== undefined) throw new UsageError('network', '--bridge is for --driver cni');
        if ((await loadConfigDir(rt.cni.confDir)).networks.some((n) => n.name === args[0])) {
          throw new PodnetError(ErrorCode.NATIVE_NETWORK_EXISTS, `network '${args[0]}' already exists (CNI)`);
        }
        await rt.native.create({
          name: args[0],
          subnet: values.subnet as string | undefined,
          gateway: values.gateway as string | undefined,
          ipv6Subnet: values['ipv6-subnet'] as string | undefined,
          ipv6Gateway: values['ipv6-gateway'] as string | undefined,
          internal: values.internal as boolean | undefined,
          isolate: values['no-isolate'] ? false : undefined,
          mtu: values.mtu === undefined ? undefined : Number(values.mtu),
        });
        out(args[0]);
        return 0;
      }
      if (rt.native.has(args[0])) throw new PodnetError(ErrorCode.CNI_NETWORK_EXISTS, `network '${args[0]}' already exists (native)`);
      await rt.cni.createNetwork({
        name: args[0],
        bridge: (values.bridge as string | undefined) ?? (await freeBridgeName(rt)),
        subnet: values.subnet as string | undefined,
        gateway: values.gateway as string | undefined,
        ipv6Subnet: values['ipv6-subnet'] as string | undefined,
        internal: values.internal as boolean | undefined,
        mtu: values.mtu === undefined ? undefined : Number(values.mtu),
      });
      out(args[0]);
      return 0;
    }
    case 'install-cni-plugin': {
      if (args.length > 1) throw new UsageError('network', 'network install-cni-plugin takes at most one NETWORK');
      const done = installCniPlugin({
        dir: values.dir as string | undefined,
        confDir: values['conf-dir'] as string | undefined,
        networksDir: values['networks-dir'] as string | undefined,
        network: args[0],
      });
      out(done.plugin);
      if (done.conflist) out(done.conflist);
      return 0;
    }
    case 'rm':
      if (args.length === 0) throw new UsageError('network', 'network rm takes at least one NAME');
      for (const n of args) await (rt.native.has(n) ? rt.native.remove(n) : rt.cni.removeNetwork(n));
      return 0;
    default:
      throw new UsageError('network', sub ? `unknown network command '${sub}'` : 'missing network command');
  }
}

/** The first podnet<N> bridge name no configured network uses (podman1, podman2... in Podman). */
async function freeBridgeName(rt: Runtime): Promise<string> {
  const used = new Set((await rt.cni.networks()).map(bridgeOf));
  for (let i = 1; ; i++) if (!used.has(`podnet${i}`)) return `podnet${i}`;
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('inspect', argv);
  if (help('inspect', values)) return 0;
  if (positionals.length !== 1) throw new UsageError('inspect', 'inspect takes one sandbox ID');
  out(JSON.stringify(await new Runtime().inspect(positionals[0]), null, 2));
  return 0;
}

export async function statsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('stats', argv, { watch: { type: 'boolean' }, interval: { type: 'string' } });
  if (help('stats', values)) return 0;
  const interval = Number(values.interval ?? 1);
  if (!(interval > 0)) throw new UsageError('stats', `--interval '${values.interval}' is not a positive number`);
  const rt = new Runtime();
  for (const id of positionals) {
    if (!(await rt.get(id))) throw new PodnetError(ErrorCode.NO_SUCH_SANDBOX, `no sandbox '${id}' in ${rt.state.dir}`);
  }
  let prev = new Map<string, { rx: number; tx: number; at: number }>();
  const fmt = (n: number) =>
    n >= 1e9 ? `${(n / 1e9).toFixed(2)}GB` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}kB` : `${n}B`;
  const draw = async () => {
    const wanted = new Set(positionals);
    const rows = (await rt.statsAll()).filter((r) => wanted.size === 0 || wanted.has(r.id));
    const now = Date.now();
    const lines = [
      `${'ID'.padEnd(28)} ${'RX'.padStart(10)} ${'TX'.padStart(10)} ${'RX/s'.padStart(10)} ${'TX/s'.padStart(10)} ${'RX PKTS'.padStart(9)} ${'TX PKTS'.padStart(9)}`,
    ];
    const next = new Map<string, { rx: number; tx: number; at: number }>();
    for (const r of rows) {
      if (!r.stats) {
        lines.push(`${r.id.padEnd(28)} ${r.error?.message ?? 'no statistics'}`);
        continue;
      }
      const links = Object.values(r.stats);
      const sum = (k: 'rxBytes' | 'txBytes' | 'rxPackets' | 'txPackets') => links.reduce((a, l) => a + l[k], 0);
      const cur = { rxBytes: sum('rxBytes'), txBytes: sum('txBytes'), rxPackets: sum('rxPackets'), txPackets: sum('txPackets') };
      const p = prev.get(r.id);
      const secs = p ? (now - p.at) / 1000 : 0;
      const rate = (cur: number, old?: number) => (p && secs > 0 && old !== undefined ? `${fmt((cur - old) / secs)}/s` : '-');
      lines.push(
        `${r.id.padEnd(28)} ${fmt(cur.rxBytes).padStart(10)} ${fmt(cur.txBytes).padStart(10)} ${rate(cur.rxBytes, p?.rx).padStart(10)} ${rate(cur.txBytes, p?.tx).padStart(10)} ${String(cur.rxPackets).padStart(9)} ${String(cur.txPackets).padStart(9)}`,
      );
      next.set(r.id, { rx: cur.rxBytes, tx: cur.txBytes, at: now });
    }
    prev = next;
    return lines.join('\n');
  };
  if (!values.watch) {
    out(await draw());
    return 0;
  }
  let stop = false;
  const onSig = () => (stop = true);
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  while (!stop) {
    const table = await draw();
    process.stdout.write(`\x1b[H\x1b[2J${table}\n`);
    await new Promise((r) => setTimeout(r, interval * 1000));
  }
  return 0;
}

/** The pools of warm sandboxes of every process sharing the state dir (each process publishes its own). */
export async function poolCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('pool', argv, { json: { type: 'boolean' } });
  if (help('pool', values)) return 0;
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== 'ls'))
    throw new UsageError('pool', `unknown pool command '${positionals.join(' ')}'`);
  const all = await new Runtime().listPools();
  if (values.json) {
    out(JSON.stringify(all, null, 2));
    return 0;
  }
  out(
    `${'PID'.padEnd(8)} ${'NETWORK'.padEnd(20)} ${'SIZE'.padStart(5)} ${'FILL'.padStart(5)} ${'MAKING'.padStart(6)} ${'HITS'.padStart(8)} ${'MISSES'.padStart(8)}  STATUS`,
  );
  for (const p of all) {
    for (const s of p.pools) {
      const status = !p.ownerAlive ? 'owner gone (podnet gc)' : s.lastError ? `refill failing: ${s.lastError}` : 'ok';
      out(
        `${String(p.owner.pid).padEnd(8)} ${s.network.padEnd(20)} ${String(s.size).padStart(5)} ${String(s.fill).padStart(5)} ${String(s.making).padStart(6)} ${String(s.hits).padStart(8)} ${String(s.misses).padStart(8)}  ${status}`,
      );
    }
  }
  return 0;
}

export async function gcCommand(argv: string[]): Promise<number> {
  const { values } = parse('gc', argv, { 'networks-dir': { type: 'string' }, 'state-dir': { type: 'string' } });
  if (help('gc', values)) return 0;
  const removed = await new Runtime().gc();
  for (const id of removed.sandboxes) out(`removed sandbox ${id}`);
  for (const a of removed.cniAttachments) out(`removed CNI attachment ${a}`);
  for (const p of removed.namespaces) out(`removed namespace ${p}`);
  for (const pid of removed.pools) out(`removed pool status of process ${pid}`);
  // Native networks: what containers attached through the CNI plugin hold once their namespace is gone.
  const nets = new NativeNetworks({ networksDir: values['networks-dir'] as string | undefined, stateDir: values['state-dir'] as string | undefined });
  for (const n of nets.list()) {
    for (const o of (await gcNativeNetwork(nets, n.name)).released) out(`released ${n.name}/${o.containerId}/${o.ifname}`);
  }
  return 0;
}
