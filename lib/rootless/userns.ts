/**
 * A user namespace + network namespace for callers that are not root.
 *
 * Design: an unprivileged process cannot bind-mount a namespace into the
 * host's /run/netns, so the namespaces are held by a small holder process
 * that podnet starts with spawnHelper(): the forked child does
 * unshare(CLONE_NEWUSER | CLONE_NEWNET), sets `lo` up (it holds every
 * capability in the new user namespace) and execs `cat` reading the exit pipe,
 * so it lives exactly until stop() closes that pipe, or until this process
 * dies. Once it runs, the parent writes its id maps: with newuidmap/newgidmap
 * and the caller's /etc/subuid and /etc/subgid ranges when both exist
 * (`0 -> caller`, `1.. -> subordinate range`, as Podman does), else a single
 * `0 -> caller` map written directly (setgroups denied first, as the kernel
 * requires). Root gets the identity map.
 *
 * The namespaces are named by /proc/<holder>/ns/{user,net} (for slirp4netns's
 * --userns-path and --netns-type=path, or nsenter) and held open as fds.
 * Processes run inside by joining the user namespace first, then the network
 * namespace: spawnHelper() does it natively in the forked child (options from
 * helperOptions()); spawn()/exec() use nsenter --user --net
 * --preserve-credentials, because they return Node's ChildProcess with stdio
 * streams, which only child_process provides (--preserve-credentials: with a
 * single-id map setgroups is denied, and the caller's uid is already 0 inside).
 */
import { execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';

import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { NetNS, type NetNSExecOptions, type NetNSExecResult } from '../netns';
import { CLONE_NEWNET, CLONE_NEWUSER, resolveCommand, spawnHelper, type HelperProcess, type SpawnHelperOptions } from '../spawn';

export type IdMapMode = 'auto' | 'single';

export interface UserNetnsOptions {
  /** 'auto' (default): subordinate ranges via newuidmap/newgidmap when available, else a single id; 'single': one id. */
  idMap?: IdMapMode;
}

export interface SubIdRange {
  start: number;
  count: number;
}

/** The first range for `user` (name or uid) in an /etc/subuid-style text. */
export function findSubIdRange(text: string, name: string, id: number): SubIdRange | undefined {
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if ((owner === name || owner === String(id)) && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '') && Number(count) > 0) {
      return { start: Number(start), count: Number(count) };
    }
  }
  return undefined;
}

function readOr(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function subidTool(name: string): string | undefined {
  try {
    return resolveCommand(name);
  } catch {
    return undefined;
  }
}

export class UserNetns {
  readonly pid: number;
  readonly usernsPath: string;
  readonly netnsPath: string;
  /** How ids were mapped: 'identity' (root), 'subid' or 'single'. */
  readonly idMap: 'identity' | 'subid' | 'single';
  /** The network namespace, with its owning user namespace (NetNS.spawn/exec join both). */
  readonly netns: NetNS;
  readonly holder: HelperProcess;
  #userFd: number;

  private constructor(holder: HelperProcess, idMap: UserNetns['idMap'], netns: NetNS, userFd: number) {
    this.holder = holder;
    this.pid = holder.pid;
    this.usernsPath = `/proc/${holder.pid}/ns/user`;
    this.netnsPath = `/proc/${holder.pid}/ns/net`;
    this.idMap = idMap;
    this.netns = netns;
    this.#userFd = userFd;
  }

  /** Starts the holder and maps ids; on failure nothing is left running. */
  static async start(opts: UserNetnsOptions = {}): Promise<UserNetns> {
    const mode = opts.idMap ?? 'auto';
    if (mode !== 'auto' && mode !== 'single') throw invalidArgument('idMap', `'${String(mode)}' is not 'auto' or 'single'`);
    const holder = spawnHelper('cat', [], {
      name: 'podnet-userns-holder',
      stdin: 'exit',
      readyFd: false,
      unshare: CLONE_NEWUSER | CLONE_NEWNET,
      loopbackUp: true,
    });
    let userFd = -1;
    try {
      const idMap = await mapIds(holder.pid, mode);
      userFd = openSync(`/proc/${holder.pid}/ns/user`, 'r');
      const netns = await NetNS.open(`/proc/${holder.pid}/ns/net`, { userns: `/proc/${process.pid}/fd/${userFd}` });
      if (!holder.running) throw new PodnetError(ErrorCode.HELPER_EXITED, `user namespace holder ${holder.describeExit()}: ${holder.output()}`);
      return new UserNetns(holder, idMap, netns, userFd);
    } catch (err) {
      if (userFd >= 0) closeSync(userFd);
      await holder.stop(0);
      throw err instanceof PodnetError ? err : new PodnetError(ErrorCode.USERNS, `start user namespace: ${(err as Error).message}`, { cause: err });
    }
  }

  /** File descriptors of the user and network namespaces (valid until stop()). */
  get usernsFd(): number {
    return this.#userFd;
  }

  get netnsFd(): number {
    return this.netns.fd;
  }

  /** spawnHelper() options that start a helper inside these namespaces (user first, then network). */
  helperOptions(): Pick<SpawnHelperOptions, 'userns' | 'netns'> {
    return { userns: this.#userFd, netns: this.netns.fd };
  }

  /** Starts `cmd` inside (Node's ChildProcess). */
  spawn(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    return this.netns.spawn(cmd, args, opts);
  }

  /** Runs `cmd` inside to completion. */
  exec(cmd: string, args: readonly string[] = [], opts: NetNSExecOptions = {}): Promise<NetNSExecResult> {
    return this.netns.exec(cmd, args, opts);
  }

  /** Closes the namespace fds and ends the holder (exit pipe closed); idempotent. */
  async stop(): Promise<void> {
    this.netns.close();
    if (this.#userFd >= 0) {
      closeSync(this.#userFd);
      this.#userFd = -1;
    }
    await this.holder.stop();
  }
}

async function mapIds(pid: number, mode: IdMapMode): Promise<UserNetns['idMap']> {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  const proc = `/proc/${pid}`;
  try {
    if (uid === 0) {
      writeFileSync(`${proc}/uid_map`, '0 0 4294967295\n');
      writeFileSync(`${proc}/gid_map`, '0 0 4294967295\n');
      return 'identity';
    }
    if (mode === 'auto') {
      const name = userInfo().username;
      const su = findSubIdRange(readOr('/etc/subuid'), name, uid);
      const sg = findSubIdRange(readOr('/etc/subgid'), name, uid);
      const nu = subidTool('newuidmap');
      const ng = subidTool('newgidmap');
      if (su && sg && nu && ng) {
        await promisify(execFile)(nu, [String(pid), '0', String(uid), '1', '1', String(su.start), String(su.count)]);
        await promisify(execFile)(ng, [String(pid), '0', String(gid), '1', '1', String(sg.start), String(sg.count)]);
        return 'subid';
      }
    }
    writeFileSync(`${proc}/setgroups`, 'deny');
    writeFileSync(`${proc}/uid_map`, `0 ${uid} 1\n`);
    writeFileSync(`${proc}/gid_map`, `0 ${gid} 1\n`);
    return 'single';
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new PodnetError(
      e.code && typeof e.code === 'string' ? e.code : ErrorCode.USERNS,
      `map ids of user namespace holder ${pid}: ${e.stderr?.trim() || e.message}`,
      {
        cause: err,
      },
    );
  }
}
