/** Fds a helper spawn creates (pipes, memfds, pidfds): a count that jest's own fd churn does not disturb much. */
import { readdirSync, readlinkSync } from 'node:fs';

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
