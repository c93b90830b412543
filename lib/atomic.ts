/**
 * Whole-or-nothing file writes, for state that other processes read at any
 * moment (sandbox state, the CNI cache, network configurations): the data goes
 * to a hidden temp file in the same directory (`.<name>.<pid>-<hex>.tmp`), then is
 * renamed over the target, or linked to it when `exclusive` (EEXIST rather than
 * replacing). Synchronous: each is a few microseconds on these small files.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface AtomicWriteOptions {
  /** File mode (default 0600). */
  mode?: number;
  /** Mode of the directory when it has to be created (default 0700). */
  dirMode?: number;
  /** Fail with EEXIST instead of replacing an existing file. */
  exclusive?: boolean;
}

export function writeFileAtomic(file: string, data: string | Buffer, opts: AtomicWriteOptions = {}): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const write = () => writeFileSync(tmp, data, { mode: opts.mode ?? 0o600 });
  try {
    try {
      write();
    } catch (err) {
      // The directory usually exists: create it only when the write says it does not.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(path.dirname(file), { recursive: true, mode: opts.dirMode ?? 0o700 });
      write();
    }
    if (opts.exclusive) linkSync(tmp, file);
    else renameSync(tmp, file);
  } finally {
    try {
      unlinkSync(tmp); // gone already after a rename
    } catch {
      /* renamed */
    }
  }
}

/**
 * Removes the temp files of writes a crash interrupted in `dir`: those whose
 * writer is gone (the pid in the name), and any older than a minute (a pid
 * reused meanwhile). A write is synchronous, so a live writer's file lasts
 * microseconds.
 */
export function sweepTemp(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\..+\.(\d+)-[0-9a-f]+\.tmp$/.exec(n);
    if (!m && !n.endsWith('.tmp')) continue;
    const p = path.join(dir, n);
    try {
      if ((m && !existsSync(`/proc/${m[1]}`)) || Date.now() - statSync(p).mtimeMs > 60_000) unlinkSync(p);
    } catch {
      // gone meanwhile
    }
  }
}
