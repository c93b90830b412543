#!/usr/bin/env node
// CNI setup + teardown of one pod with one port mapping, three ways, interleaved in rounds:
//   podnet   CniRuntime.setUpPod + tearDownPod on the embedded default network `podnet`
//   shell    the same plugin chain (bridge, portmap, firewall, tuning) run by scripts/bench/cni-chain.sh
//   netavark /usr/lib/podman/netavark setup + teardown of an equivalent bridge network with one port
// PODNET_BENCH_BEFORE=<another build's dist/> adds that build's setUpPod + tearDownPod to every
// round (its own namespace and pod id, the same default network), for before/after in one run.
// Usage: scripts/bench/cni [cycles=40]   (root; needs `npx tsc` output in dist/)
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
// Time spent waiting on plugin processes (spawn to close), to split podnet's cost from the plugins'.
const exec = require(path.join(root, 'dist/cni/exec'));
const execPlugin = exec.execPlugin;
let inPluginsNs = 0n;
let podnetPerPlugin = {};
exec.execPlugin = async (call) => {
  const t0 = process.hrtime.bigint();
  try {
    return await execPlugin(call);
  } finally {
    const dt = process.hrtime.bigint() - t0;
    inPluginsNs += dt;
    const key = `${path.basename(call.plugin)} ${call.command}`;
    podnetPerPlugin[key] = (podnetPerPlugin[key] ?? 0) + ms(dt);
  }
};
const { NetNS } = require(path.join(root, 'dist'));
const { CniRuntime } = require(path.join(root, 'dist/api/cni'));
const { NETAVARK, plainChain, netavark } = require('./cni-anchors');
const { median, roundRatios } = require('./common');
// The build before: CniRuntime from its subpath, or from the package root where older builds exported it.
const BEFORE = process.env.PODNET_BENCH_BEFORE;
const BeforeCniRuntime = BEFORE && (require(BEFORE).CniRuntime ?? require(path.join(BEFORE, 'api/cni')).CniRuntime);

const QUICK = Boolean(process.env.QUICK); // CI: a few iterations so the benchmark cannot rot; no goal checked
const CYCLES = Number(process.argv[2] ?? (QUICK ? 2 : 40));
const PER_ROUND = 2; // cycles per tool per round: fine interleaving evens out a noisy machine
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pn-cni-bench-'));
const linkExists = (n) => fs.existsSync(`/sys/class/net/${n}`);
const hadBridges = { podnet0: linkExists('podnet0'), pncni12: linkExists('pncni12') };
const ms = (ns) => Number(ns) / 1e6;
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;

async function main() {
  const rt = new CniRuntime({ confDir: path.join(tmp, 'net.d'), cacheDir: path.join(tmp, 'cache') });
  const [net] = await rt.networks();
  const nsPn = await NetNS.create({ name: 'pn-cni-bench-pn' });
  const nsSh = await NetNS.create({ name: 'pn-cni-bench-sh' });
  const nsNv = await NetNS.create({ name: 'pn-cni-bench-nv' });
  const nsBefore = BEFORE ? await NetNS.create({ name: 'pn-cni-bench-before' }) : null;
  const before = BEFORE ? new BeforeCniRuntime({ confDir: path.join(tmp, 'before-net.d'), cacheDir: path.join(tmp, 'before-cache') }) : null;
  let nv = null;
  try {
    const chain = plainChain({ dir: path.join(tmp, 'chain'), net, hostPort: 18901, nsPath: nsSh.path, id: 'pn-cni-bench-sh' });
    // netavark: the same bridge + NAT + one port, on this benchmark's own subnet and bridge name.
    nv = netavark({
      tmp,
      id: 'pn-cni-bench-nv',
      network: 'pn-cni-nv',
      bridge: 'pncni12',
      subnet: '10.89.12.0/24',
      gateway: '10.89.12.1',
      ip: '10.89.12.2',
      hostPort: 18902,
      nsPath: nsNv.path,
    });

    const t = { pnUp: [], pnDown: [], beUp: [], beDown: [], sh: [], nvUp: [], nvDown: [] };
    const perPlugin = {};
    const pod = async (runtime, id, nsPath, hostPort, up, down) => {
      const t0 = process.hrtime.bigint();
      await runtime.setUpPod({ id, netnsPath: nsPath, portMappings: [{ hostPort, containerPort: 80 }] });
      const t1 = process.hrtime.bigint();
      await runtime.tearDownPod({ id });
      up.push(ms(t1 - t0));
      down.push(ms(process.hrtime.bigint() - t1));
    };
    const runPodnet = async (n) => {
      for (let k = 0; k < n; k++) await pod(rt, 'pn-cni-bench-pn', nsPn.path, 18900, t.pnUp, t.pnDown);
    };
    const runBefore = async (n) => {
      for (let k = 0; k < n; k++) await pod(before, 'pn-cni-bench-before', nsBefore.path, 18903, t.beUp, t.beDown);
    };
    const runShell = (n) => {
      const r = chain.run(n);
      t.sh.push(...r.cycles);
      for (const [k, v] of Object.entries(r.perPlugin)) perPlugin[k] = (perPlugin[k] ?? 0) + v;
    };
    const runNetavark = (n) => {
      for (let k = 0; k < n; k++) {
        const c = nv.cycle();
        t.nvUp.push(c.up);
        t.nvDown.push(c.down);
      }
    };
    // Warm-up (bridge creation, iptables chains, plugin VERSION cache, page cache), then rounds.
    await runPodnet(2);
    if (before) await runBefore(2);
    runShell(2);
    if (nv) runNetavark(2);
    for (const k of Object.keys(t)) t[k].length = 0;
    for (const k of Object.keys(perPlugin)) delete perPlugin[k];
    inPluginsNs = 0n;
    podnetPerPlugin = {};
    const per = PER_ROUND;
    const ROUNDS = Math.max(1, Math.round(CYCLES / PER_ROUND));
    const roundMeans = { after: [], before: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // With the build before, the two alternate which goes first, so neither always follows the other.
      const builds = [
        ['after', runPodnet, t.pnUp, t.pnDown],
        ['before', runBefore, t.beUp, t.beDown],
      ];
      for (const [key, fn, up, down] of before ? (r % 2 ? builds.reverse() : builds) : builds.slice(0, 1)) {
        await fn(per);
        roundMeans[key].push(mean(up.slice(-per).map((u, i) => u + down.slice(-per)[i])));
      }
      runShell(per);
      if (nv) runNetavark(per);
    }

    const n = per * ROUNDS;
    const pnCycles = t.pnUp.map((u, i) => u + t.pnDown[i]);
    const pn = mean(pnCycles);
    const sh = mean(t.sh);
    console.log(
      `CNI setup+teardown, one pod, one port, ${n} cycles per tool in ${ROUNDS} interleaved rounds (ms per cycle); load ${os.loadavg()[0].toFixed(1)}`,
    );
    console.log(
      `podnet    ${pn.toFixed(1)}  median ${median(pnCycles).toFixed(1)}  (setUpPod ${mean(t.pnUp).toFixed(1)} median ${median(t.pnUp).toFixed(1)}, tearDownPod ${mean(t.pnDown).toFixed(1)} median ${median(t.pnDown).toFixed(1)})`,
    );
    console.log(
      `  of which in plugin processes (spawn to exit) ${(ms(inPluginsNs) / n).toFixed(1)}, in podnet itself ${(pn - ms(inPluginsNs) / n).toFixed(1)}`,
    );
    if (before) {
      const beCycles = t.beUp.map((u, i) => u + t.beDown[i]);
      console.log(
        `before    ${mean(beCycles).toFixed(1)}  median ${median(beCycles).toFixed(1)}  (setUpPod ${mean(t.beUp).toFixed(1)} median ${median(t.beUp).toFixed(1)}, tearDownPod ${mean(t.beDown).toFixed(1)} median ${median(t.beDown).toFixed(1)})  build ${BEFORE}`,
      );
      roundRatios('podnet / build before', roundMeans.after, roundMeans.before);
    }
    console.log(`shell     ${sh.toFixed(1)}  median ${median(t.sh).toFixed(1)}`);
    console.log(`ratio podnet/shell: mean ${(pn / sh).toFixed(3)} (${(pn - sh).toFixed(1)} ms), median ${(median(pnCycles) / median(t.sh)).toFixed(3)}`);
    if (nv) {
      const nvCycles = t.nvUp.map((u, i) => u + t.nvDown[i]);
      const nvm = mean(nvCycles);
      console.log(
        `netavark  ${nvm.toFixed(1)}  median ${median(nvCycles).toFixed(1)}  (setup ${mean(t.nvUp).toFixed(1)}, teardown ${mean(t.nvDown).toFixed(1)})`,
      );
      console.log(`ratio podnet/netavark: mean ${(pn / nvm).toFixed(3)}, median ${(median(pnCycles) / median(nvCycles)).toFixed(3)}`);
    } else console.log(`netavark  not installed (${NETAVARK})`);
    console.log('where the time goes, per plugin call (ms per cycle): bare chain | podnet');
    for (const [k, v] of Object.entries(perPlugin).sort((a, b) => b[1] - a[1])) {
      console.log(`  ${k.padEnd(13)} ${(v / n).toFixed(1).padStart(6)} | ${((podnetPerPlugin[k] ?? 0) / n).toFixed(1).padStart(6)}`);
    }
  } finally {
    await rt.tearDownPod({ id: 'pn-cni-bench-pn' }).catch(() => {});
    await before?.tearDownPod({ id: 'pn-cni-bench-before' }).catch(() => {});
    nv?.cleanup();
    for (const ns of [nsPn, nsSh, nsNv, nsBefore]) await ns?.remove().catch(() => {});
    for (const [b, had] of Object.entries(hadBridges)) {
      const ports = linkExists(b) ? fs.readdirSync(`/sys/class/net/${b}/brif`).length : 0;
      if (!had && linkExists(b) && ports === 0) execFileSync('ip', ['link', 'delete', b]);
    }
    for (const d of ['podnet', 'pn-cni-nv']) {
      const p = `/var/lib/cni/networks/${d}`;
      if (fs.existsSync(p) && fs.readdirSync(p).every((f) => !/^\d/.test(f))) fs.rmSync(p, { recursive: true, force: true });
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
