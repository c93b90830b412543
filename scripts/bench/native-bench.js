#!/usr/bin/env node
// Native networking benchmark (root; needs dist/ and the addon). Anchors measured in the same run:
// (a) cycle of one sandbox with one published port: namespace create, attach, detach, namespace
//     remove, through podnet's native engine from JS, against native-floor (the same kernel work in
//     one C++ process without the engine's bookkeeping), the bare CNI plugin chain (bridge,
//     host-local, portmap, firewall, tuning; namespace made beforehand) and netavark (same).
//     Two teardown variants: "del" deletes the veth (what Detach does), "keep" leaves it to the
//     namespace's removal (Detach keepLink). Rounds interleaved.
// (b) create cost with 10 sandboxes on the network vs with N (full: 1000; goal <= 1.5x); full mode
//     then grows to 4000 sandboxes, each with a published port, and checks a sample is reachable.
// (c) 4 processes attaching at once (full: 50 each), all addresses distinct.
// (d) the event loop during (b)'s attaches (goal: never blocked > 1 ms): its active time and the main
//     thread's CPU per namespace + attach, and the delay (perf_hooks.monitorEventLoopDelay) against an
//     idle loop of the same length.
// Usage: scripts/bench/native [cycles=30]; QUICK=1: a few iterations, no goal checked.
'use strict';
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const root = path.join(__dirname, '..', '..');
const { NetNS, NativeNetworks } = require(path.join(root, 'dist'));
const { buildBridgeNetwork } = require(path.join(root, 'dist/cni/config'));
const { plainChain, netavark: netavarkAnchor } = require('./cni-anchors');
const { median } = require('./common');

const QUICK = Boolean(process.env.QUICK);
const CYCLES = Number(process.argv[2] ?? (QUICK ? 2 : 30));
const SCALE = QUICK ? 20 : 1000;
const BIG = QUICK ? 0 : 4000;
const PAR = QUICK ? 5 : 50;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nat-bench-'));
const nets = new NativeNetworks({ networksDir: path.join(tmp, 'networks'), stateDir: path.join(tmp, 'ipam') });
const ms = (ns) => Number(ns) / 1e6;
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const fmt = (a) => `mean ${mean(a).toFixed(2)} median ${median(a).toFixed(2)}`;

async function cycleBench() {
  const floor = path.join(tmp, 'native-floor');
  execFileSync(
    'g++',
    [
      '-std=c++17',
      '-O2',
      '-D_GNU_SOURCE',
      '-o',
      floor,
      path.join(__dirname, 'native-floor.cc'),
      ...['netlink', 'nft', 'nft_elements'].map((f) => path.join(root, `csrc/core/native/${f}.cc`)),
      path.join(root, 'csrc/core/netns.cc'),
      path.join(root, 'csrc/core/nsocket.cc'),
      '-ldl',
      '-pthread',
    ],
    { stdio: 'inherit' },
  );
  await nets.create({ name: 'nat-bench', subnet: '10.89.159.0/24' });
  // CNI chain: a bridge list on this benchmark's own subnet and bridge, each plugin's stdin in a file.
  const cniNet = buildBridgeNetwork({ name: 'nat-bench-cni', bridge: 'natbr0', subnet: '10.89.158.0/24' });
  const nsSh = await NetNS.create({ name: 'nat-bench-sh' });
  const nsNv = await NetNS.create({ name: 'nat-bench-nv' });
  const plain = plainChain({ dir: path.join(tmp, 'chain'), net: cniNet, hostPort: 44951, nsPath: nsSh.path, id: 'nat-bench-sh' });
  const nv = netavarkAnchor({
    tmp,
    id: 'nat-bench-nv',
    network: 'nat-bench-nv',
    bridge: 'natnv0',
    subnet: '10.89.157.128/25',
    gateway: '10.89.157.129',
    ip: '10.89.157.130',
    hostPort: 44952,
    nsPath: nsNv.path,
  });
  const t = { podnetKeep: [], podnetDel: [], floorKeep: [], floorDel: [], chain: [], netavark: [] };
  let seq = 0;
  const podnet = async (keep) => {
    const id = `nat-bench-${seq++}`;
    const t0 = process.hrtime.bigint();
    const ns = await NetNS.create({ name: id });
    await nets.attach({
      network: 'nat-bench',
      containerId: id,
      ifname: 'eth0',
      netnsPath: ns.path,
      ports: [{ protocol: 'tcp', hostIp: '', hostPort: 44950, containerPort: 80, range: 1 }],
    });
    await nets.detach('nat-bench', id, 'eth0', ns.path, { namespaceGoes: keep });
    await ns.remove();
    (keep ? t.podnetKeep : t.podnetDel).push(ms(process.hrtime.bigint() - t0));
  };
  const floorRun = (mode, n) => {
    const out = execFileSync(floor, [mode, '/run/netns/nat-bench-floor', String(n)], { encoding: 'utf8' });
    for (const l of out.trim().split('\n')) (mode === 'keep' ? t.floorKeep : t.floorDel).push(Number(l.split(' ')[1]) / 1000);
  };
  const chain = (n) => t.chain.push(...plain.run(n).cycles);
  const netavark = (n) => {
    for (let k = 0; k < n; k++) {
      const c = nv.cycle();
      t.netavark.push(c.up + c.down);
    }
  };
  try {
    // warm-up, then interleaved rounds
    await podnet(true);
    await podnet(false);
    floorRun('keep', 1);
    chain(1);
    if (nv) netavark(1);
    for (const k of Object.keys(t)) t[k].length = 0;
    const per = 2;
    for (let r = 0; r < Math.max(1, Math.round(CYCLES / per)); r++) {
      for (let k = 0; k < per; k++) await podnet(true);
      for (let k = 0; k < per; k++) await podnet(false);
      floorRun('keep', per);
      floorRun('del', per);
      chain(1); // 1 per round: a chain cycle costs as much as ~100 native ones
      if (nv) netavark(1);
    }
    console.log(`(a) one sandbox, one published port: namespace + attach + detach + namespace removal (ms per cycle); load ${os.loadavg()[0].toFixed(1)}`);
    console.log(
      `  podnet native, veth left to the namespace  ${fmt(t.podnetKeep)}   x${(median(t.podnetKeep) / median(t.floorKeep)).toFixed(2)} vs floor (keep)`,
    );
    console.log(`  native-floor (keep)                        ${fmt(t.floorKeep)}`);
    console.log(`  podnet native, veth deleted                ${fmt(t.podnetDel)}   x${(median(t.podnetDel) / median(t.floorDel)).toFixed(2)} vs floor (del)`);
    console.log(`  native-floor (del)                         ${fmt(t.floorDel)}`);
    console.log(
      `  CNI chain (namespace made beforehand)      ${fmt(t.chain)}   ${(median(t.chain) / median(t.podnetKeep)).toFixed(1)}x podnet keep, ${(median(t.chain) / median(t.podnetDel)).toFixed(1)}x podnet del`,
    );
    if (nv)
      console.log(
        `  netavark (namespace made beforehand)       ${fmt(t.netavark)}   ${(median(t.netavark) / median(t.podnetKeep)).toFixed(1)}x podnet keep, ${(median(t.netavark) / median(t.podnetDel)).toFixed(1)}x podnet del`,
      );
  } finally {
    nv?.cleanup();
    for (const ns of [nsSh, nsNv]) await ns.remove().catch(() => {});
    for (const b of ['natbr0', 'natnv0']) spawnSync('ip', ['link', 'delete', b]);
    fs.rmSync('/var/lib/cni/networks/nat-bench-cni', { recursive: true, force: true });
    fs.rmSync('/var/lib/cni/networks/nat-bench-nv', { recursive: true, force: true });
  }
}

async function scaleBench() {
  await nets.create({ name: 'nat-scale', subnet: '10.89.128.0/20' });
  const made = [];
  const times = [];
  const busy = []; // ms the event loop was not idle (eventLoopUtilization().active) per namespace + attach
  const cpu = []; // ms of the main thread's CPU time (/proc schedstat) in the same span
  const mainCpu = () => Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  const attachOne = async (i) => {
    const id = `nat-sc-${i}`;
    const elu = performance.eventLoopUtilization();
    const cpu0 = mainCpu();
    const ns = await NetNS.create({ name: id });
    made.push(ns);
    const t0 = process.hrtime.bigint();
    await nets.attach({
      network: 'nat-scale',
      containerId: id,
      ifname: 'eth0',
      netnsPath: ns.path,
      ports: [{ protocol: 'tcp', hostIp: '', hostPort: 30000 + i, containerPort: 80, range: 1 }],
    });
    times.push(ms(process.hrtime.bigint() - t0));
    busy.push(performance.eventLoopUtilization(elu).active);
    cpu.push(mainCpu() - cpu0);
    ns.close();
  };
  try {
    // (d): the event loop while the driver attaches back to back (nothing else on the loop), then while
    // it only waits on timers for as long: the second is what the machine's load alone costs.
    const eld = monitorEventLoopDelay({ resolution: 1 });
    const t0 = Date.now();
    eld.enable();
    for (let i = 0; i < SCALE; i++) await attachOne(i);
    eld.disable();
    const idle = monitorEventLoopDelay({ resolution: 1 });
    idle.enable();
    for (const end = Date.now() + (Date.now() - t0); Date.now() < end;) await new Promise((r) => setTimeout(r, 5));
    idle.disable();
    // The loop's active time per attach bounds any stall one attach causes, and unlike the delay
    // histogram it leaves out the time the loop waited for a core the machine gave to others.
    const sorted = [...busy].sort((a, b) => a - b);
    console.log(
      `(d) event loop busy per namespace + attach (${busy.length}): median ${(median(busy) * 1000).toFixed(0)} µs, p99 ${(sorted[Math.floor(sorted.length * 0.99)] * 1000).toFixed(0)} µs, max ${sorted[sorted.length - 1].toFixed(2)} ms (main-thread CPU: median ${(median(cpu) * 1000).toFixed(0)} µs, max ${Math.max(...cpu).toFixed(2)} ms)${QUICK ? '' : sorted[sorted.length - 1] > 1 ? '  (goal max < 1 ms missed)' : '  goal met (< 1 ms)'}`,
    );
    const q = (h) => `max ${(h.max / 1e6).toFixed(2)} p99 ${(h.percentile(99) / 1e6).toFixed(2)} p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms`;
    console.log(`(d) event-loop delay while attaching ${SCALE} sandboxes: ${q(eld)}; idle loop for as long: ${q(idle)}`);
    const first = times.slice(0, 10);
    const last = times.slice(-10);
    console.log(
      `(b) attach with a published port: sandboxes 1-10 ${fmt(first)} ms; ${SCALE - 9}-${SCALE} ${fmt(last)} ms; ratio of medians x${(median(last) / median(first)).toFixed(2)}${QUICK ? '' : median(last) / median(first) > 1.5 ? '  GOAL MISSED (<= 1.5x)' : '  goal met (<= 1.5x)'}`,
    );
    if (BIG) {
      for (let i = SCALE; i < BIG; i++) await attachOne(i);
      // each published port leads into its sandbox: a sample through 127.0.0.1 (listener inside via nsenter)
      let ok = 0;
      const sample = [0, 999, 1999, 2999, BIG - 1];
      for (const i of sample) {
        const srv = spawn(
          'nsenter',
          [
            `--net=/run/netns/nat-sc-${i}`,
            'python3',
            '-c',
            "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',80));s.listen(1);print('r',flush=True);c,_=s.accept();c.sendall(b'ok');c.close()",
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        await new Promise((r) => srv.stdout.once('data', r));
        const got = spawnSync('python3', ['-c', `import socket;s=socket.create_connection(('127.0.0.1',${30000 + i}),timeout=5);print(s.recv(9).decode())`], {
          encoding: 'utf8',
        });
        if (got.stdout.trim() === 'ok') ok++;
        srv.kill('SIGKILL');
      }
      console.log(
        `(b) ${BIG} sandboxes on one network (10.89.128.0/20), each with a published port; ${ok}/${sample.length} sampled ports answered through 127.0.0.1; last attach ${fmt(times.slice(-10))} ms`,
      );
    }
  } finally {
    for (const ns of made) {
      await nets.detach('nat-scale', path.basename(ns.path), 'eth0', ns.path, { namespaceGoes: true }).catch(() => {});
      await ns.remove().catch(() => {});
    }
  }
}

async function parallelBench() {
  await nets.create({ name: 'nat-par', subnet: '10.89.154.0/24' });
  const child = (p) =>
    new Promise((resolve, reject) => {
      const code = `
      const { NetNS, NativeNetworks } = require(${JSON.stringify(path.join(root, 'dist'))});
      const nets = new NativeNetworks(${JSON.stringify(nets.config)});
      (async () => { for (let i = 0; i < ${PAR}; i++) {
        const ns = await NetNS.create({ name: 'nat-par-${p}-' + i });
        const a = await nets.attach({ network: 'nat-par', containerId: 'nat-par-${p}-' + i, ifname: 'eth0', netnsPath: ns.path });
        ns.close(); console.log(a.ips[0].address);
      } })().catch((e) => { console.error(e); process.exit(1); });`;
      const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (b) => (out += b));
      c.on('exit', (st) => (st === 0 ? resolve(out.trim().split('\n')) : reject(new Error(`child ${p} exited ${st}`))));
    });
  const t0 = process.hrtime.bigint();
  const all = (await Promise.all([0, 1, 2, 3].map(child))).flat();
  const took = ms(process.hrtime.bigint() - t0);
  console.log(
    `(c) 4 processes x ${PAR} sandboxes at once: ${all.length} attached in ${took.toFixed(0)} ms, ${new Set(all).size} distinct addresses${all.length === 4 * PAR && new Set(all).size === all.length ? '' : '  FAILED'}`,
  );
  for (let p = 0; p < 4; p++) {
    for (let i = 0; i < PAR; i++) {
      await nets.detach('nat-par', `nat-par-${p}-${i}`, 'eth0', undefined, { namespaceGoes: true }).catch(() => {});
      await NetNS.removePath(`/run/netns/nat-par-${p}-${i}`).catch(() => {});
    }
  }
}

(async () => {
  try {
    await cycleBench();
    await scaleBench();
    await parallelBench();
  } finally {
    for (const n of nets.list()) await nets.remove(n.name, { force: true }).catch((e) => console.error(e.message));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
