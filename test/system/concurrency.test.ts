/**
 * Concurrency: several owner processes create sandboxes of every mode at
 * once, hold them together, then tear them down at once. Addresses and host
 * ports are distinct, every create succeeds, nothing is left.
 * Resources: rel-net212 (pnrel212, 10.89.212.0/24), native network rel-nat212 (10.89.102.0/24),
 * ports 42700-42899.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { FULL, MODES, census, censusTotal, printFigures, setUpSuite, startWorker, tearDownSuite, waitFor } from '../helpers/reliability';
import { describeRoot } from '../helpers/system';

jest.setTimeout(FULL ? 1_800_000 : 180_000);

const PROCESSES = FULL ? 6 : 3;
const PER_PROCESS = FULL ? 4 * MODES.length : MODES.length;

describeRoot('concurrency: owners creating and tearing down at once', () => {
  let x: Awaited<ReturnType<typeof setUpSuite>> | undefined;
  beforeAll(async () => {
    x = await setUpSuite(212, [42700, 42899]);
  });
  afterAll(() => tearDownSuite(x));

  test(`${PROCESSES} processes x ${PER_PROCESS} sandboxes: distinct addresses and ports, nothing left`, async () => {
    const { suite, env, netnsPrefix, keep } = x!;
    const release = path.join(suite.dir, 'release');
    const t0 = Date.now();
    const workers = Array.from({ length: PROCESSES }, (_, p) =>
      startWorker({
        runtime: suite.runtime,
        how: 'hold',
        release,
        sandboxes: Array.from({ length: PER_PROCESS }, (_, i) => MODES[(i + p) % MODES.length].options(`rel-conc-${p}-${i}`, env)),
      }),
    );
    await waitFor('every owner to hold its sandboxes', () => workers.every((w) => w.lines.includes('HELD')), 120_000);
    const created = Date.now() - t0;
    const held = (await x!.rt.list()).filter((s) => s.id.startsWith('rel-conc-')).length;
    writeFileSync(release, '');
    const reports = await Promise.all(workers.map((w) => w.done));
    const addresses = reports.flatMap((r) => r.addresses);
    const ports = reports.flatMap((r) => r.ports);
    const left = census(suite, netnsPrefix, keep);
    printFigures('concurrency', {
      processes: PROCESSES,
      sandboxes: PROCESSES * PER_PROCESS,
      held,
      createSeconds: created / 1000,
      totalSeconds: (Date.now() - t0) / 1000,
      addresses: addresses.length,
      ports: ports.length,
      leftovers: censusTotal(left),
    });
    expect(reports.flatMap((r) => r.errors)).toEqual([]);
    expect(held).toBe(PROCESSES * PER_PROCESS);
    expect(new Set(addresses).size).toBe(addresses.length);
    expect(addresses.length).toBeGreaterThanOrEqual(PROCESSES * Math.floor(PER_PROCESS / MODES.length));
    expect(new Set(ports).size).toBe(ports.length);
    expect(left).toEqual(Object.fromEntries(Object.keys(left).map((k) => [k, []])));
  });
});
