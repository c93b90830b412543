/**
 * Pool status on disk, so that `podnet pool` (another process) sees every
 * pool using a state dir: each runtime with pools writes
 * `<stateDir>/pools/<pid>.<n>.json` (debounced: hits and fill move on every
 * create), and removes it when its last pool goes, at close and at exit. The
 * warm namespaces themselves need no file: they are fds, freed with the
 * process; a native network's entries are found by their attachments' ids
 * (lib/runtime/pool-native).
 */
import { rmSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

import { writeFileAtomic } from '../atomic';
import { debug } from '../debug';
import type { PoolStatus } from './pool';
import { isAlive, selfRef, type ProcRef } from './proc';

/** The pools of one runtime sharing a state dir, as it last published them. */
export interface ProcessPools {
  owner: ProcRef;
  ownerAlive: boolean;
  updatedAt: string;
  pools: PoolStatus[];
  /** The status file's name under `<stateDir>/pools`. */
  file: string;
}

/** How often at most a runtime rewrites its status. */
const PUBLISH_MS = 100;
/** Runtimes of this process, numbered for their status files. */
let runtimes = 0;

export class PoolStatusFile {
  readonly file: string;
  readonly #read: () => PoolStatus[];
  #timer?: NodeJS.Timeout;
  #onExit?: () => void;

  /** `read` gives the runtime's current pools (none: the file goes). */
  constructor(stateDir: string, read: () => PoolStatus[]) {
    this.file = path.join(stateDir, 'pools', `${process.pid}.${++runtimes}.json`);
    this.#read = read;
  }

  /** Publishes the current status soon (at most every PUBLISH_MS). */
  changed(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        const pools = this.#read();
        if (pools.length === 0) return this.close();
        writeFileAtomic(this.file, JSON.stringify({ owner: selfRef(), updatedAt: new Date().toISOString(), pools }));
        if (!this.#onExit) {
          const file = this.file;
          this.#onExit = () => rmSync(file, { force: true });
          process.once('exit', this.#onExit);
        }
      } catch (err) {
        debug('pool status %s: %s', this.file, (err as Error).message);
      }
    }, PUBLISH_MS).unref();
  }

  /** Removes the file now. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    rmSync(this.file, { force: true });
    if (this.#onExit) process.removeListener('exit', this.#onExit);
    this.#onExit = undefined;
  }
}

/** Every runtime's published pools in a state dir, with whether its process still runs. */
export async function readPoolStatus(stateDir: string): Promise<ProcessPools[]> {
  const dir = path.join(stateDir, 'pools');
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: ProcessPools[] = [];
  for (const n of names.filter((f) => f.endsWith('.json'))) {
    try {
      const p = JSON.parse(await readFile(path.join(dir, n), 'utf8')) as Omit<ProcessPools, 'ownerAlive' | 'file'>;
      out.push({ ...p, ownerAlive: isAlive(p.owner), file: n });
    } catch {
      // being replaced, or its owner's exit removed it meanwhile
    }
  }
  return out.sort((a, b) => a.owner.pid - b.owner.pid);
}

/** Removes a dead runtime's status file. */
export async function removePoolStatus(stateDir: string, p: ProcessPools): Promise<void> {
  await rm(path.join(stateDir, 'pools', p.file), { force: true });
}
