// See scripts/bench/pasta. Every namespace, link, process and temp dir it
// creates is removed in `finally`, in reverse order.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Runtime } = require('../../dist');
const { Pasta } = require('../../dist/api/pasta');
const { PortForwarder } = require('../../dist/api/portfwd');
const { median, now } = require('./common');
const { undo, sleep, sh, start, netns, vethNetns, waitPort, cpuSecs, iperfServer, slirpApi, run } = require('./resources');

const QUICK = process.env.QUICK === '1';
const SECS = Number(process.argv[2] || (QUICK ? 1 : 4));
const ROUNDS = Number(process.env.PODNET_BENCH_ROUNDS || (QUICK ? 1 : 5));
const DEATHS = QUICK ? 3 : 30;
// Back-to-back trios of the three pastas (order rotating), for the parity question: pairs run seconds apart, not a round apart.
const TRIOS = Number(process.env.PODNET_BENCH_TRIOS || (QUICK ? 1 : 12));
// Host ports 46410-46414, namespaces pn-pastab-*, the veth pnpastab0 with 10.89.184.0/30.
const PORT = { podnet: 46410, anchor: 46411, slirp: 46412, fwd: 46413, same: 46414 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pn-pasta-bench-'));
// One iperf3 run; on a loaded machine the control connection sometimes drops: one retry, said aloud.
function iperf(p, streams) {
  for (let attempt = 1; ; attempt++) {
    const out = JSON.parse(
      sh('iperf3', ['-c', '127.0.0.1', '-p', String(p.port), '-t', String(SECS), '-P', String(streams), '-J'], { timeout: (SECS + 20) * 1000 }),
    );
    if (!out.error) return out.end.sum_received.bits_per_second / 1e9;
    const alive = fs.existsSync(`/proc/${p.pid}`);
    if (attempt > 1 || !alive) throw new Error(`iperf3 through ${p.name}: ${out.error}${alive ? '' : ` (its relay, pid ${p.pid}, is gone)`}`);
    console.log(`  ${p.name}: iperf3 failed (${out.error}), once more`);
  }
}

// podnet's pasta mode: a sandbox from the runtime (network 'pasta'), iperf3 inside it.
async function podnetPasta() {
  const rt = new Runtime({ stateDir: path.join(tmp, 'state') });
  const s = await rt.createSandbox({
    id: 'pasta-bench',
    network: 'pasta',
    portMappings: [{ hostIP: '127.0.0.1', hostPort: PORT.podnet, containerPort: 5201 }],
  });
  undo.push(() => rt.teardown('pasta-bench'));
  iperfServer(s.netnsPath);
  await waitPort('127.0.0.1', PORT.podnet);
  return { key: 'podnet', name: 'podnet pasta mode', port: PORT.podnet, pid: s.helpers.pasta.pid, netns: s.netnsPath };
}

// The anchor: pasta started by hand as Podman 5 starts it (containers/common
// libnetwork/pasta/pasta_linux.go createPastaArgs: `-t ADDR/P-P:Q-Q`, then
// --dns-forward, `none` for the other directions, --no-map-gw, --quiet,
// --netns), forking to the background; --runas 0 since this is root.
async function podmanPasta() {
  const ns = netns('pn-pastab-anchor');
  const pidFile = path.join(tmp, 'anchor.pid');
  sh(
    'pasta',
    [
      '--config-net',
      '-t',
      `127.0.0.1/${PORT.anchor}-${PORT.anchor}:5201-5201`,
      '--dns-forward',
      '169.254.1.1',
      '-u',
      'none',
      '-T',
      'none',
      '-U',
      'none',
      '--no-map-gw',
      '--quiet',
      '--netns',
      ns,
      '--runas',
      '0',
      '--pid',
      pidFile,
    ],
    { stdio: 'ignore' },
  );
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  undo.push(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  iperfServer(ns);
  await waitPort('127.0.0.1', PORT.anchor);
  return { key: 'anchor', name: 'pasta by hand (as Podman)', port: PORT.anchor, pid, netns: ns };
}

// podnet's own pasta command line, run by hand from a shell's child_process
// (same arguments, foreground, pid file a plain file): tells podnet's way of
// starting pasta (native spawn, own process group, output in a memfd) from
// the arguments themselves.
async function samePasta(podnet) {
  const ns = netns('pn-pastab-same');
  const pidFile = path.join(tmp, 'same.pid');
  const args = cmdline(podnet.pid).map((a) =>
    a === podnet.netns ? ns : a.replace(`/${PORT.podnet}:`, `/${PORT.same}:`).replace(/^\/.*podnet-pasta-.*\/pid$/, pidFile),
  );
  const p = start('pasta', args, { stdio: 'ignore' });
  for (let k = 0; k < 500 && !(fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8')); k++) await sleep(10);
  iperfServer(ns);
  await waitPort('127.0.0.1', PORT.same);
  return { key: 'same', name: "pasta by hand, podnet's args", port: PORT.same, pid: p.pid, netns: ns };
}

// A process's arguments as `ps` shows them. pasta parses `--runas UID:GID` in
// place (a NUL over the ':'), so /proc shows `0 0` for `0:0`: mended here.
function cmdline(pid) {
  const a = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, -1);
  const r = a.indexOf('--runas');
  if (r >= 0 && /^\d+$/.test(a[r + 2] ?? '')) a.splice(r + 1, 2, `${a[r + 1]}:${a[r + 2]}`);
  return a;
}

// The two command lines as `ps` shows them, and what differs once the
// namespace path, the host port and the spelling of a one-port range are the same.
function compareArgs(podnet, anchor) {
  const norm = (p) =>
    cmdline(p.pid).map((a) =>
      a === p.netns
        ? 'NETNS'
        : a
            .replace(`/${p.port}:`, '/PORT:')
            .replace(`/${p.port}-${p.port}:5201-5201`, '/PORT:5201')
            .replace(/^\/.*\.pid$|^\/.*\/pid$/, 'PIDFILE'),
    );
  const a = norm(podnet);
  const b = norm(anchor);
  console.log(`\npasta command lines (/proc/PID/cmdline):\n  podnet: pasta ${cmdline(podnet.pid).join(' ')}\n  anchor: pasta ${cmdline(anchor.pid).join(' ')}`);
  const onlyA = a.filter((x) => !b.includes(x));
  const onlyB = b.filter((x) => !a.includes(x));
  console.log(`  after normalising netns, port and P-P:Q-Q: only podnet's: ${onlyA.join(' ') || '-'}; only the anchor's: ${onlyB.join(' ') || '-'}`);
}

async function slirp4netns() {
  const ns = netns('pn-pastab-slirp');
  const api = path.join(tmp, 'slirp.sock');
  const slirp = start('slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', '--api-socket', api, '--netns-type=path', ns, 'tap0'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100 && !fs.existsSync(api); i++) await sleep(20);
  await slirpApi(api, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: PORT.slirp, guest_port: 5201 } });
  iperfServer(ns);
  await waitPort('127.0.0.1', PORT.slirp);
  return { key: 'slirp', name: 'slirp4netns add_hostfwd', port: PORT.slirp, pid: slirp.pid };
}

// podnet's port forwarder into a namespace on a veth (scripts/bench/portfwd.js's path).
async function forwarder() {
  const ns = vethNetns('pn-pastab-fwd', 'pnpastab0', '10.89.184.1/30', '10.89.184.2/30');
  iperfServer(ns);
  await waitPort('10.89.184.2', 5201);
  const fwd = await PortForwarder.start({ netnsPath: ns, portMappings: [{ hostIP: '127.0.0.1', hostPort: PORT.fwd, containerPort: 5201 }] });
  undo.push(() => fwd.stop());
  await waitPort('127.0.0.1', PORT.fwd);
  return { key: 'fwd', name: 'podnet forwarder (veth)', port: PORT.fwd, pid: fwd.pid };
}

// Ratios of two paths measured side by side: their median and spread (middle half, range).
function spread(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const q = (f) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  return { med: median(s), min: s[0], max: s[s.length - 1], q1: q(0.25), q3: q(0.75), all: xs };
}
const fmtRatio = (r) => `x${r.med.toFixed(2)} (middle half ${r.q1.toFixed(2)}-${r.q3.toFixed(2)}, range ${r.min.toFixed(2)}-${r.max.toFixed(2)})`;

async function throughput() {
  const podnet = await podnetPasta();
  const anchor = await podmanPasta();
  compareArgs(podnet, anchor);
  const paths = [podnet, anchor, await samePasta(podnet), await slirp4netns(), await forwarder()];
  const rounds = {};
  for (let i = 0; i < ROUNDS; i++) {
    // Each round starts with a different path, so no path always runs right after the same one.
    for (const p of paths.map((_, k) => paths[(k + i) % paths.length])) {
      const c0 = cpuSecs(p.pid);
      const r = { one: iperf(p, 1), four: iperf(p, 4), cpu: cpuSecs(p.pid) - c0 };
      (rounds[p.key] ??= []).push(r);
      console.log(`round ${i + 1} ${p.name.padEnd(30)} ${r.one.toFixed(1).padStart(5)} ${r.four.toFixed(1).padStart(5)} Gbit/s (1, 4 streams)`);
    }
  }
  console.log(`\nmedian of ${ROUNDS} interleaved rounds (iperf3 ${SECS} s from 127.0.0.1 through a published port):`);
  const med = {};
  for (const p of paths) {
    med[p.key] = { one: median(rounds[p.key].map((r) => r.one)), four: median(rounds[p.key].map((r) => r.four)) };
    console.log(`  ${p.name.padEnd(30)} ${med[p.key].one.toFixed(1).padStart(5)} ${med[p.key].four.toFixed(1).padStart(5)} Gbit/s`);
  }
  console.log('\nper-round ratios against pasta by hand as Podman starts it, median (spread):');
  const ratio = {};
  for (const p of paths) {
    ratio[p.key] = {
      one: spread(rounds[p.key].map((r, i) => r.one / rounds.anchor[i].one)),
      four: spread(rounds[p.key].map((r, i) => r.four / rounds.anchor[i].four)),
    };
    console.log(`  ${p.name.padEnd(30)} 1 stream ${fmtRatio(ratio[p.key].one)}; 4 streams ${fmtRatio(ratio[p.key].four)}`);
  }
  console.log(`  podnet's 4-stream ratio per round: ${ratio.podnet.four.all.map((x) => x.toFixed(2)).join(' ')}`);
  // podnet against its own arguments by hand: what podnet's way of starting pasta costs, apart from the arguments.
  const own = (k) => spread(rounds.podnet.map((r, i) => r[k] / rounds.same[i][k]));
  console.log(`  podnet pasta mode vs its own args by hand: 1 stream ${fmtRatio(own('one'))}; 4 streams ${fmtRatio(own('four'))}`);
  return { paths, goal: ratio.podnet.one.med >= 0.95 && ratio.podnet.four.med >= 0.95 };
}

// The three pastas only, back to back (seconds apart, the order rotating trio
// by trio): podnet's against Podman's, and against its own arguments by hand.
function parity([podnet, anchor, same]) {
  const trio = [podnet, anchor, same];
  const r = { one: [], four: [], ownOne: [], ownFour: [] };
  for (let i = 0; i < TRIOS; i++) {
    for (const [streams, key, ownKey] of [
      [1, 'one', 'ownOne'],
      [4, 'four', 'ownFour'],
    ]) {
      const got = {};
      for (const p of trio.map((_, k) => trio[(k + i) % 3])) got[p.key] = iperf(p, streams);
      r[key].push(got.podnet / got.anchor);
      r[ownKey].push(got.podnet / got.same);
    }
  }
  const one = spread(r.one);
  const four = spread(r.four);
  console.log(`\nparity, ${TRIOS} back-to-back trios (iperf3 ${SECS} s each): podnet pasta mode / pasta by hand as Podman starts it:`);
  console.log(`  1 stream ${fmtRatio(one)}\n  4 streams ${fmtRatio(four)}`);
  console.log(`  per trio, 4 streams: ${r.four.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`  podnet pasta mode / its own args by hand: 1 stream ${fmtRatio(spread(r.ownOne))}; 4 streams ${fmtRatio(spread(r.ownFour))}`);
  return one.med >= 0.95 && four.med >= 0.95;
}

// Time from a pasta's death to the runtime's 'helperExit' event: SIGKILL the
// pasta of a running pasta-mode sandbox and await the event (pidfd, then the
// note in the sandbox's state). Anchor, interleaved kill by kill: Node's own
// child 'exit' for a pasta started with child_process (same kill, SIGCHLD + waitpid).
async function deathLatency() {
  const ns = netns('pn-pastab-death');
  const rt = new Runtime({ stateDir: path.join(tmp, 'death-state') });
  const ours = [];
  const anchor = [];
  for (let i = 0; i < DEATHS; i++) {
    const id = `pasta-death-${i}`;
    const s = await rt.createSandbox({ id, network: 'pasta' });
    undo.push(() => rt.teardown(id));
    const event = new Promise((r) => rt.once('helperExit', r));
    let t0 = now();
    process.kill(s.helpers.pasta.pid, 'SIGKILL');
    const e = await event;
    ours.push(now() - t0);
    if (e.sandboxId !== id || e.helper !== 'pasta' || e.error.code !== 'ERR_HELPER_EXITED') throw new Error(`unexpected event ${JSON.stringify(e)}`);
    await rt.teardown(id);

    const pidFile = path.join(tmp, `d${i}.pid`);
    const c = spawn(
      'pasta',
      ['--config-net', '-t', 'none', '-u', 'none', '-T', 'none', '-U', 'none', '--quiet', '--netns', ns, '--runas', '0', '-f', '--pid', pidFile],
      { stdio: 'ignore' },
    );
    for (let k = 0; k < 500 && !(fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8')); k++) await sleep(2);
    const exited = new Promise((r) => c.once('exit', r));
    t0 = now();
    c.kill('SIGKILL');
    await exited;
    anchor.push(now() - t0);
  }
  await rt.close();
  // A pasta that rejects its options at start: podnet's typed error against the same pasta run by hand to its exit.
  const reject = [];
  const byHand = [];
  for (let i = 0; i < DEATHS; i++) {
    let t0 = now();
    try {
      await Pasta.start({ netns: ns, options: ['--mtu', '70000'] });
      throw new Error('started');
    } catch (e) {
      if (e.code !== 'ERR_PASTA_OPTION') throw e;
    }
    reject.push(now() - t0);
    t0 = now();
    await new Promise((r) =>
      spawn('pasta', ['--config-net', '--mtu', '70000', '--quiet', '--netns', ns, '--runas', '0', '-f'], { stdio: 'ignore' }).once('exit', r),
    );
    byHand.push(now() - t0);
  }
  const fmt = (xs) => `median ${median(xs).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
  const within = ours.filter((x) => x <= 50).length;
  const anchorWithin = anchor.filter((x) => x <= 50).length;
  console.log(
    `\npasta SIGKILL to the runtime's 'helperExit' (${DEATHS} kills): podnet ${fmt(ours)}, ${within}/${DEATHS} within 50 ms; ` +
      `anchor, child_process 'exit' ${fmt(anchor)}, ${anchorWithin}/${DEATHS} within 50 ms; x${(median(ours) / median(anchor)).toFixed(2)} (medians)`,
  );
  console.log(`  per kill, podnet minus anchor (ms): median ${median(ours.map((x, i) => x - anchor[i])).toFixed(1)}`);
  console.log(
    `pasta rejecting --mtu 70000: podnet start to ERR_PASTA_OPTION ${fmt(reject)}; the same pasta by hand to its exit ${fmt(byHand)}; x${(median(reject) / median(byHand)).toFixed(2)}`,
  );
  return Math.max(...ours) <= 50;
}

async function main() {
  const t = await throughput();
  const p = parity(t.paths);
  const d = await deathLatency();
  if (QUICK) return;
  console.log(
    `\ngoals: podnet pasta mode >= pasta by hand (within 5% noise): rounds ${t.goal ? 'met' : 'NOT met'}, trios ${p ? 'met' : 'NOT met'}; death reported within 50 ms: ${d ? 'met' : 'NOT met'}`,
  );
}

run(main, tmp);
