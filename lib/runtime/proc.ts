/** Process identity that survives PID reuse: a PID plus its start time (clock ticks since boot). */
import { readFileSync } from 'node:fs';

export interface ProcRef {
  pid: number;
  start: number;
}

/** Start time of `pid` from /proc/PID/stat (field 22), or undefined if it is gone. */
export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

export function procRef(pid: number): ProcRef | undefined {
  const start = startTime(pid);
  return start === undefined ? undefined : { pid, start };
}

/** Whether the very process `ref` names still runs (not a zombie, not a reused PID). */
export function isAlive(ref: ProcRef | undefined): boolean {
  if (!ref) return false;
  if (startTime(ref.pid) !== ref.start) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${ref.pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Sends `signal` to the process `ref` names, only if it is still that process. */
export function signalIfAlive(ref: ProcRef | undefined, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  if (!ref || !isAlive(ref)) return false;
  try {
    process.kill(ref.pid, signal);
    return true;
  } catch {
    return false;
  }
}
