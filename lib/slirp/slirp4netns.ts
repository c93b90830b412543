/**
 * slirp4netns started natively (Podman 2.x's setupRootlessNetNS, waitForSync and
 * setupRootlessPortMappingViaSlirp), for root and unprivileged callers.
 *
 * - Spawned by spawnHelper(): exit pipe at fd 3 (`-e 3`), ready pipe at fd 4
 *   (`-r 4`), `-c`, nothing else inherited, own process group. Readiness is the
 *   ready byte; the helper's death is seen at once through its pidfd (the
 *   Podman 2.x's 1 s polling FIXME), and the error carries slirp4netns's own output.
 * - With --enable-sandbox, slirp4netns unmounts the old root in its own mount
 *   namespace; on a host where /run/netns is shared, that unmount would
 *   propagate and drop the host's netns bind mounts. So the child first gets a
 *   private mount namespace with / recursively private (as Podman 2.x did).
 * - Unprivileged callers pass the user namespace owning the netns (`userns`,
 *   e.g. from UserNetns): slirp4netns gets --userns-path. With the sandbox on,
 *   the child also joins that user namespace before exec: slirp4netns 1.2 only
 *   joins a user namespace for its sandbox in PID mode, and unshare(CLONE_NEWNS)
 *   for the private mount namespace needs CAP_SYS_ADMIN, which an unprivileged
 *   process only has inside its own user namespace.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { checkTunAccess } from '../rootless/tun';
import { spawnHelper, type HelperExit, type HelperProcess } from '../spawn';
import { checkIfName, checkPath, checkPid } from '../validate';
import { addHostForward, listHostForwards, removeHostForward, type HostForward, type HostForwardEntry } from './api';
import { slirpFeatures, type SlirpFeatures } from './features';
import { parseSlirpOptions, type SlirpOptions } from './options';

export interface Slirp4netnsStartOptions {
  /** Path of the network namespace (--netns-type=path); or use `pid`. */
  netns?: string;
  /** Process whose network namespace to configure (Podman 2.x's post-configure mode). */
  pid?: number;
  /** User namespace owning the network namespace (--userns-path), for unprivileged callers. */
  userns?: string;
  /** slirp4netns binary (Podman 2.x's NetworkCmdPath); default slirp4netns from PATH. */
  binary?: string;
  /** Network options as Podman accepts them (parseSlirpOptions), or already parsed. */
  options?: readonly string[] | SlirpOptions;
  /** API socket path; `true` for one in a private temp dir. Default: when port_handler=slirp4netns. */
  apiSocket?: string | boolean;
  /** Host forwards to add once ready (needs the API socket; one is made if not given). */
  hostForwards?: HostForward[];
  /** Interface name in the namespace; default tap0. */
  interfaceName?: string;
  /** Default: when the binary supports them. */
  sandbox?: boolean;
  seccomp?: boolean;
  /** How long to wait for the ready byte (default 10000 ms). */
  readyTimeoutMs?: number;
}

const isRoot = () => process.geteuid?.() === 0;

/** The slirp4netns command line for `opts` (exported for tests and diagnostics). */
export function slirpArgs(
  f: SlirpFeatures,
  o: SlirpOptions,
  target: { netns?: string; pid?: number; userns?: string; ifname: string; apiSocket?: string; sandbox: boolean; seccomp: boolean },
): string[] {
  const need = (ok: boolean, flag: string) => {
    if (!ok) throw new PodnetError(ErrorCode.SLIRP_OPTION, `slirp4netns at '${f.binary}' does not support ${flag}`, { path: f.binary });
  };
  const a: string[] = [];
  if (!o.allowHostLoopback && f.disableHostLoopback) a.push('--disable-host-loopback');
  if (f.mtu) a.push('--mtu', String(o.mtu));
  else if (o.mtu !== 1500) need(false, '--mtu');
  if (target.sandbox) {
    need(f.sandbox, '--enable-sandbox');
    a.push('--enable-sandbox');
  }
  if (target.seccomp) {
    need(f.seccomp, '--enable-seccomp');
    a.push('--enable-seccomp');
  }
  if (o.cidr) {
    need(f.cidr, '--cidr');
    a.push(`--cidr=${o.cidr}`);
  }
  if (o.enableIPv6) {
    need(f.ipv6, '--enable-ipv6');
    a.push('--enable-ipv6');
  }
  if (o.outboundAddr) {
    const v6 = o.outboundAddr.includes(':');
    need(v6 ? f.outboundAddr6 : f.outboundAddr, v6 ? '--outbound-addr6' : '--outbound-addr');
    a.push(`${v6 ? '--outbound-addr6' : '--outbound-addr'}=${o.outboundAddr}`);
  }
  if (target.apiSocket) {
    need(f.apiSocket, '--api-socket');
    a.push('--api-socket', target.apiSocket);
  }
  if (target.userns) {
    need(f.usernsPath, '--userns-path');
    a.push(`--userns-path=${target.userns}`);
  }
  a.push('-c', '-e', '3', '-r', '4');
  if (target.netns) {
    need(f.netnsTypePath, '--netns-type');
    a.push('--netns-type=path', target.netns);
  } else a.push(String(target.pid));
  a.push(target.ifname);
  return a;
}

export class Slirp4netns {
  readonly pid: number;
  /** The API socket path, when there is one. */
  readonly apiSocket?: string;
  readonly features: SlirpFeatures;
  readonly options: SlirpOptions;
  /** The command line slirp4netns was started with. */
  readonly args: readonly string[];
  readonly helper: HelperProcess;
  #apiDir?: string;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(helper: HelperProcess, features: SlirpFeatures, options: SlirpOptions, args: string[], apiSocket?: string, apiDir?: string) {
    this.helper = helper;
    this.pid = helper.pid;
    this.features = features;
    this.options = options;
    this.args = args;
    if (apiSocket) this.apiSocket = apiSocket;
    this.#apiDir = apiDir;
  }

  /**
   * Starts slirp4netns for a namespace and waits until tap0 is configured.
   * Bad input is refused before anything is spawned; on any later failure the
   * process is killed and reaped and the error carries its output.
   */
  static async start(opts: Slirp4netnsStartOptions): Promise<Slirp4netns> {
    if (!opts || typeof opts !== 'object') throw invalidArgument('slirp4netns options', 'expected an object');
    if ((opts.netns === undefined) === (opts.pid === undefined)) throw invalidArgument('slirp4netns target', 'give exactly one of netns (a path) or pid');
    const netns = opts.netns === undefined ? undefined : checkPath('slirp4netns netns path', opts.netns);
    const pid = opts.pid === undefined ? undefined : checkPid('slirp4netns target pid', opts.pid);
    const userns = opts.userns === undefined ? undefined : checkPath('slirp4netns userns path', opts.userns);
    const ifname = checkIfName('interface name', opts.interfaceName ?? 'tap0');
    const options =
      Array.isArray(opts.options) || opts.options === undefined
        ? parseSlirpOptions(opts.options as readonly string[] | undefined)
        : (opts.options as SlirpOptions);
    let apiSocket = typeof opts.apiSocket === 'string' ? checkPath('slirp4netns API socket path', opts.apiSocket) : undefined;
    if (apiSocket && Buffer.byteLength(apiSocket) > 107) throw invalidArgument('slirp4netns API socket path', `'${apiSocket}' is longer than 107 bytes`);
    const wantApi =
      opts.apiSocket === true ||
      apiSocket !== undefined ||
      (opts.apiSocket !== false && (options.portHandler === 'slirp4netns' || (opts.hostForwards?.length ?? 0) > 0));
    const features = await slirpFeatures(opts.binary);
    const sandbox = opts.sandbox ?? features.sandbox;
    const seccomp = opts.seccomp ?? features.seccomp;
    // Checked (throws) before the temp dir exists: the command line with a placeholder socket.
    slirpArgs(features, options, { netns, pid, userns, ifname, apiSocket: wantApi ? '/x' : undefined, sandbox, seccomp });

    let apiDir: string | undefined;
    if (wantApi && !apiSocket) {
      apiDir = mkdtempSync(path.join(tmpdir(), 'podnet-slirp-'));
      apiSocket = path.join(apiDir, 'api.sock');
    }
    const args = slirpArgs(features, options, { netns, pid, userns, ifname, apiSocket, sandbox, seccomp });
    const joinUserns = sandbox && userns !== undefined && !isRoot();
    if (!isRoot()) checkTunAccess('slirp4netns');
    let helper: HelperProcess;
    try {
      helper = spawnHelper(features.binary, args, {
        name: 'slirp4netns',
        mountPrivate: sandbox && (isRoot() || joinUserns),
        userns: joinUserns ? userns : undefined,
      });
    } catch (err) {
      if (apiDir) rmSync(apiDir, { recursive: true, force: true });
      throw err;
    }
    const s = new Slirp4netns(helper, features, options, args, apiSocket, apiDir);
    try {
      await helper.waitReady(opts.readyTimeoutMs ?? 10000);
      if (apiSocket) await s.#waitApiSocket(opts.readyTimeoutMs ?? 10000);
      for (const f of opts.hostForwards ?? []) await s.addHostForward(f);
    } catch (err) {
      await s.stop();
      if (err instanceof PodnetError) err.message = `slirp4netns for ${netns ? `'${netns}'` : `pid ${pid}`}: ${err.message}`;
      throw err;
    }
    return s;
  }

  /** Settles when slirp4netns has exited and been reaped. */
  get exited(): Promise<HelperExit> {
    return this.helper.exited;
  }

  get running(): boolean {
    return this.helper.running;
  }

  /** slirp4netns's output so far. */
  output(): string {
    return this.helper.output();
  }

  // slirp4netns 1.x binds the socket before the ready byte; older ones may not.
  async #waitApiSocket(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (statSync(this.apiSocket!).isSocket()) return;
      } catch {
        /* not yet */
      }
      if (!this.helper.running || Date.now() > deadline) {
        throw new PodnetError(
          ErrorCode.HELPER_EXITED,
          `slirp4netns API socket '${this.apiSocket}' did not appear (slirp4netns ${this.helper.describeExit()}): ${this.output()}`,
          {
            path: this.apiSocket,
          },
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  #api<T>(fn: (sock: string) => Promise<T>): Promise<T> {
    if (!this.apiSocket) {
      return Promise.reject(new PodnetError(ErrorCode.SLIRP_API, 'slirp4netns was started without an API socket (set apiSocket or port_handler=slirp4netns)'));
    }
    // slirp4netns listens with a backlog of 0: one request at a time.
    const p = this.#queue.then(() => fn(this.apiSocket!));
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** Forwards a host port into the namespace (add_hostfwd); returns its id. */
  addHostForward(f: HostForward): Promise<number> {
    return this.#api((s) => addHostForward(s, f));
  }

  listHostForwards(): Promise<HostForwardEntry[]> {
    return this.#api((s) => listHostForwards(s));
  }

  removeHostForward(id: number): Promise<void> {
    return this.#api((s) => removeHostForward(s, id));
  }

  /** Lets this process exit while slirp4netns runs (it then leaves when this process's exit pipe end closes). */
  unref(): void {
    this.helper.unref();
  }

  /** Closes the exit pipe; slirp4netns exits and is reaped (killed after `graceMs`). Idempotent. */
  async stop(graceMs = 2000): Promise<HelperExit> {
    const e = await this.helper.stop(graceMs);
    if (this.#apiDir) {
      rmSync(this.#apiDir, { recursive: true, force: true });
      this.#apiDir = undefined;
    }
    return e;
  }
}
