/**
 * The runtime: a sandbox's whole network life from one call, as Podman's
 * libpod/networking_linux.go gives a container its network, with state on
 * disk that outlives this process. It owns the lifecycle (state, lock,
 * namespace, rollback, gc); a network driver per mode (lib/drivers) gives the
 * namespace its network.
 *
 * Modes: bridge (CNI; the default for root), slirp4netns (the default for
 * unprivileged callers), pasta (as rootless Podman 5), none (loopback only), host, ns:<path> (join an
 * existing namespace), container:<id> (share another sandbox's namespace).
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { CniRuntime, type CniRuntimeOptions } from '../cni/runtime';
import { debug } from '../debug';
import { Drivers, type DriverCall, type LiveHandles, type LiveHelper, type NetworkDriver } from '../drivers';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { toNetworkSettings, resolveNetnsPath, type NetworkSettings } from '../inspect';
import { DEFAULT_NETNS_DIR, NetNS } from '../netns';
import { native, type NativeEngineConfig } from '../addon';
import { NativeNetworks } from '../native/networks';
import { sweepPastaTemp } from '../pasta';
import { linkStats, linkStatsMany, releaseStats, type LinkStatsByName } from '../stats';
import { checkPortMappings, toPortMappings } from '../ports';
import type { PortMapping } from '../types';
import { describeExit, type HelperExit } from '../spawn';
import { checkPid } from '../validate';
import { spawnIn } from './spawn-in-sandbox';
import { isRoot, defaultStateDir, checkId, parseMode } from './options';
import { WarmPool, checkPoolOptions, type PoolBackend, type PoolOptions, type PoolStatus, type WarmEntry } from './pool';
import { nativePoolBackend, notNative, poolEntryOwner } from './pool-native';
import { PoolStatusFile, readPoolStatus, removePoolStatus, type ProcessPools } from './pool-status';
import { isAlive, procRef, selfRef } from './proc';
import { makeSandboxNetns, removeSandboxNetns } from './sandbox-netns';
import { StateStore, type HelperExitNote, type HelperName, type NetworkMode, type SandboxState } from './state';

export interface RuntimeOptions {
  /** Default /run/podnet, or $XDG_RUNTIME_DIR/podnet for an unprivileged caller. */
  stateDir?: string;
  /** Options of the CNI runtime used for bridge networks. */
  cni?: CniRuntimeOptions;
  /** slirp4netns binary; default: from PATH. */
  slirpBinary?: string;
  /** pasta binary; default: from PATH. */
  pastaBinary?: string;
  /** Where sandbox namespaces are bind-mounted; default /run/netns. */
  netnsDir?: string;
  /** Pools of warm sandboxes to start at once (see startPool). */
  pools?: PoolOptions[];
  /** Native networks: definitions directory (default /etc/podnet/networks) and IPAM state (default /var/lib/podnet). */
  native?: Partial<NativeEngineConfig>;
}

export interface CreateSandboxOptions {
  id: string;
  name?: string;
  /** The pod this sandbox belongs to: CNI sees the pod's name. */
  podId?: string;
  podName?: string;
  /** Network mode; default bridge for root, slirp4netns otherwise ('bridge' when `networks` is given). */
  network?: NetworkMode;
  /** CNI networks (bridge mode); default: the CNI runtime's default network. */
  networks?: string[];
  portMappings?: PortMapping[];
  staticIP?: string;
  staticMAC?: string;
  /** Used for this start only (e.g. a restore), then the static ones apply again. */
  requestedIP?: string;
  requestedMAC?: string;
  /** slirp4netns options as Podman takes them (`port_handler=...`, `mtu=...`); for pasta, its own arguments (`['--mtu', '1500']`). */
  networkOptions?: string[];
  /** Post-configure mode: attach networking to this process's own namespace. */
  pid?: number;
  /** Lives only as long as the calling process (podnet run): gc collects it once this process is gone. */
  ephemeral?: boolean;
}

export interface SandboxInfo {
  id: string;
  name: string;
  mode: NetworkMode;
  netnsPath?: string;
  status: SandboxState['status'];
  ownerAlive: boolean;
  /** Helpers that died unasked (see the 'helperExit' event); absent while all run. */
  helperExits?: HelperExitNote[];
}

/** Network modes by name: a pool of one of these names serves that mode, any other name a native network. */
const MODE_NAMES = new Set(['bridge', 'slirp4netns', 'pasta', 'none', 'host']);

/** A helper of a sandbox (pasta, slirp4netns, the port forwarder, the user-namespace holder) exited without being stopped. */
export interface HelperExitEvent {
  sandboxId: string;
  helper: HelperName;
  /** ERR_HELPER_EXITED; `details` has pid, code, signal and output. */
  error: PodnetError;
}

/** The runtime's events (Node's EventEmitter). */
export interface RuntimeEvents {
  helperExit: [HelperExitEvent];
}

/** What a helper is, in messages. */
const HELPER_LABEL: Record<HelperName, string> = {
  pasta: 'pasta',
  slirp: 'slirp4netns',
  forwarder: 'port forwarder (podnet-portfwd)',
  holder: 'user namespace holder',
};

/** The last lines a helper wrote, for a message (all of it goes in `details.output`). */
function lastOutput(out: string, lines = 3): string {
  return out.trim().split('\n').filter(Boolean).slice(-lines).join('; ');
}

/**
 * Emits 'helperExit' when a helper this process started for a sandbox dies
 * while the sandbox is up (a stop by teardown does not count): the sandbox's
 * network is broken from then on, and its state says so (`helperExits`) until
 * it is torn down. Podman 2.x only noticed a dead slirp4netns at its next 1 s
 * poll (libpod/networking_linux.go, the waitForSync FIXME); here the pidfd
 * says so at once.
 */
export class Runtime extends EventEmitter<RuntimeEvents> {
  readonly state: StateStore;
  readonly cni: CniRuntime;
  readonly native: NativeNetworks;
  readonly #opts: RuntimeOptions;
  readonly #drivers: Drivers;
  readonly #live = new Map<string, LiveHandles>();
  readonly #pools = new Map<string, WarmPool>();
  readonly #poolStatus: PoolStatusFile;

  constructor(opts: RuntimeOptions = {}) {
    super();
    this.#opts = opts;
    this.state = new StateStore(opts.stateDir ?? defaultStateDir());
    this.cni = new CniRuntime(opts.cni ?? {});
    this.native = new NativeNetworks(opts.native);
    this.#drivers = new Drivers({
      cni: this.cni,
      native: this.native,
      nativeIdPrefix: this.netnsPrefix,
      slirpBinary: opts.slirpBinary,
      pastaBinary: opts.pastaBinary,
      pastaTmpDir: path.join(this.state.dir, 'tmp'),
    });
    this.#poolStatus = new PoolStatusFile(this.state.dir, () => this.poolStatus());
    for (const p of opts.pools ?? []) this.startPool(p);
  }

  /**
   * Starts a pool of warm sandboxes (or resizes the one it has) for a network
   * mode ('none') or a native network (by name; the default network is
   * native unless a CNI list has its name): `size` entries are made in the
   * background, and `createSandbox` for that mode, or on that one network,
   * takes one when it can (no `pid`, no static address or MAC), else makes its
   * sandbox as usual. A native entry comes with its attachment made (no
   * ports): the create publishes only its ports. Root only (entries become
   * bind mounts).
   */
  startPool(opts: PoolOptions): PoolStatus {
    const o = checkPoolOptions(opts);
    const isMode = MODE_NAMES.has(o.network);
    if (isMode) {
      const mode = parseMode(o.network);
      if (!this.#drivers.forMode(mode).poolable)
        throw invalidArgument('pool network', `network mode '${mode}' has no pool (pools serve: none, native networks)`);
    } else {
      checkId('pool network', o.network);
      if (o.network !== this.cni.defaultNetwork && !this.native.has(o.network)) {
        throw invalidArgument('pool network', `no native network '${o.network}' (pools serve: none, native networks)`);
      }
    }
    if (!isRoot()) throw new PodnetError(ErrorCode.NOT_ROOT, `pool '${o.network}': warm sandboxes need root`);
    const existing = this.#pools.get(o.network);
    if (existing) {
      existing.resize(o.size, o.concurrency);
      return existing.status();
    }
    const backend: PoolBackend = isMode
      ? { make: async () => ({ ns: await native.netnsUnshare() }), discard: (e) => native.closeFd(e.ns.fd) }
      : nativePoolBackend(this.native, o.network, this.netnsPrefix, async () => {
          if ((await this.#drivers.bridge.kindOf(o.network)) !== 'native') throw notNative(o.network);
          if (o.network === this.cni.defaultNetwork) await this.native.ensureDefault(o.network);
        });
    const pool = new WarmPool(o, backend, () => this.#poolStatus.changed());
    this.#pools.set(o.network, pool);
    this.#poolStatus.changed();
    return pool.status();
  }

  /** Changes a pool's size; extra entries are released at once. */
  resizePool(network: string, size: number): PoolStatus {
    const pool = this.#pool(network);
    pool.resize(checkPoolOptions({ network, size }).size);
    return pool.status();
  }

  /**
   * Removes a pool (every pool without an argument): its entries are taken
   * out at once; resolves once they are released (a native entry's
   * attachment detached).
   */
  async drainPool(network?: string): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const pool of network === undefined ? [...this.#pools.values()] : [this.#pool(network)]) {
      closing.push(pool.close());
      this.#pools.delete(pool.network);
    }
    this.#poolStatus.changed();
    await Promise.all(closing);
  }

  /** Resolves once every pool of this process is full (or cannot fill: see its lastError). */
  async poolsReady(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.whenFull()));
  }

  /** This process's pools: size, fill, entries being made, hits and misses. */
  poolStatus(): PoolStatus[] {
    return [...this.#pools.values()].map((p) => p.status());
  }

  /** The pools of every process sharing this state dir, as each last published them (at most ~0.1 s old). */
  async listPools(): Promise<ProcessPools[]> {
    return readPoolStatus(this.state.dir);
  }

  #pool(network: string): WarmPool {
    const pool = this.#pools.get(network);
    if (!pool) throw new PodnetError(ErrorCode.NO_SUCH_POOL, `no pool for network '${network}' in this process`);
    return pool;
  }

  /** Creates a sandbox and its network; on failure everything made so far is undone. */
  async createSandbox(opts: CreateSandboxOptions): Promise<SandboxState> {
    const id = checkId('sandbox id', opts.id);
    const name = checkId('sandbox name', opts.name ?? id);
    const mode = parseMode(opts.network, opts.networks);
    const driver = this.#drivers.forMode(mode);
    if (opts.pid !== undefined) {
      checkPid('pid', opts.pid);
      if (driver.namespace !== 'own') throw invalidArgument('pid', `post-configure mode needs a network mode that makes a namespace, not '${mode}'`);
      if (!existsSync(`/proc/${opts.pid}/ns/net`))
        throw new PodnetError('ESRCH', `post-configure mode: no process ${opts.pid}`, { details: { pid: opts.pid } });
    }
    if (!driver.unprivileged && !isRoot()) {
      throw new PodnetError(ErrorCode.NOT_ROOT, `sandbox '${id}': ${driver.name} networking needs root; use network 'slirp4netns'`);
    }
    for (const k of ['staticIP', 'staticMAC', 'requestedIP', 'requestedMAC'] as const) {
      if (opts[k] !== undefined && !driver.accepts.staticAddress) throw invalidArgument(k, `network mode '${mode}' has no network to give it to`);
    }
    const portMappings = toPortMappings(checkPortMappings(opts.portMappings));
    if (portMappings.length && !driver.accepts.portMappings) throw invalidArgument('portMappings', `network mode '${mode}' cannot publish ports`);
    if (opts.networkOptions !== undefined && !driver.accepts.networkOptions) {
      throw invalidArgument('networkOptions', `network mode '${mode}' takes no network options (they are slirp4netns's)`);
    }
    if (opts.podName !== undefined) checkId('pod name', opts.podName);
    // A warm namespace fits when nothing about the namespace itself is asked for.
    const fits = opts.pid === undefined && !opts.staticIP && !opts.staticMAC && !opts.requestedIP && !opts.requestedMAC;
    const state: SandboxState = {
      version: 1,
      id,
      name,
      podId: opts.podId,
      cniPodName: opts.podName ?? (opts.podId ? checkId('pod id', opts.podId) : name),
      mode,
      status: 'creating',
      ownsNetns: false,
      networks: opts.networks ?? [],
      portMappings,
      staticIP: opts.staticIP,
      staticMAC: opts.staticMAC,
      networkOptions: opts.networkOptions ?? [],
      results: [],
      owner: selfRef(),
      ...(opts.ephemeral ? { ephemeral: true } : {}),
      helpers: {},
      createdAt: new Date().toISOString(),
    };
    const requested = { ip: opts.requestedIP ?? opts.staticIP, mac: opts.requestedMAC ?? opts.staticMAC };
    await driver.validate(state, requested);
    const pool = fits ? this.#poolFor(state) : undefined;
    const warm = pool?.take();
    if (warm) return this.#createWarm(state, driver, pool!, warm);
    // The exclusive create of the state claims the id; joining needs the lock (teardown checks joiners under it).
    if (!mode.startsWith('container:')) await this.state.create(state);
    else {
      await this.state.locked(async () => {
        state.joins = mode.slice('container:'.length);
        const target = await this.#get(state.joins);
        if (target.status !== 'ready') throw new PodnetError('EBUSY', `sandbox '${state.joins}' is ${target.status}, not ready to be joined`);
        const owner = await this.#get(await this.#ownerOf(target));
        if (!owner.netnsPath) throw new PodnetError(ErrorCode.NO_NETNS, `sandbox '${owner.id}' has no network namespace (mode ${owner.mode})`);
        state.netnsOwner = owner.id;
        state.netnsPath = owner.netnsPath;
        state.usernsPath = owner.usernsPath;
        await this.state.markJoiner(state.joins, id);
        await this.state.create(state);
      });
    }
    const live = this.#newLive(state);
    const call = this.#call(state, live, requested);
    try {
      if (driver.namespace === 'own') await makeSandboxNetns(call, { dir: this.#opts.netnsDir, name: `${this.netnsPrefix}${id}`, pid: opts.pid });
      await driver.setUp(call);
      state.status = 'ready';
      await this.state.write(state);
      return state;
    } catch (err) {
      await this.#undoCreate(call);
      throw err;
    }
  }

  /** The pool a validated sandbox can come from: its mode's ('none'), or its one native network's. */
  #poolFor(state: SandboxState): WarmPool | undefined {
    if (state.mode !== 'bridge') return MODE_NAMES.has(state.mode) ? this.#pools.get(state.mode) : undefined;
    if (state.driver !== 'native') return undefined;
    const nets = this.#drivers.native.networksOf(state);
    // A pool named like a mode ('none') is that mode's, never a native network's.
    return nets.length === 1 && !MODE_NAMES.has(nets[0]) ? this.#pools.get(nets[0]) : undefined;
  }

  /**
   * A create from a warm entry: the state is written once (the exclusive
   * create claims the id, no lock) naming the namespace's path, then the
   * namespace is bind-mounted at that path, where a cold create puts it, and
   * the driver adds what is the request's own. With nothing to add (none) the
   * state is 'ready' at once: a crash before the bind mount leaves a state
   * whose namespace does not exist and whose owner is dead, which gc removes;
   * the warm namespace itself dies with the process. A native entry's
   * attachment outlives it, so that state is 'creating' until the ports are
   * published and records the attachment's id: gc tears it down like any
   * half-made sandbox.
   */
  async #createWarm(state: SandboxState, driver: NetworkDriver, pool: WarmPool, warm: WarmEntry): Promise<SandboxState> {
    const name = `${this.netnsPrefix}${state.id}`;
    Object.assign(state, { status: warm.attachment ? 'creating' : 'ready', ownsNetns: true, netnsPath: path.join(this.#netnsDir, name) });
    if (warm.attachment) state.nativeContainerId = warm.attachment.containerId;
    try {
      await this.state.create(state);
    } catch (err) {
      pool.giveBack(warm); // untouched: the id was taken
      throw err;
    }
    const live = this.#newLive(state);
    const call = this.#call(state, live, {});
    try {
      try {
        live.netns = NetNS.adopt(warm.ns, { dir: this.#netnsDir, name });
      } catch (err) {
        native.closeFd(warm.ns.fd);
        state.ownsNetns = false; // whatever is at that path (EEXIST) is not this sandbox's
        throw err;
      }
      if (warm.attachment) {
        await driver.setUpWarm!(call, warm.attachment);
        state.status = 'ready';
        await this.state.write(state);
      } else await driver.setUp(call);
      return state;
    } catch (err) {
      await this.#undoCreate(call);
      throw err;
    }
  }

  /** A create failed half-way: undo what was made and remove the state, or keep it 'removing' for teardown/gc. */
  async #undoCreate(call: DriverCall): Promise<void> {
    const { state } = call;
    this.#live.delete(state.id);
    try {
      await this.#tearDown(call);
      await this.state.remove(state.id, state.joins);
    } catch (undo) {
      // Keep the state (now 'removing', owner this process) so teardown() or gc() can finish the job.
      state.status = 'removing';
      await this.state.write(state).catch(() => {});
      debug('sandbox %s: rollback failed, state kept: %s', state.id, (undo as Error).message);
    }
  }

  /** Post-configure mode: networking for a process that made its own namespace (Podman 2.x's setupNetNS). */
  async attachToPid(pid: number, opts: Omit<CreateSandboxOptions, 'pid'>): Promise<SandboxState> {
    return this.createSandbox({ ...opts, pid });
  }

  /**
   * Restarts a sandbox's CNI networks, using `requested` IP/MAC for this start
   * only; later restarts get the configured static ones again.
   */
  async restartNetwork(id: string, requested: { ip?: string; mac?: string } = {}): Promise<SandboxState> {
    // Under the lock for the whole restart: a teardown or gc meanwhile would race the re-added network
    // and this process's state write would bring a removed sandbox back.
    return this.state.locked(async () => {
      const state = await this.#get(id);
      const driver = this.#drivers.forMode(state.mode);
      if (!driver.restart) throw invalidArgument('sandbox', `'${id}' has no network to restart (mode ${state.mode})`);
      if (state.status !== 'ready') throw new PodnetError('EBUSY', `sandbox '${id}' is ${state.status}`);
      const live = this.#live.get(id) ?? { helpers: new Map() };
      await driver.restart(this.#call(state, live, { ip: requested.ip ?? state.staticIP, mac: requested.mac ?? state.staticMAC }));
      await this.state.write(state);
      return state;
    });
  }

  async get(id: string): Promise<SandboxState | undefined> {
    return this.state.read(id);
  }

  async list(): Promise<SandboxInfo[]> {
    return (await this.state.list()).map((s) => ({
      id: s.id,
      name: s.name,
      mode: s.mode,
      netnsPath: s.netnsPath,
      status: s.status,
      ownerAlive: isAlive(s.owner),
      ...(s.helperExits ? { helperExits: s.helperExits } : {}),
    }));
  }

  /** Docker/Podman-compatible NetworkSettings of a sandbox. */
  async inspect(id: string): Promise<NetworkSettings> {
    const state = await this.#get(id);
    const owner = await this.#owner(state);
    return toNetworkSettings({
      netnsPath: owner.netnsPath ?? '',
      portMappings: owner.portMappings,
      networks: owner.networks,
      results: owner.results.map((r) => r.result),
    });
  }

  /** Starts a process inside a sandbox's namespaces. */
  async spawn(id: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): Promise<ChildProcess> {
    return spawnIn(await this.#get(id), cmd, args, opts); // a joiner carries its owner's namespace paths
  }

  /** Link statistics of every non-loopback interface, keyed by name; null for 'none' and 'host'. */
  async stats(id: string): Promise<LinkStatsByName | null> {
    const state = await this.#get(id);
    const owner = await this.#owner(state);
    if (owner.mode === 'none' || owner.mode === 'host' || !owner.netnsPath) return null;
    return linkStats(owner.netnsPath);
  }

  /** Statistics of every sandbox with a namespace of its own (all interfaces by name), in one native call. */
  async statsAll(): Promise<{ id: string; stats?: LinkStatsByName; error?: PodnetError }[]> {
    const states = (await this.state.list()).filter((s) => s.status === 'ready' && s.netnsPath && !s.joins && s.mode !== 'none' && s.mode !== 'host');
    const got = await linkStatsMany(states.map((s) => ({ netnsPath: s.netnsPath! })));
    return states.map((s, i) => {
      const g = got[i];
      return g.error ? { id: s.id, error: g.error } : { id: s.id, stats: (g.stats ?? {}) as LinkStatsByName };
    });
  }

  /**
   * Tears a sandbox down: CNI DEL (with the pod name used at set-up), stops
   * the forwarder and slirp4netns, unmounts the namespace, removes the state.
   * Goes on past errors and reports them together; a missing sandbox is a no-op.
   * With `force` (as `podman rm -f`), a step that fails (a plugin gone from the
   * host, one that keeps failing) does not keep the sandbox: namespace, helpers
   * and state go, and what could not be undone is returned.
   */
  async teardown(id: string, opts: { force?: boolean } = {}): Promise<{ notUndone: PodnetError[] }> {
    checkId('sandbox id', id);
    const state = await this.state.locked(async () => {
      const s = await this.state.read(id);
      if (!s) return undefined;
      if (s.status === 'creating' && isAlive(s.owner)) throw new PodnetError('EBUSY', `sandbox '${id}' is still being created by process ${s.owner.pid}`);
      if (s.status === 'removing' && s.remover && s.remover.pid !== process.pid && isAlive(s.remover)) {
        throw new PodnetError('EBUSY', `sandbox '${id}' is being torn down by process ${s.remover.pid}`);
      }
      const joiners = await this.state.joinersOf(id);
      if (joiners.length) throw new PodnetError('EBUSY', `sandbox '${id}' shares its namespace with ${joiners.join(', ')}: tear those down first`);
      s.status = 'removing';
      s.remover = procRef(process.pid);
      await this.state.write(s);
      return s;
    });
    const notUndone: PodnetError[] = [];
    if (!state) return { notUndone };
    const live = this.#live.get(id) ?? { helpers: new Map() };
    this.#live.delete(id);
    try {
      await this.#tearDown(this.#call(state, live, {}, opts.force ? { notUndone } : undefined));
    } catch (err) {
      if (!opts.force) throw err;
      notUndone.push(err instanceof PodnetError ? err : new PodnetError(ErrorCode.TEARDOWN, String(err), { cause: err }));
    }
    await this.state.remove(id, state.joins);
    return { notUndone };
  }

  /**
   * Releases what this process holds: for one sandbox, its namespace handle
   * (the sandbox stays); without an id, every pool (their warm namespaces
   * are freed) and every sandbox's handle. Sandboxes stay either way.
   */
  async close(id?: string): Promise<void> {
    if (id === undefined) {
      const draining = this.drainPool();
      for (const sid of this.#live.keys()) void this.close(sid);
      this.#poolStatus.close();
      return draining;
    }
    const live = this.#live.get(id);
    if (!live) return;
    live.netns?.close();
    live.netns = undefined;
    live.onHelperExit = undefined; // released: a helper ending from now on (with this process) is not reported
  }

  /**
   * Cleans what crashed owners left, in this state dir only: half-made
   * sandboxes (creating or removing, owner dead), ephemeral ones whose owner
   * died (podnet run killed), sandboxes whose helpers died (their network is
   * gone), then namespaces and CNI attachments named for this state dir that
   * no state claims (DEL from the cache releases leases and rules). Each
   * candidate is checked again under the store lock, so a sandbox being
   * created meanwhile is never touched. Errors are collected per item.
   */
  async gc(): Promise<{ sandboxes: string[]; namespaces: string[]; cniAttachments: string[]; pools: number[]; nativeReleased: number; errors: PodnetError[] }> {
    const removed = {
      sandboxes: [] as string[],
      namespaces: [] as string[],
      cniAttachments: [] as string[],
      pools: [] as number[],
      nativeReleased: 0,
      errors: [] as PodnetError[],
    };
    const attempt = async (fn: () => Promise<unknown>, done: () => void) => {
      try {
        await fn();
        done();
      } catch (err) {
        removed.errors.push(err instanceof PodnetError ? err : new PodnetError(ErrorCode.GC, String(err), { cause: err }));
      }
    };
    await this.state.sweepTemp();
    this.cni.sweepTemp();
    sweepPastaTemp(path.join(this.state.dir, 'tmp'));
    for (const s of await this.state.list()) {
      const busy = (s.status === 'removing' && isAlive(s.remover)) || (s.status === 'creating' && isAlive(s.owner));
      const orphaned = !busy && (s.status !== 'ready' || (s.ephemeral === true && !isAlive(s.owner)));
      const helpersDied = s.status === 'ready' && Object.values(s.helpers).some((h) => h && !isAlive(h));
      // A create from a warm namespace writes 'ready' before the bind mount: its owner died in between.
      const netnsNeverMounted = s.status === 'ready' && s.ownsNetns && s.netnsPath !== undefined && !isAlive(s.owner) && !existsSync(s.netnsPath);
      if (orphaned || helpersDied || netnsNeverMounted)
        await attempt(
          () => this.teardown(s.id),
          () => removed.sandboxes.push(s.id),
        );
    }
    // Runs `fn` only if no state claims `id`, under the lock; resolves whether it ran.
    const unclaimed = (id: string, fn: () => Promise<void>) =>
      this.state.locked(async () => {
        if (await this.state.read(id)) return false;
        await fn();
        return true;
      });
    for (const a of await this.cni.cachedAttachments()) {
      // Another runtime's entries (podman's libcni writes none with a netns path) are not ours.
      if (typeof a.netnsPath !== 'string' || this.#idOfNetns(a.netnsPath) !== a.id) continue;
      let ran = false;
      await attempt(
        async () =>
          (ran = await unclaimed(a.id, async () => void (await this.cni.tearDownPod({ id: a.id, networks: [{ name: a.network, ifname: a.ifname }] })))),
        () => ran && removed.cniAttachments.push(`${a.network}/${a.id}/${a.ifname}`),
      );
    }
    // Native attachments of this state dir's sandboxes that no state claims (an owner killed mid-setup),
    // and those of pool entries whose process is gone (a live process's entries stay, even half-made).
    // Native networks are root's: an unprivileged caller has none, and cannot read their IPAM state.
    if (isRoot())
      await attempt(
        () =>
          this.state.locked(async () => {
            const live = (await this.state.list()).flatMap((s) =>
              this.#drivers.native.networksOf(s).map((_, i) => ({ containerId: this.#drivers.native.containerId(s), ifname: `eth${i}` })),
            );
            for (const n of this.native.list()) {
              const pooled = (await this.native.owners(n.name)).filter((o) => isAlive(poolEntryOwner(o.containerId, this.netnsPrefix)));
              const r = await this.native.gc(n.name, [...live, ...pooled], this.netnsPrefix);
              removed.nativeReleased += r.leases + r.elements + r.links;
            }
          }),
        () => {},
      );
    for (const name of await NetNS.list(this.#netnsDir)) {
      const p = path.join(this.#netnsDir, name);
      const id = this.#idOfNetns(p);
      if (id === undefined) continue;
      let ran = false;
      await attempt(
        async () => (ran = await unclaimed(id, () => NetNS.removePath(p))),
        () => ran && removed.namespaces.push(p),
      );
    }
    // A dead process's pool: its warm namespaces went with it (fds); its published status goes now.
    for (const p of await this.listPools()) {
      if (!p.ownerAlive)
        await attempt(
          () => removePoolStatus(this.state.dir, p),
          () => removed.pools.push(p.owner.pid),
        );
    }
    return removed;
  }

  /** This state dir's namespace prefix: `podnet-<8 hex of the state dir>-`, so gc never touches another runtime's. */
  get netnsPrefix(): string {
    return `podnet-${createHash('sha256').update(path.resolve(this.state.dir)).digest('hex').slice(0, 8)}-`;
  }

  /** The sandbox id a namespace path of this runtime names, or undefined. */
  #idOfNetns(p: string): string | undefined {
    const base = path.basename(p);
    return path.dirname(p) === this.#netnsDir && base.startsWith(this.netnsPrefix) ? base.slice(this.netnsPrefix.length) : undefined;
  }

  get #netnsDir(): string {
    return this.#opts.netnsDir ?? DEFAULT_NETNS_DIR;
  }

  /** This process's handles of a new sandbox, with its helpers' deaths reported. */
  #newLive(state: SandboxState): LiveHandles {
    const live: LiveHandles = { helpers: new Map(), onHelperExit: (name, helper, exit) => void this.#helperExited(state, name, helper, exit) };
    this.#live.set(state.id, live);
    return live;
  }

  /**
   * A helper died unasked: tell the listeners, and note it in the sandbox's
   * state. Not when the state says the sandbox is going (a teardown by another
   * process stopped it: it writes 'removing' before it signals) or is gone.
   * The event does not wait for the store lock, which another process may
   * hold for a while (gc's CNI DEL runs under it).
   */
  async #helperExited(created: SandboxState, name: HelperName, helper: LiveHelper, exit: HelperExit): Promise<void> {
    const sandboxId = created.id;
    const output = helper.output().trim();
    const out = lastOutput(output);
    const error = new PodnetError(
      ErrorCode.HELPER_EXITED,
      `sandbox '${sandboxId}': ${HELPER_LABEL[name]} (pid ${helper.pid}) ${describeExit(exit)} while the sandbox was up; ${out ? `its last output: ${out}` : 'it wrote nothing'}`,
      { details: { sandboxId, helper: name, pid: helper.pid, code: exit.code, signal: exit.signal, output } },
    );
    const note: HelperExitNote = { helper: name, pid: helper.pid, code: exit.code, signal: exit.signal, at: new Date().toISOString(), message: error.message };
    if (created.status === 'creating') created.helperExits = [...(created.helperExits ?? []), note]; // the create's own last write keeps it
    const going = (s: SandboxState | undefined) => !s || s.status === 'removing';
    if (going(await this.state.read(sandboxId).catch(() => created))) return;
    debug('%s', error.message);
    const noted = this.state
      .locked(async () => {
        const s = await this.state.read(sandboxId);
        if (going(s) || s!.helpers[name]?.pid !== helper.pid) return; // torn down meanwhile, or not on disk yet (noted above)
        s!.helperExits = [...(s!.helperExits ?? []), note];
        await this.state.write(s!);
      })
      .catch((err: Error) => debug('sandbox %s: cannot note that %s exited: %s', sandboxId, name, err.message));
    this.emit('helperExit', { sandboxId, helper: name, error }); // the note's lock is queued first: a listener's own state change comes after it
    await noted;
  }

  #call(state: SandboxState, live: LiveHandles, requested: DriverCall['requested'], forced?: DriverCall['forced']): DriverCall {
    return { state, live, requested, save: () => this.state.write(state), ...(forced ? { forced } : {}) };
  }

  /**
   * Undoes a sandbox's network in the reverse order of set-up: the driver's
   * part (CNI DEL, helpers), statistics handles, then the namespace. Goes on
   * past errors and reports them together.
   */
  async #tearDown(call: DriverCall): Promise<void> {
    const { state } = call;
    const driver: NetworkDriver = this.#drivers.forMode(state.mode);
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    await step(() => driver.tearDown(call));
    if (state.netnsPath && !state.joins) await step(() => releaseStats(state.netnsPath!));
    await step(() => removeSandboxNetns(call));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new PodnetError(
        ErrorCode.TEARDOWN,
        `sandbox '${state.id}': ${errors.length} teardown steps failed: ${errors.map((e) => (e as Error).message).join('; ')}`,
        { details: { errors } },
      );
    }
  }

  async #get(id: string): Promise<SandboxState> {
    const s = await this.state.read(checkId('sandbox id', id));
    if (!s) throw new PodnetError(ErrorCode.NO_SUCH_SANDBOX, `no sandbox '${id}' in ${this.state.dir}`);
    return s;
  }

  /** The sandbox that owns the namespace `state` uses (through container:<id> chains; a cycle is an error). */
  async #ownerOf(state: SandboxState): Promise<string> {
    const states = new Map((await this.state.list()).map((s) => [s.id, s]));
    states.set(state.id, state);
    let owner = state.id;
    resolveNetnsPath(state.id, (sid: string) => {
      const s = states.get(sid);
      if (s) owner = sid;
      return s && { netnsPath: s.joins ? null : (s.netnsPath ?? null), netnsContainer: s.joins };
    });
    return owner;
  }

  /** The sandbox whose namespace `state` uses: itself, or the owner at the end of its container:<id> chain. */
  async #owner(state: SandboxState): Promise<SandboxState> {
    return state.netnsOwner ? this.#get(state.netnsOwner) : state;
  }
}
