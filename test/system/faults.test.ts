/**
 * Fault injection: owners SIGKILLed at random points of create and teardown
 * in every mode (MODES), CNI plugins that fail, hang or fork, and helpers
 * that die; after each fault, gc in a fresh process, then a census of
 * leftovers of every kind (namespaces, mounts, state, cache, leases, links,
 * iptables and nftables rules, processes). Quick in `npm test`, >= 200 faults
 * in `npm run soak`. Resources: rel-net211 (pnrel211, 10.89.211.0/24), rel-net214..216
 * (pnrel214..216, 10.89.214-216.0/24), native network rel-nat211 (10.89.101.0/24), ports 42400-42699.
 */
import {
  FULL,
  MODES,
  PASS_THROUGH,
  census,
  censusTotal,
  printFigures,
  runWorker,
  setUpSuite,
  startWorker,
  tearDownSuite,
  waitFor,
  writeChain,
  writePlugin,
} from '../helpers/reliability';
import { describeRoot } from '../helpers/system';

jest.setTimeout(FULL ? 3_600_000 : 300_000);

type Setup = Awaited<ReturnType<typeof setUpSuite>>;

/** A fault: what to run, and how it is injected. Add one entry for a new kind of fault. */
interface Fault {
  name: string;
  run(x: Setup, id: string): Promise<string>;
}

/** An owner cycling create/teardown of `options`, SIGKILLed after a random delay; returns the step it was killed in. */
async function killOwner(x: Setup, options: Record<string, unknown>, maxDelayMs: number): Promise<string> {
  // Ephemeral: a sandbox is meant to outlive its owner unless it says otherwise; these die with theirs.
  const w = startWorker({ runtime: x.suite.runtime, how: 'loop', sandboxes: [{ ...options, ephemeral: true }], expectErrors: true });
  await waitFor('the owner to start', () => w.lines.some((l) => l.startsWith('STEP')), 30_000);
  await new Promise((r) => setTimeout(r, Math.random() * maxDelayMs));
  const at = w.lines
    .filter((l) => l.startsWith('STEP'))
    .pop()!
    .split(' ')[1];
  w.child.kill('SIGKILL');
  await w.done.catch(() => {});
  return at;
}

function faults(x: Setup): Fault[] {
  const bin = x.suite.runtime.cni.binDirs[0];
  writePlugin(bin, 'rel-fail', `echo '{"cniVersion":"1.0.0","code":7,"msg":"injected failure"}'; exit 1`);
  writePlugin(bin, 'rel-hang', 'exec sleep 3100');
  writePlugin(bin, 'rel-fork', `sleep 3101 & ${PASS_THROUGH}`);
  writePlugin(bin, 'rel-pass', PASS_THROUGH);
  const chains = {
    fail: writeChain(x.suite, 214, { type: 'rel-fail' }),
    hang: writeChain(x.suite, 215, { type: 'rel-hang' }),
    fork: writeChain(x.suite, 216, { type: 'rel-fork' }),
  };
  const list: Fault[] = MODES.map((m) => ({ name: `owner killed: ${m.name}`, run: (x2, id) => killOwner(x2, m.options(id, x2.env), 800) }));
  for (const [kind, network] of Object.entries(chains)) {
    list.push({
      name: `plugin ${kind}s, owner killed`,
      run: (x2, id) => killOwner(x2, { id, networks: [network], portMappings: [{ hostPort: x2.env.port(), containerPort: 80 }] }, 2500),
    });
  }
  for (const [mode, helper] of [
    ['slirp4netns', 'slirp'],
    ['slirp4netns', 'forwarder'],
    ['pasta', 'pasta'],
  ] as const) {
    list.push({
      name: `${helper} dies`,
      run: async (x2, id) => {
        await x2.rt.createSandbox(MODES.find((m) => m.name === mode)!.options(id, x2.env) as never);
        const pid = (await x2.rt.get(id))!.helpers[helper]!.pid;
        process.kill(pid, 'SIGKILL');
        return 'ready';
      },
    });
  }
  return list;
}

describeRoot('fault injection: killed owners, misbehaving plugins, dying helpers; gc in a fresh process', () => {
  let x: Setup | undefined;
  beforeAll(async () => {
    x = await setUpSuite(211, [42400, 42699]);
  });
  afterAll(() => tearDownSuite(x));

  test('every fault is cleaned up by gc to zero leftovers', async () => {
    const list = faults(x!);
    const total = FULL ? Math.max(200, list.length * 20) : list.length;
    const byFault: Record<string, { n: number; at: Record<string, number>; leftovers: number }> = {};
    const dirty: { fault: string; left: Record<string, string[]>; gcErrors: unknown[] }[] = [];
    const t0 = Date.now();
    for (let i = 0; i < total; i++) {
      const f = list[i % list.length];
      const at = await f.run(x!, `rel-fault-${i}`);
      const gc = await runWorker({ runtime: x!.suite.runtime, how: 'gc' });
      const left = census(x!.suite, x!.netnsPrefix, x!.keep);
      const n = censusTotal(left);
      const rec = (byFault[f.name] ??= { n: 0, at: {}, leftovers: 0 });
      rec.n++;
      rec.at[at] = (rec.at[at] ?? 0) + 1;
      rec.leftovers += n;
      if (n || gc.errors.length)
        dirty.push({ fault: `${i} ${f.name} at ${at}`, left: Object.fromEntries(Object.entries(left).filter(([, v]) => v.length)), gcErrors: gc.errors });
    }
    printFigures('faults', { faults: total, seconds: (Date.now() - t0) / 1000, byFault, dirty: dirty.length });
    expect(dirty).toEqual([]);
  });
});
