/** The pool's bookkeeping with a fake backend: no namespaces, no root. */
import type { NsHandleInfo } from '../../../lib/addon';
import { WarmPool, checkPoolOptions } from '../../../lib/runtime/pool';

/** A backend whose makes complete when the test says so. */
function fakeBackend() {
  let next = 100;
  const pending: { resolve: (e: NsHandleInfo) => void; reject: (e: Error) => void }[] = [];
  const discarded: number[] = [];
  return {
    pending,
    discarded,
    backend: {
      make: () => new Promise<NsHandleInfo>((resolve, reject) => pending.push({ resolve, reject })),
      discard: (e: NsHandleInfo) => {
        discarded.push(e.fd);
      },
    },
    /** Completes the oldest `n` makes with fresh entries. */
    async complete(n = pending.length) {
      for (const p of pending.splice(0, n)) p.resolve({ fd: next++, dev: 1, ino: next });
      await new Promise((r) => setImmediate(r));
    },
  };
}

const opts = (size: number, concurrency = 2) => ({ network: 'none', size, concurrency });

describe('WarmPool', () => {
  it('fills to its size with at most `concurrency` makes in flight', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(opts(5, 2), f.backend);
    expect(f.pending).toHaveLength(2);
    await f.complete(1);
    expect(f.pending).toHaveLength(2);
    while (f.pending.length) await f.complete();
    expect(pool.status()).toEqual({ network: 'none', size: 5, fill: 5, making: 0, hits: 0, misses: 0 });
    await pool.whenFull();
  });

  it('hands each entry out once, counts hits and misses, and refills', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(opts(3), f.backend);
    while (f.pending.length) await f.complete();
    const got = [pool.take(), pool.take(), pool.take(), pool.take()];
    expect(got[3]).toBeUndefined();
    expect(new Set(got.slice(0, 3).map((e) => e!.fd)).size).toBe(3);
    expect(pool.status()).toMatchObject({ fill: 0, hits: 3, misses: 1, making: 0 }); // refills start after this turn
    await new Promise((r) => setImmediate(r));
    expect(pool.status()).toMatchObject({ making: 2 });
    while (f.pending.length) await f.complete();
    const again = [pool.take()!, pool.take()!, pool.take()!];
    for (const e of again) expect(got.map((g) => g?.fd)).not.toContain(e.fd);
  });

  it('takes back an untouched entry, without counting it as a hit', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(opts(1), f.backend);
    await f.complete();
    const e = pool.take()!;
    pool.giveBack(e);
    await new Promise((r) => setImmediate(r));
    expect(pool.status()).toMatchObject({ fill: 1, hits: 0 });
    expect(f.pending).toHaveLength(0); // full again before the refill would start: nothing made
    expect(f.discarded).toHaveLength(0);
    expect(pool.take()).toBe(e);
  });

  it('shrinks at once and grows in the background', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(opts(4), f.backend);
    while (f.pending.length) await f.complete();
    pool.resize(1);
    expect(pool.status().fill).toBe(1);
    expect(f.discarded).toHaveLength(3);
    pool.resize(3);
    expect(f.pending).toHaveLength(2);
    await f.complete();
    expect(pool.status().fill).toBe(3);
  });

  it('close() discards ready entries and those still being made, and stops refilling', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(opts(4, 1), f.backend);
    await f.complete(1);
    expect(f.pending).toHaveLength(1);
    const closed = pool.close();
    expect(f.discarded).toHaveLength(1);
    await pool.whenFull(); // resolves: nothing more will be made
    await f.complete();
    expect(f.discarded).toHaveLength(2);
    expect(f.pending).toHaveLength(0);
    expect(pool.take()).toBeUndefined();
    expect(pool.status()).toMatchObject({ fill: 0, making: 0 });
    await closed;
  });

  it('close() resolves once asynchronous discards are done, a failed one included', async () => {
    const f = fakeBackend();
    const releases: (() => void)[] = [];
    const pool = new WarmPool(opts(2), {
      make: f.backend.make,
      discard: (e: NsHandleInfo) => new Promise<void>((resolve, reject) => releases.push(() => (e.fd % 2 ? reject(new Error('EBUSY')) : resolve()))),
    });
    await f.complete();
    let done = false;
    const closed = pool.close().then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(releases).toHaveLength(2);
    releases[0]();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    releases[1]();
    await closed;
    expect(done).toBe(true);
  });

  it('a failing make is reported and retried later, not in a loop', async () => {
    jest.useFakeTimers();
    try {
      const f = fakeBackend();
      const pool = new WarmPool(opts(2, 2), f.backend);
      f.pending.splice(0).forEach((p) => p.reject(new Error('EMFILE: too many open files')));
      await Promise.resolve();
      await Promise.resolve();
      expect(pool.status()).toMatchObject({ fill: 0, making: 0, lastError: 'EMFILE: too many open files' });
      expect(f.pending).toHaveLength(0);
      await pool.whenFull(); // not waiting forever while failing
      jest.advanceTimersByTime(250);
      expect(f.pending).toHaveLength(2);
    } finally {
      jest.useRealTimers();
    }
  });

  it('checks its options', () => {
    expect(checkPoolOptions({ network: 'none', size: 8 })).toEqual({ network: 'none', size: 8, concurrency: 2 });
    for (const bad of [
      null,
      { network: 'none' },
      { network: '', size: 1 },
      { network: 'none', size: -1 },
      { network: 'none', size: 1e9 },
      { network: 'none', size: 1, concurrency: 0 },
    ]) {
      expect(() => checkPoolOptions(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
  });
});
