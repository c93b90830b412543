/** Process identity that survives PID reuse: a PID plus its start time (clock ticks since boot). */
import { readFileSync } from 'node:fs';

export interface ProcRef {
  pid: number;
  start: number;
}

/** State (field 3) and start time (field 22) from /proc/PID/stat, or undefined if it is gone. */
function readStat(pid: number): { state: string; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], start: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

export function procRef(pid: number): ProcRef | undefined {
  const st = readStat(pid);
  return st && { pid, start: st.start };
}

let self: ProcRef | undefined;

/** This process (read once: its start time never changes). */
export function selfRef(): ProcRef {
  return (self ??= procRef(process.pid)!);
}

/** Whether the very process `ref` names still runs (not a zombie, not a reused PID). */
export function isAlive(ref: ProcRef | undefined): boolean {
  const st = ref && readStat(ref.pid);
  return st !== undefined && st.start === ref!.start && st.state !== 'Z';
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
