/**
 * Running a command to completion (argv, never a shell): its output collected
 * up to a limit, an optional time limit (SIGKILL), input written to stdin. It
 * rejects only when the command cannot be started (ENOENT, EACCES, ETXTBSY),
 * so callers tell "could not run" from "ran and failed".
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string | Buffer;
  /** Kill (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Kill once stdout and stderr together exceed this many bytes; default 16 MiB. */
  maxOutput?: number;
}

export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return collect(spawn(cmd, args, { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] }), opts);
}

/** Collects a started child (stdio all pipes) as runCommand does. */
export function collect(child: ChildProcess, opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutput ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const take = (into: Buffer[]) => (b: Buffer) => {
      size += b.length;
      if (size > max) child.kill('SIGKILL');
      else into.push(b);
    };
    child.stdout!.on('data', take(out));
    child.stderr!.on('data', take(err));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), timedOut });
    });
    child.stdin!.on('error', () => {}); // the command may exit without reading its input
    child.stdin!.end(opts.input);
  });
}
