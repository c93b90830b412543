/** Fds a helper spawn creates (pipes, memfds, pidfds): a count that jest's own fd churn does not disturb much. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export function spawnFdCount(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/^(pipe:|\/memfd:|anon_inode:\[pidfd\])/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

/**
 * Waits until process `pid` is blocked in read(2) on `fd` (per /proc/<pid>/syscall:
 * x86-64 syscall 0, first argument the fd): its start-up (the dynamic loader,
 * locale files) is over and its fd table is the one it keeps. Fails at the deadline.
 */
export async function waitBlockedInRead(pid: number, fd = 0, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  let last = '';
  for (;;) {
    try {
      last = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim();
    } catch (e) {
      last = String(e);
    }
    const [nr, arg0] = last.split(' ');
    if (nr === '0' && Number(arg0) === fd) return;
    if (Date.now() > end) throw new Error(`process ${pid} not blocked in read(${fd}) after ${deadlineMs} ms (syscall: ${last})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
