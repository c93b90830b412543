/**
 * Warm sandboxes: network namespaces made ahead of time, so that
 * `createSandbox` hands one out instead of making one, as BuildBuddy's netns
 * pool (buildbuddy#7359), e2b's network slots (e2b-dev/infra pool.go) and
 * BuildKit's `netNSPoolSize` hide the kernel's creation cost. For a native
 * network an entry also holds its attachment (lib/runtime/pool-native).
 *
 * An entry is only ever fresh: made for the pool, handed out once, never
 * taken back after use (a used namespace keeps addresses, routes, neighbours,
 * conntrack entries, sockets, sysctls). It is held by an fd alone, without a
 * bind mount, so the kernel frees it when this process ends, however it ends:
 * entries belong to the process that made them and cannot be handed out by
 * another. Refills run in the background, a bounded number at a time, on
 * podnet's namespace thread; each costs the event loop one small callback.
 */
import { debug } from '../debug';
import { invalidArgument } from '../errors';
import type { NativeAttachment, NsHandleInfo } from '../addon';

export interface PoolOptions {
  /** The network mode whose sandboxes it serves ('none'), or the name of a native network (the default network is one). */
  network: string;
  /** Entries kept ready. */
  size: number;
  /** Entries being made at once (default 2); they queue on one thread anyway, this only bounds the backlog. */
  concurrency?: number;
}

export interface PoolStatus {
  network: string;
  /** The target number of ready entries. */
  size: number;
  /** Ready entries now. */
  fill: number;
  /** Entries being made. */
  making: number;
  /** Creates served from the pool, and those that found it empty (made cold). */
  hits: number;
  misses: number;
  /** The last refill failure, if the last refill failed. */
  lastError?: string;
}

/** A warm namespace, held by its fd; for a native network, with its attachment (no ports) already made. */
export interface WarmEntry {
  ns: NsHandleInfo;
  attachment?: NativeAttachment;
}

/** What a pool needs from its surroundings: make an entry, throw one away (at once, or by a promise). */
export interface PoolBackend<E = WarmEntry> {
  make(): Promise<E>;
  discard(entry: E): void | Promise<void>;
}

/** After a failed refill, wait this long before the next try (a failing kernel call is not retried in a loop). */
const RETRY_MS = 200;
export const MAX_POOL_SIZE = 4096;

export function checkPoolOptions(o: unknown): Required<PoolOptions> {
  if (typeof o !== 'object' || o === null) throw invalidArgument('pool', 'expected { network, size }');
  const { network, size, concurrency = 2 } = o as PoolOptions;
  if (typeof network !== 'string' || network === '') throw invalidArgument('pool network', `expected a network mode, got '${String(network)}'`);
  if (!Number.isInteger(size) || size < 0 || size > MAX_POOL_SIZE)
    throw invalidArgument('pool size', `'${String(size)}' is not an integer in 0-${MAX_POOL_SIZE}`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw invalidArgument('pool concurrency', `'${String(concurrency)}' is not an integer in 1-64`);
  return { network, size, concurrency };
}

export class WarmPool<E = WarmEntry> {
  readonly network: string;
  #size: number;
  #concurrency: number;
  readonly #backend: PoolBackend<E>;
  readonly #onChange: () => void;
  readonly #entries: E[] = [];
  readonly #discarding = new Set<Promise<void>>();
  #made: (() => void)[] = [];
  #making = 0;
  #hits = 0;
  #misses = 0;
  #closed = false;
  #retry?: NodeJS.Timeout;
  #lastError?: string;
  #idle: (() => void)[] = [];
  #kicked = false;

  constructor(opts: Required<PoolOptions>, backend: PoolBackend<E>, onChange: () => void = () => {}) {
    this.network = opts.network;
    this.#size = opts.size;
    this.#concurrency = opts.concurrency;
    this.#backend = backend;
    this.#onChange = onChange;
    this.#refill();
  }

  /** A fresh entry, or undefined when the pool is empty (the caller makes one cold). Never the same entry twice. */
  take(): E | undefined {
    const e = this.#entries.pop();
    if (e) this.#hits++;
    else this.#misses++;
    // Refill after the caller's create has gone on (setImmediate runs after its promise callbacks),
    // so the namespace thread's next unshare does not compete with it for the CPU.
    if (!this.#kicked) {
      this.#kicked = true;
      setImmediate(() => {
        this.#kicked = false;
        this.#refill();
      });
    }
    this.#onChange();
    return e;
  }

  /** An entry taken but never used (its create failed before anything touched it) goes back. */
  giveBack(e: E): void {
    this.#hits--;
    if (this.#closed || this.#entries.length >= this.#size) this.#discard(e);
    else this.#entries.push(e);
    this.#onChange();
  }

  /** Changes the target size: extra entries go at once, missing ones are made in the background. */
  resize(size: number, concurrency = this.#concurrency): void {
    this.#size = size;
    this.#concurrency = concurrency;
    while (this.#entries.length > size) this.#discard(this.#entries.shift()!);
    this.#refill();
    this.#onChange();
  }

  /** Resolves once the pool holds its target size, or nothing more is being made (closed, failing). */
  whenFull(): Promise<void> {
    if (this.#settled()) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /**
   * Stops refilling and discards every entry; entries still being made are
   * discarded when done. Resolves once every discard has finished.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    while (this.#entries.length) this.#discard(this.#entries.pop()!);
    this.#wake();
    this.#onChange();
    while (this.#making > 0 || this.#discarding.size > 0) {
      if (this.#making > 0) await new Promise<void>((r) => this.#made.push(r));
      await Promise.all(this.#discarding);
    }
  }

  /** A discard that fails (an entry whose release a gc finishes) is logged, not thrown: it is the pool's own clean-up. */
  #discard(e: E): void {
    let p: Promise<void>;
    try {
      p = Promise.resolve(this.#backend.discard(e));
    } catch (err) {
      p = Promise.reject(err as Error);
    }
    const tracked = p.catch((err: Error) => debug('pool %s: discard failed: %s', this.network, err.message)).finally(() => this.#discarding.delete(tracked));
    this.#discarding.add(tracked);
  }

  get closed(): boolean {
    return this.#closed;
  }

  status(): PoolStatus {
    const s: PoolStatus = { network: this.network, size: this.#size, fill: this.#entries.length, making: this.#making, hits: this.#hits, misses: this.#misses };
    if (this.#lastError !== undefined) s.lastError = this.#lastError;
    return s;
  }

  #settled(): boolean {
    return this.#closed || this.#retry !== undefined || (!this.#kicked && this.#making === 0 && this.#entries.length >= this.#size);
  }

  #wake(): void {
    if (!this.#settled()) return;
    for (const r of this.#idle.splice(0)) r();
  }

  #refill(): void {
    while (!this.#closed && !this.#retry && this.#making < this.#concurrency && this.#entries.length + this.#making < this.#size) {
      this.#making++;
      this.#backend.make().then(
        (e) => {
          this.#making--;
          this.#lastError = undefined;
          if (this.#closed || this.#entries.length >= this.#size) this.#discard(e);
          else this.#entries.push(e);
          for (const r of this.#made.splice(0)) r();
          this.#refill();
          this.#wake();
          this.#onChange();
        },
        (err: Error) => {
          this.#making--;
          for (const r of this.#made.splice(0)) r();
          this.#lastError = err.message;
          debug('pool %s: refill failed: %s', this.network, err.message);
          if (!this.#closed && !this.#retry) {
            this.#retry = setTimeout(() => {
              this.#retry = undefined;
              this.#refill();
            }, RETRY_MS).unref();
          }
          this.#wake();
          this.#onChange();
        },
      );
    }
  }
}
