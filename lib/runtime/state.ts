/**
 * Sandbox state on disk, so another process (or this program after a crash)
 * can inspect and tear a sandbox down: one JSON file per sandbox, written
 * atomically (temp file + rename), and one lock file serializing changes
 * across the processes sharing the directory.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { sweepTemp, writeFileAtomic } from '../atomic';
import type { PortMapping } from '../types';
import type { PodNetworkResult } from '../cni/runtime';
import { ErrorCode, PodnetError } from '../errors';
import { checkPath } from '../validate';
import { withLock } from './lock';
import type { ProcRef } from './proc';

/** The helper processes a sandbox can have: a user-namespace holder, slirp4netns, pasta, the port forwarder. */
export type HelperName = 'holder' | 'slirp' | 'pasta' | 'forwarder';
export type HelperRef = ProcRef & { apiSocket?: string };

/** A helper that died while its sandbox was up (nobody stopped it): the sandbox's network is broken until teardown. */
export interface HelperExitNote {
  helper: HelperName;
  pid: number;
  /** Exit status, or the signal that killed it. */
  code: number | null;
  signal: string | null;
  /** When this process saw it exit (ISO 8601). */
  at: string;
  /** The runtime's error message (names the sandbox, the helper, how it ended, its last output). */
  message: string;
}

export type NetworkMode = 'bridge' | 'slirp4netns' | 'pasta' | 'none' | 'host' | `ns:${string}` | `container:${string}`;

export interface SandboxState {
  version: 1;
  id: string;
  name: string;
  podId?: string;
  /** The name CNI plugins see: the pod's when in a pod, else the sandbox's. Same for setup and teardown. */
  cniPodName: string;
  mode: NetworkMode;
  /** Which driver serves bridge mode's networks (lib/drivers/bridge); absent means CNI. */
  driver?: 'native' | 'cni';
  /** The native engine's container id of its attachments when not `<state dir prefix><id>`: a warm sandbox keeps its pool entry's. */
  nativeContainerId?: string;
  /** 'creating' until set-up completes; a 'creating' state whose owner died is garbage. */
  status: 'creating' | 'ready' | 'removing';
  netnsPath?: string;
  /** Whether the runtime made the namespace (and so removes it at teardown). */
  ownsNetns: boolean;
  usernsPath?: string;
  networks: string[];
  portMappings: PortMapping[];
  staticIP?: string;
  staticMAC?: string;
  networkOptions: string[];
  results: PodNetworkResult[];
  /** The sandbox whose namespace this one shares (container:<id> mode). */
  joins?: string;
  /** The end of the container:<id> chain: the sandbox that owns the namespace (fixed: it cannot go while joined). */
  netnsOwner?: string;
  owner: ProcRef;
  /** The process tearing it down (status 'removing'). */
  remover?: ProcRef;
  /** Lives only as long as its owner (podnet run, demo): gc collects it once the owner is dead. */
  ephemeral?: boolean;
  /** Helper processes, so a fresh process can stop them (only if still the same process). */
  helpers: Partial<Record<HelperName, HelperRef>>;
  /** Helpers that died unasked, in the order seen (the runtime's 'helperExit' event); absent while all run. */
  helperExits?: HelperExitNote[];
  createdAt: string;
}

/** The state dir must be a real directory of this user that no one else can write (it may sit in /tmp). */
async function checkOwnDir(dir: string): Promise<void> {
  const uid = process.geteuid?.() ?? 0;
  const refuse = (why: string, cause?: unknown) =>
    new PodnetError(
      ErrorCode.STATE_DIR,
      `state dir '${dir}' ${why}: it must be a directory owned by uid ${uid} and writable only by it${uid ? ' (set XDG_RUNTIME_DIR, or pass stateDir)' : ''}`,
      {
        path: dir,
        cause,
      },
    );
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw refuse(`cannot be created (${(err as NodeJS.ErrnoException).code})`, err);
  }
  const st = await lstat(dir);
  if (!st.isDirectory()) throw refuse('is not a directory');
  if (st.uid !== uid) throw refuse(`belongs to uid ${st.uid}`);
  if ((st.mode & 0o022) !== 0) throw refuse('is writable by others');
}

export class StateStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = checkPath('stateDir', dir);
  }

  private file(id: string): string {
    return path.join(this.dir, 'sandboxes', `${id}.json`);
  }

  #ready?: Promise<void>;

  /** Runs `fn` holding the store's cross-process lock. Keep `fn` short: no network set-up inside. */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    await this.#ensureDir();
    return withLock(path.join(this.dir, 'lock'), fn);
  }

  /** Once per store, shared by concurrent first calls; a failure is tried again by the next call. */
  #ensureDir(): Promise<void> {
    this.#ready ??= this.#prepareDir().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async #prepareDir(): Promise<void> {
    // The dir itself first: another user's /tmp dir is refused before anything is made in it.
    await checkOwnDir(this.dir);
    await mkdir(path.join(this.dir, 'sandboxes'), { recursive: true, mode: 0o700 });
    await this.#markEarlierJoiners();
  }

  /**
   * A state dir written before joiner marks existed has sandboxes that joined
   * others unmarked: their marks are made once, aside, and renamed into place
   * whole (a process doing the same meanwhile wins, with the same marks).
   */
  async #markEarlierJoiners(): Promise<void> {
    const root = path.join(this.dir, 'joiners');
    if (
      await stat(root).then(
        () => true,
        () => false,
      )
    )
      return;
    const aside = path.join(this.dir, `.joiners-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    await mkdir(aside, { recursive: true, mode: 0o700 });
    for (const s of await this.list()) {
      if (s.joins === undefined) continue;
      await mkdir(path.join(aside, s.joins), { recursive: true, mode: 0o700 });
      await writeFile(path.join(aside, s.joins, s.id), '', { mode: 0o600 });
    }
    await rename(aside, root).catch(() => rm(aside, { recursive: true, force: true }));
  }

  /**
   * Writes a new sandbox's state only if its id is free, with no lock: a temp
   * file written in whole, then linked to the state's name (EEXIST if the id
   * is taken). Never an empty state: an owner killed half-way leaves only a
   * temp file naming its pid, which gc removes at once (an O_EXCL create and
   * a write would leave an empty state that no one can attribute).
   */
  async create(state: SandboxState): Promise<void> {
    await this.#ensureDir();
    try {
      writeFileAtomic(this.file(state.id), JSON.stringify(state, null, 2), { exclusive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw this.#exists(state.id);
      throw err;
    }
  }

  #exists(id: string): PodnetError {
    return new PodnetError('EEXIST', `sandbox '${id}' already exists`, { path: this.file(id) });
  }

  async read(id: string): Promise<SandboxState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (text === '') return undefined; // being created (see create)
    try {
      return JSON.parse(text) as SandboxState;
    } catch (err) {
      throw new PodnetError(ErrorCode.STATE_CORRUPT, `sandbox state '${this.file(id)}' is not valid JSON`, { path: this.file(id), cause: err });
    }
  }

  async write(state: SandboxState): Promise<void> {
    writeFileAtomic(this.file(state.id), JSON.stringify(state, null, 2));
  }

  /** Removes a sandbox's state, its (empty) joiners' directory, and its mark under the sandbox it joined. */
  async remove(id: string, joins?: string): Promise<void> {
    await rm(this.file(id), { force: true });
    await rm(this.#joinersDir(id), { recursive: true, force: true });
    if (joins !== undefined) await rm(path.join(this.#joinersDir(joins), id), { force: true });
  }

  #joinersDir(target: string): string {
    return path.join(this.dir, 'joiners', target);
  }

  /**
   * Marks `joiner` as sharing `target`'s namespace, before the joiner's state
   * is written (under the lock), so that `target`'s teardown finds its joiners
   * by one readdir instead of reading every sandbox's state.
   */
  async markJoiner(target: string, joiner: string): Promise<void> {
    await mkdir(this.#joinersDir(target), { recursive: true, mode: 0o700 });
    await writeFile(path.join(this.#joinersDir(target), joiner), '', { mode: 0o600 });
  }

  /** The sandboxes sharing `target`'s namespace (call under the lock); a mark whose joiner is gone (a crash) is dropped. */
  async joinersOf(target: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#joinersDir(target));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const joiners: string[] = [];
    for (const n of names) {
      const s = await this.read(n).catch(() => undefined);
      if (s?.joins === target) joiners.push(n);
      else if (!n.startsWith('.')) await rm(path.join(this.#joinersDir(target), n), { force: true });
    }
    return joiners;
  }

  /** Removes what writes interrupted by a crash left (older than a minute): temp files, empty states. */
  async sweepTemp(): Promise<void> {
    const dir = path.join(this.dir, 'sandboxes');
    sweepTemp(dir); // temp files of writers that are gone, at once
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names.filter((f) => f.endsWith('.tmp') || f.endsWith('.json'))) {
      const st = await stat(path.join(dir, n)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 60_000 && (n.endsWith('.tmp') || st.size === 0)) await rm(path.join(dir, n), { force: true });
    }
  }

  async list(): Promise<SandboxState[]> {
    let names: string[];
    try {
      names = await readdir(path.join(this.dir, 'sandboxes'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      throw new PodnetError(ErrorCode.STATE_DIR, `state dir '${this.dir}': cannot list its sandboxes (${code})`, { path: this.dir, cause: err });
    }
    const states = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.read(n.slice(0, -5)).catch(() => undefined)));
    return states.filter((s): s is SandboxState => s !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
}
