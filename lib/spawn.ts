/**
 * Generic helper processes (slirp4netns, the user-namespace holder, the port
 * forwarder, ...), started by the addon's fork/exec (csrc/addon/spawn.cc).
 *
 * Conventions, shared by every helper podnet starts:
 * - fd 3 is the read end of the EXIT pipe: the helper exits when it reads EOF,
 *   i.e. when `stop()` closes podnet's write end, or when this process dies.
 * - fd 4 is the write end of the READY pipe: the helper writes one byte once
 *   it is ready. `waitReady()` resolves on that byte and rejects at once when
 *   the helper exits first (pidfd watched on the event loop, no polling), with
 *   the helper's own output (stdout/stderr go to an anonymous memfd).
 * - No other fd leaks into the helper; it gets its own process group.
 * - Optionally, before exec: setns into a user then a network namespace,
 *   unshare(flags), a private mount namespace (`mountPrivate`), and `lo` set
 *   up in the helper's network namespace (`loopbackUp`).
 *
 * A failed `waitReady()` has already killed and reaped the helper.
 */
import { accessSync, closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osc } from 'node:os';
import path from 'node:path';

import { ErrorCode, PodnetError, fromNative, invalidArgument } from './errors';
import { native, type NativePidfdWatch } from './addon';

/** Namespace flags for `unshare`. */
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWNET = 0x40000000;

export interface SpawnHelperOptions {
  /** Environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Give the helper the exit pipe at fd 3 (default true). */
  exitFd?: boolean;
  /** Give the helper the ready pipe at fd 4 (default true). */
  readyFd?: boolean;
  /**
   * Instead of the fd-4 pipe, `waitReady()` reads this fd of ours (taken over:
   * closed with the helper), for helpers that only report readiness in a file
   * they write, e.g. a FIFO given as their pid file.
   */
  readyFrom?: number;
  /** More fds: [child fd, parent fd] (child fd >= 5 when exit/ready pipes are used). */
  fds?: Array<[number, number]>;
  /** The helper's stdin (default /dev/null); 'exit' for the exit pipe's read end (for helpers that wait on stdin). */
  stdin?: number | 'exit';
  /** Join this user namespace (fd or path) before exec, first. */
  userns?: number | string;
  /** Join this network namespace (fd or path) before exec. */
  netns?: number | string;
  /** unshare(2) flags applied before exec (e.g. CLONE_NEWUSER | CLONE_NEWNET). */
  unshare?: number;
  /** Private mount namespace with / recursively private before exec. */
  mountPrivate?: boolean;
  /** Set `lo` up in the helper's network namespace (after the namespace steps) before exec. */
  loopbackUp?: boolean;
  /** Own process group (default true). */
  setpgid?: boolean;
  cwd?: string;
  /** Name for messages; default the command's base name. */
  name?: string;
}

export interface HelperExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** 'was killed by SIGKILL', 'exited with status 1', or 'is running' (null), for messages. */
export function describeExit(e: HelperExit | null): string {
  if (!e) return 'is running';
  return e.signal ? `was killed by ${e.signal}` : `exited with status ${e.code}`;
}

const SIGNAL_NAMES = Object.fromEntries(Object.entries(osc.signals).map(([k, v]) => [v, k])) as Record<number, NodeJS.Signals>;

/** Finds `cmd` (a path, or a name looked up in PATH); throws ERR_HELPER_NOT_FOUND. */
export function resolveCommand(cmd: string, envPath: string = process.env.PATH ?? ''): string {
  if (typeof cmd !== 'string' || cmd === '' || cmd.includes('\0')) throw invalidArgument('command', 'expected a non-empty string');
  const candidates = cmd.includes('/')
    ? [path.resolve(cmd)]
    : envPath
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, fsc.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  throw new PodnetError(ErrorCode.HELPER_NOT_FOUND, `helper '${cmd}' not found${cmd.includes('/') ? '' : ' in PATH'} or not executable`, {
    path: cmd,
  });
}

export class HelperProcess {
  readonly pid: number;
  readonly name: string;
  /** Settles when the helper has exited and been reaped. */
  readonly exited: Promise<HelperExit>;
  #exit: HelperExit | null = null;
  #pidfd: number;
  #watch: NativePidfdWatch;
  #logFd: number;
  #exitW: number;
  #readyR: number;

  /** @internal use spawnHelper() */
  constructor(name: string, pid: number, pidfd: number, logFd: number, exitW: number, readyR: number) {
    this.name = name;
    this.pid = pid;
    this.#pidfd = pidfd;
    this.#logFd = logFd;
    this.#exitW = exitW;
    this.#readyR = readyR;
    let resolve!: (e: HelperExit) => void;
    this.exited = new Promise((r) => (resolve = r));
    this.#watch = new native.PidfdWatch(pidfd, (code, sig) => {
      this.#exit = { code, signal: sig === null ? null : (SIGNAL_NAMES[sig] ?? null) };
      closeSync(this.#pidfd);
      this.#pidfd = -1;
      this.#closeExitFd();
      resolve(this.#exit);
    });
  }

  /** Exit status once exited, else null. */
  get exitStatus(): HelperExit | null {
    return this.#exit;
  }

  get running(): boolean {
    return this.#exit === null;
  }

  /** What the helper wrote to stdout/stderr so far (the last 64 KiB); empty once stop() has released it. */
  output(): string {
    if (this.#logFd < 0) return '';
    const size = fstatSync(this.#logFd).size;
    const len = Math.min(size, 65536);
    const buf = Buffer.alloc(len);
    const n = len > 0 ? readSync(this.#logFd, buf, 0, len, size - len) : 0;
    return buf.subarray(0, n).toString();
  }

  /** Describes the exit for an error message. */
  describeExit(e: HelperExit | null = this.#exit): string {
    return describeExit(e);
  }

  /**
   * Resolves when the helper writes its ready byte; rejects (ERR_HELPER_EXITED)
   * as soon as it exits first, or (ERR_HELPER_TIMEOUT) after `timeoutMs`. On
   * rejection the helper has been killed and reaped; the error carries its output.
   */
  waitReady(timeoutMs = 5000): Promise<void> {
    if (this.#readyR < 0) return Promise.reject(invalidArgument('waitReady', `helper '${this.name}' has no ready fd`));
    const sock = new Socket({ fd: this.#readyR, readable: true, writable: false });
    this.#readyR = -1; // the socket owns it now
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: PodnetError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (!err) return resolve();
        // Kill what is left, reap it, then report (with its final output). Whatever happens on
        // the way, the promise settles: an error without details (a read error) gets them here.
        void this.kill('SIGKILL')
          .catch(() => undefined)
          .then(() => {
            const out = this.output();
            Object.assign(err, { details: { ...err.details, output: out } });
            // The first lines say what went wrong (a usage text may follow); all of it is in details.output.
            const lines = out.trim().split('\n');
            if (out) err.message += `: ${lines.slice(0, 8).join('\n')}${lines.length > 8 ? '\n...' : ''}`;
          })
          .catch(() => undefined)
          .finally(() => reject(err));
      };
      const exitedFirst = (e: HelperExit) =>
        finish(
          new PodnetError(ErrorCode.HELPER_EXITED, `${this.name} (pid ${this.pid}) ${this.describeExit(e)} before it was ready`, {
            details: { pid: this.pid, code: e.code, signal: e.signal },
          }),
        );
      const timer = setTimeout(
        () =>
          finish(
            new PodnetError(ErrorCode.HELPER_TIMEOUT, `${this.name} (pid ${this.pid}) not ready after ${timeoutMs} ms`, {
              details: { pid: this.pid, timeoutMs },
            }),
          ),
        timeoutMs,
      );
      sock.once('data', () => finish());
      // EOF without a byte: the helper closed fd 4 or died; its exit follows within moments.
      sock.once('end', () => {
        void Promise.race([this.exited, new Promise((r) => setTimeout(r, 100, null))]).then((e) => {
          if (e) exitedFirst(e as HelperExit);
          else
            finish(
              new PodnetError(ErrorCode.HELPER_EXITED, `${this.name} (pid ${this.pid}) closed its ready fd without writing`, { details: { pid: this.pid } }),
            );
        });
      });
      sock.once('error', (e) => finish(fromNative(e, `read ready pipe of ${this.name}`)));
      void this.exited.then(exitedFirst);
    });
  }

  /** Sends a signal to the helper's process group (or to it alone), then waits for it to be reaped. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<HelperExit> {
    if (this.#exit) return this.#exit;
    try {
      process.kill(-this.pid, signal); // the group: the helper is not reaped yet, so the id is still ours
    } catch {
      native.pidfdSignal(this.#pidfd, osc.signals[signal]);
    }
    return this.exited;
  }

  /**
   * Closes the exit pipe (the helper's signal to leave), waits up to `graceMs`
   * for it to exit, then kills its process group. Resolves once it is reaped.
   */
  async stop(graceMs = 2000): Promise<HelperExit> {
    this.#closeExitFd();
    if (this.#readyR >= 0) {
      closeSync(this.#readyR);
      this.#readyR = -1;
    }
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    const first = await Promise.race([this.exited, killed.then(() => null)]);
    clearTimeout(timer);
    const e = first ?? (await this.kill('SIGKILL'));
    this.#release();
    return e;
  }

  /** Lets this process exit while the helper runs. */
  unref(): void {
    this.#watch.unref();
  }

  ref(): void {
    this.#watch.ref();
  }

  #closeExitFd(): void {
    if (this.#exitW >= 0) {
      closeSync(this.#exitW);
      this.#exitW = -1;
    }
  }

  #release(): void {
    if (this.#logFd >= 0) {
      closeSync(this.#logFd);
      this.#logFd = -1;
    }
  }
}

function nsFd(what: string, v: number | string | undefined, opened: number[]): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw invalidArgument(what, `'${v}' is not a file descriptor`);
    return v;
  }
  try {
    const fd = openSync(v, 'r');
    opened.push(fd);
    return fd;
  } catch (err) {
    throw fromNative(err, `open ${what} '${v}'`);
  }
}

/**
 * Starts `cmd args` as a helper (see the conventions at the top of this file).
 * Throws ERR_HELPER_NOT_FOUND, or the errno of the step that failed in the
 * child before exec (e.g. EPERM from setns), with nothing left running.
 */
export function spawnHelper(cmd: string, args: readonly string[] = [], opts: SpawnHelperOptions = {}): HelperProcess {
  const file = resolveCommand(cmd, opts.env?.PATH ?? process.env.PATH);
  const name = opts.name ?? path.basename(cmd);
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw invalidArgument('helper arguments', 'expected an array of strings');
  const fds: Array<[number, number]> = [];
  const toClose: number[] = []; // our copies of what only the child keeps
  let exitW = -1;
  let readyR = -1;
  let logFd = -1;
  try {
    let stdin = typeof opts.stdin === 'number' ? opts.stdin : undefined;
    if (opts.exitFd !== false || opts.stdin === 'exit') {
      const [r, w] = native.pipe();
      if (opts.stdin === 'exit') stdin = r;
      toClose.push(r);
      exitW = w;
      fds.push([3, r]);
    }
    if (opts.readyFrom !== undefined) {
      if (!Number.isInteger(opts.readyFrom) || opts.readyFrom < 0) throw invalidArgument('readyFrom', `'${opts.readyFrom}' is not a file descriptor`);
      if (opts.readyFd !== false) throw invalidArgument('readyFrom', 'needs readyFd: false');
      readyR = opts.readyFrom;
    } else if (opts.readyFd !== false) {
      const [r, w] = native.pipe();
      toClose.push(w); // the helper must hold the only write end, so its death is EOF
      readyR = r;
      fds.push([4, w]);
    }
    for (const pair of opts.fds ?? []) fds.push(pair);
    logFd = native.memfd(`${name}-log`);
    const env = Object.entries(opts.env ?? process.env)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    const userns = nsFd('user namespace', opts.userns, toClose);
    const netns = nsFd('network namespace', opts.netns, toClose);
    const r = native.spawnHelper({
      file,
      argv: [name, ...args],
      env,
      stdin,
      stdout: logFd,
      stderr: logFd,
      fds,
      userns,
      netns,
      unshare: opts.unshare,
      mountPrivate: opts.mountPrivate,
      loopbackUp: opts.loopbackUp,
      setpgid: opts.setpgid,
      cwd: opts.cwd,
    });
    return new HelperProcess(name, r.pid, r.pidfd, logFd, exitW, readyR);
  } catch (err) {
    for (const fd of [exitW, readyR, logFd]) if (fd >= 0) closeSync(fd);
    throw fromNative(err, `start ${name}`); // passes a PodnetError through
  } finally {
    for (const fd of toClose) closeSync(fd);
  }
}
