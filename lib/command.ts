/**
 * Running a command to completion (argv, never a shell): its output collected
 * up to a limit, an optional time limit (SIGKILL), input written to stdin. It
 * rejects only when the command cannot be started (ENOENT, EACCES, ETXTBSY),
 * so callers tell "could not run" from "ran and failed".
 *
 * The command runs in a process group of its own, and the time limit kills the
 * whole group: a CNI plugin that is a shell script running `sleep` (no exec)
 * would otherwise outlive the kill and hold stdout open. The result settles on
 * the command's exit plus a bounded drain of its pipes, not on the pipes
 * closing, which waits for every process that inherited them (Go's
 * exec.Cmd.WaitDelay solves the same problem for libcni's callers).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string | Buffer;
  /** Kill (SIGKILL, the whole process group) after this many milliseconds. */
  timeoutMs?: number;
  /** Kill once stdout and stderr together exceed this many bytes; default 16 MiB. */
  maxOutput?: number;
  /** After the command exits, how long its pipes may stay open (held by its children); default 500 ms. */
  drainMs?: number;
}

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

export const DEFAULT_DRAIN_MS = 500;

/** Spawn options that make the child the leader of a new process group (so collect() can kill all of it). */
export const OWN_GROUP: SpawnOptions = { detached: true };

export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return collect(spawn(cmd, args, { ...OWN_GROUP, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] }), opts);
}

/**
 * Collects a started child (stdio all pipes) as runCommand does. The child
 * must lead its own process group (spawned with OWN_GROUP): kills go to the group.
 */
export function collect(child: ChildProcess, opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutput ?? 16 * 1024 * 1024;
  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drain: NodeJS.Timeout | undefined;
    let settled = false;
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // valid while any member lives, even after the leader is reaped
      } catch {
        child.kill('SIGKILL'); // no group (not spawned with OWN_GROUP), or already empty
      }
    };
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killGroup();
          }, opts.timeoutMs);
    const settle = () => {
      if (settled || !exited) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      child.stdout!.destroy();
      child.stderr!.destroy();
      resolve({ ...exited, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), timedOut });
    };
    // The command has exited but something still holds its pipes: its own leftover, which goes with
    // the group. The pipes then close once their data is read (none is lost, however late this
    // process gets to read it); only a holder that left the group is given up on, a while later.
    const giveUp = () => {
      killGroup();
      drain = setTimeout(settle, Math.max(drainMs, 2000));
    };
    const take = (into: Buffer[]) => (b: Buffer) => {
      size += b.length;
      if (size > max) killGroup();
      else into.push(b);
    };
    child.stdout!.on('data', take(out));
    child.stderr!.on('data', take(err));
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      drain = setTimeout(giveUp, drainMs);
    });
    child.on('close', settle);
    child.stdin!.on('error', () => {}); // the command may exit without reading its input
    child.stdin!.end(opts.input);
  });
}
