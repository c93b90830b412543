/**
 * Persistent network namespaces (Podman 2.x's netns.NewNS, joinNetNS, setupNetNS
 * and the unmount step of teardownNetNS). Namespaces are bind-mounted under a
 * run directory (default /run/netns) exactly as iproute2 does, so `ip netns`
 * sees and uses them.
 */
import { spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

import { OWN_GROUP, collect } from './command';
import { ErrorCode, PodnetError, fromNative, invalidArgument } from './errors';
import { native, type NsHandleInfo } from './addon';
import { checkFileName, checkPath, checkPid } from './validate';

export const DEFAULT_NETNS_DIR = '/run/netns';

export interface NetNSCreateOptions {
  /** File name under `dir`; default `cni-` and 16 random bytes in Podman 2.x's form. */
  name?: string;
  /** Run directory; default /run/netns. */
  dir?: string;
}

export interface NetNSExecOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Written to the process's stdin, which is then closed. */
  input?: string | Buffer;
  /** Kill the process (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
}

export interface NetNSExecResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A random name in Podman 2.x's `cni-%x-%x-%x-%x-%x` form (16 bytes, 8-4-4-4-12 hex digits). */
export function randomNetnsName(): string {
  const h = randomBytes(16).toString('hex');
  return `cni-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class NetNS {
  /** Path of the namespace file (bind mount, or /proc/PID/ns/net for an opened one). */
  readonly path: string;
  /** Identity of the namespace: nsfs device and inode, stable for its lifetime. */
  readonly dev: number;
  readonly ino: number;
  /** The user namespace that owns this one, for unprivileged sandboxes (joined first by spawn). */
  readonly userns?: string;
  /** Whether podnet mounted `path` (and so `remove()` may unmount it). */
  readonly persistent: boolean;
  #fd: number;

  private constructor(p: string, info: NsHandleInfo, persistent: boolean, userns?: string) {
    this.path = p;
    this.dev = info.dev;
    this.ino = info.ino;
    this.#fd = info.fd;
    this.persistent = persistent;
    if (userns !== undefined) this.userns = userns;
  }

  /** Creates a new persistent namespace at `<dir>/<name>`. */
  static async create(opts: NetNSCreateOptions = {}): Promise<NetNS> {
    const dir = checkPath('netns dir', opts.dir ?? DEFAULT_NETNS_DIR);
    const name = checkFileName('netns name', opts.name ?? randomNetnsName());
    const p = path.join(dir, name);
    try {
      return new NetNS(p, await native.netnsCreate(dir, name), true);
    } catch (err) {
      throw fromNative(err, `create network namespace '${p}'`);
    }
  }

  /** Opens an existing namespace: an `ip netns` file, a /proc/PID/ns/net, or one of podnet's. */
  static async open(nsPath: string, opts: { userns?: string } = {}): Promise<NetNS> {
    const p = checkPath('netns path', nsPath);
    try {
      return new NetNS(p, await native.netnsOpen(p), false, opts.userns);
    } catch (err) {
      throw fromNative(err, `open network namespace '${p}'`);
    }
  }

  /** Bind-mounts the namespace of process `pid` at a new `<dir>/<name>` (Podman 2.x's setupNetNS). */
  static async fromPid(pid: number, opts: NetNSCreateOptions = {}): Promise<NetNS> {
    checkPid('pid', pid);
    const dir = checkPath('netns dir', opts.dir ?? DEFAULT_NETNS_DIR);
    const name = checkFileName('netns name', opts.name ?? randomNetnsName());
    const p = path.join(dir, name);
    try {
      return new NetNS(p, await native.netnsFromPid(pid, dir, name), true);
    } catch (err) {
      throw fromNative(err, `bind network namespace of pid ${pid} at '${p}'`);
    }
  }

  /**
   * Gives a namespace held only by an fd (a warm one, see lib/runtime/pool) a
   * path: bind-mounts it at a new `<dir>/<name>`. The handle takes the fd
   * over once this succeeds; on failure the fd stays the caller's.
   * @internal
   */
  static adopt(info: NsHandleInfo, opts: { dir?: string; name: string }): NetNS {
    const dir = checkPath('netns dir', opts.dir ?? DEFAULT_NETNS_DIR);
    const name = checkFileName('netns name', opts.name);
    const p = path.join(dir, name);
    try {
      native.netnsBind(info.fd, dir, name);
    } catch (err) {
      throw fromNative(err, `bind network namespace at '${p}'`);
    }
    return new NetNS(p, info, true);
  }

  /** Names of the namespaces in `dir` (as `ip netns list` shows them), sorted. */
  static async list(dir: string = DEFAULT_NETNS_DIR): Promise<string[]> {
    checkPath('netns dir', dir);
    try {
      return (await readdir(dir)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromNative(err, `list network namespaces in '${dir}'`);
    }
  }

  /** Removes a namespace file by path (unmount, unlink) without opening it; idempotent. */
  static async removePath(nsPath: string): Promise<void> {
    const p = checkPath('netns path', nsPath);
    try {
      await native.netnsRemove(p);
    } catch (err) {
      throw fromNative(err, `remove network namespace '${p}'`);
    }
  }

  get name(): string {
    return path.basename(this.path);
  }

  /** The open file descriptor on the namespace, or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** A path that names this namespace for as long as the handle is open, even if the file goes. */
  get handlePath(): string {
    return this.#fd >= 0 ? `/proc/${process.pid}/fd/${this.#fd}` : this.path;
  }

  /** Closes the handle only; the namespace stays (idempotent). */
  close(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) native.closeFd(fd);
  }

  /** Unmounts and unlinks the namespace file (if podnet mounted it) and closes the handle; idempotent. */
  async remove(): Promise<void> {
    this.close();
    if (this.persistent) await NetNS.removePath(this.path);
  }

  /** Sets the loopback interface up (a new namespace's `lo` starts down), as container runtimes do. */
  async setLoopbackUp(): Promise<void> {
    if (this.#fd < 0) throw new PodnetError('EBADF', `network namespace '${this.path}' is closed`, { path: this.path });
    try {
      await native.netnsLoopbackUp(this.#fd);
    } catch (err) {
      throw fromNative(err, `set lo up in network namespace '${this.path}'`);
    }
  }

  /** Starts `cmd` inside the namespace (as `ip netns exec` does), returning Node's ChildProcess. */
  spawn(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (typeof cmd !== 'string' || cmd === '') throw invalidArgument('command', 'expected a non-empty string');
    return spawnInNetns(this.handlePath, this.userns, cmd, args, opts);
  }

  /** Runs `cmd` inside the namespace to completion and collects its output. */
  exec(cmd: string, args: readonly string[] = [], opts: NetNSExecOptions = {}): Promise<NetNSExecResult> {
    const { input, timeoutMs, ...spawnOpts } = opts;
    const child = this.spawn(cmd, args, { ...spawnOpts, ...OWN_GROUP, stdio: ['pipe', 'pipe', 'pipe'] });
    return execIn(child, `${cmd} in network namespace '${this.path}'`, input, timeoutMs);
  }
}

/** Sets a net.* sysctl inside the namespace at `nsPath` (e.g. 'net.ipv6.conf.default.accept_dad', '0'). */
export async function setNetnsSysctl(nsPath: string, key: string, value: string): Promise<void> {
  const p = checkPath('netns path', nsPath);
  if (!/^net(\.[A-Za-z0-9_-]+)+$/.test(key)) throw invalidArgument('sysctl key', `'${key}' is not a net.* key`);
  try {
    await native.netnsSysctl(p, key.replace(/\./g, '/'), value);
  } catch (err) {
    throw fromNative(err, `set ${key}=${value} in network namespace '${p}'`);
  }
}

/**
 * Spawns `cmd` inside a network namespace (and its owning user namespace,
 * joined first as setns requires) with nsenter, which execs the command:
 * signals sent to the child reach the command itself.
 */
export function spawnInNetns(netnsPath: string, usernsPath: string | undefined, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const user = usernsPath ? [`--user=${usernsPath}`, '--preserve-credentials'] : [];
  return spawnChild('nsenter', [...user, `--net=${netnsPath}`, '--', cmd, ...args], opts);
}

async function execIn(child: ChildProcess, what: string, input?: string | Buffer, timeoutMs?: number): Promise<NetNSExecResult> {
  try {
    const r = await collect(child, { input, timeoutMs });
    return { code: r.code, signal: r.signal, stdout: r.stdout.toString(), stderr: r.stderr };
  } catch (e) {
    throw new PodnetError((e as NodeJS.ErrnoException).code ?? ErrorCode.SPAWN, `run ${what}: ${(e as Error).message}`, { cause: e });
  }
}
