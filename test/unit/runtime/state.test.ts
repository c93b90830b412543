/** The state store's exclusive claim of an id and what readers make of a create in progress; a temp dir, no root. */
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { StateStore, type SandboxState } from '../../../lib/runtime/state';

const state = (id: string, extra: Partial<SandboxState> = {}): SandboxState => ({
  version: 1,
  id,
  name: id,
  cniPodName: id,
  mode: 'none',
  status: 'creating',
  ownsNetns: false,
  networks: [],
  portMappings: [],
  networkOptions: [],
  results: [],
  owner: { pid: process.pid, start: 1 },
  helpers: {},
  createdAt: new Date().toISOString(),
  ...extra,
});

describe('StateStore', () => {
  let dir = '';
  let store: StateStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'podnet-state-'));
    store = new StateStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('create() claims an id once: the second create of it is EEXIST and changes nothing', async () => {
    await store.create(state('a'));
    const before = readFileSync(path.join(dir, 'sandboxes', 'a.json'), 'utf8');
    await expect(store.create(state('a', { status: 'ready' }))).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringContaining("'a'") });
    expect(readFileSync(path.join(dir, 'sandboxes', 'a.json'), 'utf8')).toBe(before);
    expect(await store.read('a')).toMatchObject({ id: 'a', status: 'creating' });
  });

  it('of many concurrent creates of one id, exactly one wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.create(state('same', { name: `n${i}` }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(Array(19).fill('EEXIST'));
  });

  it('a state of a page or more is still created whole and exclusively', async () => {
    const big = state('big', { networkOptions: ['x'.repeat(5000)] });
    await store.create(big);
    expect((await store.read('big'))!.networkOptions[0]).toHaveLength(5000);
    await expect(store.create(big)).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('an empty state file is a create in progress: read and list skip it, gc sweeps it after a minute', async () => {
    await store.create(state('kept'));
    const empty = path.join(dir, 'sandboxes', 'half.json');
    writeFileSync(empty, '');
    expect(await store.read('half')).toBeUndefined();
    expect((await store.list()).map((s) => s.id)).toEqual(['kept']);
    await expect(store.create(state('half'))).rejects.toMatchObject({ code: 'EEXIST' });
    await store.sweepTemp();
    expect(existsSync(empty)).toBe(true); // young: maybe still being written
    const old = new Date(Date.now() - 120_000);
    utimesSync(empty, old, old);
    utimesSync(path.join(dir, 'sandboxes', 'kept.json'), old, old);
    await store.sweepTemp();
    expect(existsSync(empty)).toBe(false);
    expect(await store.read('kept')).toMatchObject({ id: 'kept' }); // old but whole: kept
  });
});
