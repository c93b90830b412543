/**
 * The runtime: a sandbox's whole network life from one call (the seed's
 * Runtime methods over namespaces, CNI, slirp4netns, the port forwarder,
 * inspect and stats), with state on disk that outlives this process.
 *
 * Modes: bridge (CNI; the default for root), slirp4netns (the default for
 * unprivileged callers), none (loopback only), host, ns:<path> (join an
 * existing namespace), container:<id> (share another sandbox's namespace).
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';

import { CniRuntime, type CniRuntimeOptions } from '../cni/runtime';
import type { PortMapping } from '../cni/types';
import { debug } from '../debug';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { toNetworkSettings, resolveNetnsPath, type NetworkSettings } from '../inspect';
import { DEFAULT_NETNS_DIR, NetNS } from '../netns';
import { linkStats, linkStatsMany, releaseStats, type LinkStatsByName } from '../stats';
import { checkPortMappings, resolveHostPorts, toPortMappings } from '../ports';
import { checkPid } from '../validate';
import { spawnIn } from './exec';
import { isRoot, defaultStateDir, checkId, parseMode } from './options';
import { isAlive, procRef, signalIfAlive } from './proc';
import { startRootless, type RootlessHandles } from './rootless';
import { StateStore, type NetworkMode, type SandboxState } from './state';

export interface RuntimeOptions {
  /** Default /run/podnet, or $XDG_RUNTIME_DIR/podnet for an unprivileged caller. */
  stateDir?: string;
  /** Options of the CNI runtime used for bridge networks. */
  cni?: CniRuntimeOptions;
  /** slirp4netns binary; default: from PATH. */
  slirpBinary?: string;
  /** Where sandbox namespaces are bind-mounted; default /run/netns. */
  netnsDir?: string;
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
  /** slirp4netns options as Podman takes them (`port_handler=...`, `mtu=...`). */
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
}

/** Handles this process holds for a sandbox; state on disk covers the rest. */
interface Live {
  netns?: NetNS;
  rootless?: RootlessHandles;
}

export class Runtime {
  readonly state: StateStore;
  readonly cni: CniRuntime;
  readonly #opts: RuntimeOptions;
  readonly #live = new Map<string, Live>();

  constructor(opts: RuntimeOptions = {}) {
    this.#opts = opts;
    this.state = new StateStore(opts.stateDir ?? defaultStateDir());
    this.cni = new CniRuntime(opts.cni ?? {});
  }

  /** Creates a sandbox and its network; on failure everything made so far is undone. */
  async createSandbox(opts: CreateSandboxOptions): Promise<SandboxState> {
    const id = checkId('sandbox id', opts.id);
    const name = checkId('sandbox name', opts.name ?? id);
    const mode = parseMode(opts.network, opts.networks);
    const own = mode === 'bridge' || mode === 'slirp4netns' || mode === 'none'; // modes that make the namespace
    if (opts.pid !== undefined) {
      checkPid('pid', opts.pid);
      if (!own) throw invalidArgument('pid', `post-configure mode needs network mode bridge, slirp4netns or none, not '${mode}'`);
    }
    if (mode === 'bridge' && !isRoot()) {
      throw new PodnetError(ErrorCode.NOT_ROOT, `sandbox '${id}': bridge networking needs root; use network 'slirp4netns'`);
    }
    for (const k of ['staticIP', 'staticMAC', 'requestedIP', 'requestedMAC'] as const) {
      if (opts[k] !== undefined && mode !== 'bridge') throw invalidArgument(k, `network mode '${mode}' has no CNI network to give it to`);
    }
    const portMappings = toPortMappings(checkPortMappings(opts.portMappings));
    if (portMappings.length && mode !== 'bridge' && mode !== 'slirp4netns') {
      throw invalidArgument('portMappings', `network mode '${mode}' cannot publish ports`);
    }
    if (opts.podName !== undefined) checkId('pod name', opts.podName);
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
      owner: procRef(process.pid)!,
      ...(opts.ephemeral ? { ephemeral: true } : {}),
      helpers: {},
      createdAt: new Date().toISOString(),
    };
    await this.state.locked(async () => {
      if (await this.state.read(id)) throw new PodnetError('EEXIST', `sandbox '${id}' already exists`);
      if (mode.startsWith('container:')) {
        state.joins = mode.slice('container:'.length);
        const target = await this.#get(state.joins);
        if (target.status !== 'ready') throw new PodnetError('EBUSY', `sandbox '${state.joins}' is ${target.status}, not ready to be joined`);
        const owner = await this.#get(await this.#ownerOf(target));
        if (!owner.netnsPath) throw new PodnetError(ErrorCode.NO_NETNS, `sandbox '${owner.id}' has no network namespace (mode ${owner.mode})`);
        state.netnsOwner = owner.id;
        state.netnsPath = owner.netnsPath;
        state.usernsPath = owner.usernsPath;
      }
      await this.state.write(state);
    });
    const live: Live = {};
    this.#live.set(id, live);
    try {
      await this.#setUp(state, live, { ip: opts.requestedIP ?? opts.staticIP, mac: opts.requestedMAC ?? opts.staticMAC, pid: opts.pid });
      state.status = 'ready';
      await this.state.write(state);
      return state;
    } catch (err) {
      this.#live.delete(id);
      try {
        await this.#tearDown(state, live);
        await this.state.remove(id);
      } catch (undo) {
        // Keep the state (now 'removing', owner this process) so teardown() or gc() can finish the job.
        state.status = 'removing';
        await this.state.write(state).catch(() => {});
        debug('sandbox %s: rollback failed, state kept: %s', id, (undo as Error).message);
      }
      throw err;
    }
  }

  /** Post-configure mode: networking for a process that made its own namespace (the seed's setupNetNS). */
  async attachToPid(pid: number, opts: Omit<CreateSandboxOptions, 'pid'>): Promise<SandboxState> {
    return this.createSandbox({ ...opts, pid });
  }

  /**
   * Restarts a sandbox's CNI networks, using `requested` IP/MAC for this start
   * only; later restarts get the configured static ones again.
   */
  async restartNetwork(id: string, requested: { ip?: string; mac?: string } = {}): Promise<SandboxState> {
    const state = await this.#get(id);
    if (state.mode !== 'bridge') throw invalidArgument('sandbox', `'${id}' has no CNI networks to restart (mode ${state.mode})`);
    if (state.status !== 'ready') throw new PodnetError('EBUSY', `sandbox '${id}' is ${state.status}`);
    await this.cni.tearDownPod(this.#pod(state));
    state.results = [];
    await this.state.write(state); // if set-up fails, the state says no network rather than stale results
    state.results = await this.cni.setUpPod({ ...this.#pod(state), portMappings: state.portMappings, ip: requested.ip ?? state.staticIP, mac: requested.mac ?? state.staticMAC });
    await this.state.write(state);
    return state;
  }

  async get(id: string): Promise<SandboxState | undefined> {
    return this.state.read(id);
  }

  async list(): Promise<SandboxInfo[]> {
    return (await this.state.list()).map((s) => ({ id: s.id, name: s.name, mode: s.mode, netnsPath: s.netnsPath, status: s.status, ownerAlive: isAlive(s.owner) }));
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
   */
  async teardown(id: string): Promise<void> {
    checkId('sandbox id', id);
    const state = await this.state.locked(async () => {
      const s = await this.state.read(id);
      if (!s) return undefined;
      if (s.status === 'creating' && isAlive(s.owner)) throw new PodnetError('EBUSY', `sandbox '${id}' is still being created by process ${s.owner.pid}`);
      if (s.status === 'removing' && s.remover && s.remover.pid !== process.pid && isAlive(s.remover)) {
        throw new PodnetError('EBUSY', `sandbox '${id}' is being torn down by process ${s.remover.pid}`);
      }
      const joiners = (await this.state.list()).filter((j) => j.joins === id).map((j) => j.id);
      if (joiners.length) throw new PodnetError('EBUSY', `sandbox '${id}' shares its namespace with ${joiners.join(', ')}: tear those down first`);
      s.status = 'removing';
      s.remover = procRef(process.pid);
      await this.state.write(s);
      return s;
    });
    if (!state) return;
    const live = this.#live.get(id) ?? {};
    this.#live.delete(id);
    await this.#tearDown(state, live);
    await this.state.remove(id);
  }

  /** Releases this process's handles on a sandbox (namespace fd); the sandbox stays. */
  close(id: string): void {
    this.#live.get(id)?.netns?.close();
    const live = this.#live.get(id);
    if (live) live.netns = undefined;
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
  async gc(): Promise<{ sandboxes: string[]; namespaces: string[]; cniAttachments: string[]; errors: PodnetError[] }> {
    const removed = { sandboxes: [] as string[], namespaces: [] as string[], cniAttachments: [] as string[], errors: [] as PodnetError[] };
    const attempt = async (fn: () => Promise<unknown>, done: () => void) => {
      try {
        await fn();
        done();
      } catch (err) {
        removed.errors.push(err instanceof PodnetError ? err : new PodnetError(ErrorCode.GC, String(err), { cause: err }));
      }
    };
    await this.state.sweepTemp();
    for (const s of await this.state.list()) {
      const busy = (s.status === 'removing' && isAlive(s.remover)) || (s.status === 'creating' && isAlive(s.owner));
      const orphaned = !busy && (s.status !== 'ready' || (s.ephemeral === true && !isAlive(s.owner)));
      const helpersDied = s.status === 'ready' && (['slirp', 'holder', 'forwarder'] as const).some((h) => s.helpers[h] && !isAlive(s.helpers[h]));
      if (orphaned || helpersDied) await attempt(() => this.teardown(s.id), () => removed.sandboxes.push(s.id));
    }
    // Runs `fn` only if no state claims `id`, under the lock; resolves whether it ran.
    const unclaimed = (id: string, fn: () => Promise<void>) =>
      this.state.locked(async () => {
        if (await this.state.read(id)) return false;
        await fn();
        return true;
      });
    for (const a of await this.cni.cachedAttachments()) {
      if (this.#idOfNetns(a.netnsPath) !== a.id) continue;
      let ran = false;
      await attempt(
        async () => (ran = await unclaimed(a.id, () => this.cni.tearDownPod({ id: a.id, networks: [{ name: a.network, ifname: a.ifname }] }))),
        () => ran && removed.cniAttachments.push(`${a.network}/${a.id}/${a.ifname}`),
      );
    }
    for (const name of await NetNS.list(this.#netnsDir)) {
      const p = path.join(this.#netnsDir, name);
      const id = this.#idOfNetns(p);
      if (id === undefined) continue;
      let ran = false;
      await attempt(async () => (ran = await unclaimed(id, () => NetNS.removePath(p))), () => ran && removed.namespaces.push(p));
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

  async #setUp(state: SandboxState, live: Live, req: { ip?: string; mac?: string; pid?: number }): Promise<void> {
    const mode = state.mode;
    if (mode === 'host' || mode.startsWith('container:')) return;
    if (mode.startsWith('ns:')) {
      live.netns = await NetNS.open(mode.slice(3));
      state.netnsPath = live.netns.path;
      return;
    }
    if (mode === 'slirp4netns') state.portMappings = toPortMappings(await resolveHostPorts(checkPortMappings(state.portMappings)));
    if (!isRoot()) {
      // Unprivileged (slirp4netns or none): no bind mount under /run/netns; the namespace lives in a
      // user namespace held by a helper, or is the given process's own (post-configure mode).
      live.rootless = await startRootless(state, { binary: this.#opts.slirpBinary, pid: req.pid, slirp: mode === 'slirp4netns' });
      this.#recordHelpers(state, live.rootless);
      state.netnsPath = live.rootless.netnsPath;
      state.usernsPath = live.rootless.usernsPath;
      return;
    }
    const nsName = `${this.netnsPrefix}${state.id}`;
    live.netns = req.pid !== undefined
      ? await NetNS.fromPid(req.pid, { dir: this.#opts.netnsDir, name: nsName })
      : await NetNS.create({ dir: this.#opts.netnsDir, name: nsName });
    state.ownsNetns = true;
    state.netnsPath = live.netns.path;
    await this.state.write(state);
    await live.netns.setLoopbackUp();
    if (mode === 'bridge') {
      state.results = await this.cni.setUpPod({ ...this.#pod(state), portMappings: state.portMappings, ip: req.ip, mac: req.mac });
      // hostPort 0 became a real port: CNI reports the mappings back on the first network.
      state.portMappings = state.results[0]?.portMappings ?? state.portMappings;
    } else if (mode === 'slirp4netns') {
      live.rootless = await startRootless(state, { binary: this.#opts.slirpBinary, netnsPath: live.netns.path, slirp: true });
      this.#recordHelpers(state, live.rootless);
    }
  }

  async #tearDown(state: SandboxState, live: Live): Promise<void> {
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    if (live.rootless) await step(() => live.rootless!.stop());
    else for (const h of ['forwarder', 'slirp', 'holder'] as const) await step(() => signalIfAlive(state.helpers[h]));
    if (state.mode === 'bridge' && state.netnsPath) await step(() => this.cni.tearDownPod(this.#pod(state)));
    if (state.netnsPath && !state.joins) await step(() => releaseStats(state.netnsPath!));
    live.netns?.close();
    if (state.ownsNetns && state.netnsPath) await step(() => NetNS.removePath(state.netnsPath!));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new PodnetError(ErrorCode.TEARDOWN, `sandbox '${state.id}': ${errors.length} teardown steps failed: ${errors.map((e) => (e as Error).message).join('; ')}`, { details: { errors } });
    }
  }

  #recordHelpers(state: SandboxState, h: RootlessHandles): void {
    state.helpers = {
      holder: h.holderPid ? procRef(h.holderPid) : undefined,
      slirp: h.slirpPid ? { ...procRef(h.slirpPid)!, apiSocket: h.apiSocket } : undefined,
      forwarder: h.forwarderPid ? procRef(h.forwarderPid) : undefined,
    };
  }

  #pod(state: SandboxState) {
    return { id: state.id, name: state.cniPodName, netnsPath: state.netnsPath!, networks: state.networks.length ? state.networks : undefined };
  }

  async #get(id: string): Promise<SandboxState> {
    const s = await this.state.read(checkId('sandbox id', id));
    if (!s) throw new PodnetError('ENOENT', `no sandbox '${id}' in ${this.state.dir}`);
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
