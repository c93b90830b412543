/**
 * Soak: create/teardown cycles mixing every network mode (MODES) in one owner
 * process; its fds, threads and RSS sampled at start, middle and end; then a
 * census of leftovers of every kind. Quick in `npm test`, 1000 cycles in
 * `npm run soak`. Resources: rel-net210 (pnrel210, 10.89.210.0/24), native network
 * rel-nat210 (10.89.100.0/24), ports 42100-42399.
 */
import { FULL, MODES, census, censusTotal, printFigures, runWorker, setUpSuite, tearDownSuite } from '../helpers/reliability';
import { describeRoot } from '../helpers/system';

jest.setTimeout(FULL ? 3_600_000 : 180_000);

const CYCLES = FULL ? 1000 : 2 * MODES.length;

describeRoot('soak: create/teardown cycles over every mode', () => {
  let x: Awaited<ReturnType<typeof setUpSuite>> | undefined;
  beforeAll(async () => {
    x = await setUpSuite(210, [42100, 42399]);
  });
  afterAll(() => tearDownSuite(x));

  test(`${CYCLES} cycles: no errors, flat fds and threads, nothing left`, async () => {
    const { suite, env, netnsPrefix, keep } = x!;
    const sandboxes = Array.from({ length: CYCLES }, (_, i) => MODES[i % MODES.length].options(`rel-soak-${i}`, env));
    const t0 = Date.now();
    const r = await runWorker({ runtime: suite.runtime, how: 'cycle', sandboxes, samples: [0, Math.floor(CYCLES / 2), CYCLES] });
    const seconds = (Date.now() - t0) / 1000;
    const left = census(suite, netnsPrefix, keep);
    const [start, middle, end] = r.samples;
    printFigures('soak', {
      cycles: CYCLES,
      modes: MODES.map((m) => m.name),
      seconds,
      start,
      middle,
      end,
      errors: r.errors.length,
      leftovers: censusTotal(left),
    });
    expect(r.errors).toEqual([]);
    expect(left).toEqual(Object.fromEntries(Object.keys(left).map((k) => [k, []])));
    // After the first half has warmed every code path, the second half adds no fd or thread.
    expect(end.fds).toBeLessThanOrEqual(middle.fds);
    expect(end.threads).toBeLessThanOrEqual(middle.threads);
    if (FULL) {
      // Samples follow a full collection: the JS heap a leak would grow is flat. RSS also holds what
      // malloc keeps for the process's threads (the native engine's nftables and netlink buffers):
      // it levels off, at a height that varies from run to run by some 20 MiB (1000 cycles, 8 modes).
      expect(end.heapMiB - middle.heapMiB).toBeLessThan(4);
      expect(end.rssMiB - middle.rssMiB).toBeLessThan(32);
    }
  });
});
