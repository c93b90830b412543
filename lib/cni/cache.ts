/**
 * The attachment cache, in libcni's layout so other CNI tools can read it:
 * `<cacheDir>/results/<network>-<containerID>-<ifname>`, JSON of kind
 * `cniCacheV1` with the list's bytes (base64), the args and the ADD result.
 * Written atomically (temp file + rename); dir 0700, file 0600.
 *
 * The per-pod file operations here, in config.ts and exec.ts are synchronous on
 * purpose: each is a few microseconds of metadata work on a small local file,
 * while a thread-pool round trip costs a wake-up (milliseconds on a loaded
 * machine), which measurably added to every setup and teardown.
 */
import { readFileSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { writeFileAtomic } from '../atomic';
import { PodnetError } from '../errors';

export const DEFAULT_CACHE_DIR = '/var/lib/cni';

export interface CacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  /** The network configuration list, base64 (Go's encoding of []byte). */
  config: string;
  ifName: string;
  networkName: string;
  netns: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  /**
   * The list's ADD result. Absent before the first plugin has answered (the
   * entry is written before ADD starts); while `adding`, the result of the
   * last plugin that answered, so a DEL after a crash has its prevResult.
   */
  result?: unknown;
  /** Set while the list's ADD is in progress (a podnet field; libcni readers ignore it). */
  adding?: boolean;
}

export function cachePath(cacheDir: string, network: string, containerId: string, ifname: string): string {
  return path.join(cacheDir, 'results', `${network}-${containerId}-${ifname}`);
}

export async function writeCache(cacheDir: string, entry: CacheEntry): Promise<void> {
  const file = cachePath(cacheDir, entry.networkName, entry.containerId, entry.ifName);
  try {
    writeFileAtomic(file, JSON.stringify(entry));
  } catch (err) {
    throw new PodnetError((err as NodeJS.ErrnoException).code ?? 'EIO', `write CNI cache '${file}': ${(err as Error).message}`, { path: file, cause: err });
  }
}

function isEntry(v: unknown): v is CacheEntry {
  const e = v as CacheEntry;
  return (
    typeof e === 'object' &&
    e !== null &&
    e.kind === 'cniCacheV1' &&
    typeof e.containerId === 'string' &&
    typeof e.config === 'string' &&
    typeof e.ifName === 'string' &&
    typeof e.networkName === 'string'
  );
}

/** The entry, or undefined when there is none (or it is unreadable: treated as absent). */
export async function readCache(file: string): Promise<CacheEntry | undefined> {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    return isEntry(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Cache entries whose file name passes `nameFilter` and whose content passes `keep`. */
async function findCache(cacheDir: string, nameFilter: (n: string) => boolean, keep: (e: CacheEntry) => boolean): Promise<CacheEntry[]> {
  const dir = path.join(cacheDir, 'results');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const entries = await Promise.all(names.filter((n) => !n.startsWith('.') && nameFilter(n)).map((n) => readCache(path.join(dir, n))));
  return entries.filter((e): e is CacheEntry => e !== undefined && keep(e));
}

/** Every cached attachment of a container, in no particular order. */
export function listCache(cacheDir: string, containerId: string): Promise<CacheEntry[]> {
  return findCache(
    cacheDir,
    (n) => n.includes(`-${containerId}-`),
    (e) => e.containerId === containerId,
  );
}

/** Every cached attachment (for garbage collection). */
export function listAllCache(cacheDir: string): Promise<CacheEntry[]> {
  return findCache(
    cacheDir,
    () => true,
    () => true,
  );
}

/** Every cached attachment on a network (to refuse removing a network in use). */
export function listCacheByNetwork(cacheDir: string, network: string): Promise<CacheEntry[]> {
  return findCache(
    cacheDir,
    (n) => n.startsWith(`${network}-`),
    (e) => e.networkName === network,
  );
}

export async function removeCache(cacheDir: string, network: string, containerId: string, ifname: string): Promise<void> {
  try {
    unlinkSync(cachePath(cacheDir, network, containerId, ifname));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
