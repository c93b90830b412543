/** Cross-process exclusive locks on files (flock), for the runtime's state directory. */
import { fromNative } from '../errors';
import { native } from '../addon';

// Callers in this process queue here first, so at most one libuv pool thread
// per path ever blocks in flock: many blocked pool threads would starve the
// very work (namespace and netlink calls) the lock holder is waiting for.
const tails = new Map<string, Promise<void>>();

/** Runs `fn` holding an exclusive lock on `path`; the lock is released however `fn` ends. */
export async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const prev = tails.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  tails.set(path, tail);
  await prev;
  try {
    let fd: number;
    try {
      fd = await native.lockFile(path);
    } catch (err) {
      throw fromNative(err, `lock '${path}'`);
    }
    try {
      return await fn();
    } finally {
      native.closeFd(fd);
    }
  } finally {
    release();
    if (tails.get(path) === tail) tails.delete(path);
  }
}
