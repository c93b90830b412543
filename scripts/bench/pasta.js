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
  const s = await rt.createSandbox({ id: 'pasta-bench', network: 'pasta', portMappings: [{ hostIP: '127.0.0.1', hostPort: 43200, containerPort: 5201 }] });
  undo.push(() => rt.teardown('pasta-bench'));
  iperfServer(s.netnsPath);
  await waitPort('127.0.0.1', 43200);
  console.log(`podnet pasta mode: ${s.helpers.pasta ? `pasta pid ${s.helpers.pasta.pid}` : 'no pasta recorded'}`);
  return { key: 'podnet', name: 'podnet pasta mode', port: 43200, pid: s.helpers.pasta?.pid };
}

// The anchor: pasta started by hand as Podman 5 starts it (containers/common
// libnetwork/pasta), forking to the background; --runas 0 since this is root.
async function podmanPasta() {
  const ns = netns('pasta-bench-anchor');
  const pidFile = path.join(tmp, 'anchor.pid');
  sh(
    'pasta',
    [
      '--config-net',
      '-t',
      '127.0.0.1/43201-43201:5201-5201',
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
  await waitPort('127.0.0.1', 43201);
  return { key: 'anchor', name: 'pasta by hand (as Podman)', port: 43201, pid };
}

async function slirp4netns() {
  const ns = netns('pasta-bench-slirp');
  const api = path.join(tmp, 'slirp.sock');
  const slirp = start('slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', '--api-socket', api, '--netns-type=path', ns, 'tap0'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100 && !fs.existsSync(api); i++) await sleep(20);
  await slirpApi(api, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: 43202, guest_port: 5201 } });
  iperfServer(ns);
  await waitPort('127.0.0.1', 43202);
  return { key: 'slirp', name: 'slirp4netns add_hostfwd', port: 43202, pid: slirp.pid };
}

// podnet's port forwarder into a namespace on a veth (scripts/bench/portfwd.js's path).
async function forwarder() {
  const ns = vethNetns('pasta-bench-fwd', 'pnpastab0', '10.89.241.1/24', '10.89.241.2/24');
  iperfServer(ns);
  await waitPort('10.89.241.2', 5201);
  const fwd = await PortForwarder.start({ netnsPath: ns, portMappings: [{ hostIP: '127.0.0.1', hostPort: 43203, containerPort: 5201 }] });
  undo.push(() => fwd.stop());
  await waitPort('127.0.0.1', 43203);
  return { key: 'fwd', name: 'podnet forwarder (veth)', port: 43203, pid: fwd.pid };
}

async function throughput() {
  const paths = [await podnetPasta(), await podmanPasta(), await slirp4netns(), await forwarder()];
  const rounds = {};
  for (let i = 0; i < ROUNDS; i++) {
    for (const p of paths) {
      const c0 = cpuSecs(p.pid);
      const r = { one: iperf(p, 1), four: iperf(p, 4), cpu: cpuSecs(p.pid) - c0 };
      (rounds[p.key] ??= []).push(r);
      console.log(`round ${i + 1} ${p.name.padEnd(28)} ${r.one.toFixed(1).padStart(5)} ${r.four.toFixed(1).padStart(5)} Gbit/s (1, 4 streams)`);
    }
  }
  console.log(`\nmedian of ${ROUNDS} interleaved rounds (iperf3 ${SECS} s from 127.0.0.1 through a published port):`);
  const med = {};
  for (const p of paths) {
    med[p.key] = { one: median(rounds[p.key].map((r) => r.one)), four: median(rounds[p.key].map((r) => r.four)) };
    console.log(`  ${p.name.padEnd(28)} ${med[p.key].one.toFixed(1).padStart(5)} ${med[p.key].four.toFixed(1).padStart(5)} Gbit/s`);
  }
  const a = med.anchor;
  console.log('\nratios against pasta by hand (same run; per round, then the median):');
  for (const p of paths) {
    const r1 = median(rounds[p.key].map((r, i) => r.one / rounds.anchor[i].one));
    const r4 = median(rounds[p.key].map((r, i) => r.four / rounds.anchor[i].four));
    console.log(`  ${p.name.padEnd(28)} 1 stream x${r1.toFixed(2)}, 4 streams x${r4.toFixed(2)}`);
  }
  return { med, goal: med.podnet.one >= 0.95 * a.one && med.podnet.four >= 0.95 * a.four };
}

// Time from pasta's death to podnet's typed error: SIGKILL a running pasta and
// await Pasta.died (pidfd). Anchor: Node's own child 'exit' for a pasta started
// with child_process (same kill, SIGCHLD + waitpid).
async function deathLatency() {
  const ns = netns('pasta-bench-death');
  const ours = [];
  const anchor = [];
  for (let i = 0; i < DEATHS; i++) {
    const p = await Pasta.start({ netns: ns });
    let t0 = now();
    process.kill(p.pid, 'SIGKILL');
    const e = await p.died;
    ours.push(now() - t0);
    if (e.code !== 'ERR_PASTA_EXITED') throw new Error(`unexpected ${e.code}`);
    await p.stop();

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
  console.log(
    `\npasta death to typed error (${DEATHS} kills): podnet (pidfd) ${fmt(ours)}; anchor, child_process 'exit' ${fmt(anchor)}; x${(median(ours) / median(anchor)).toFixed(2)}`,
  );
  console.log(
    `pasta rejecting --mtu 70000: podnet start to ERR_PASTA_OPTION ${fmt(reject)}; the same pasta by hand to its exit ${fmt(byHand)}; x${(median(reject) / median(byHand)).toFixed(2)}`,
  );
  return Math.max(...ours) <= 50;
}

async function main() {
  const t = await throughput();
  const d = await deathLatency();
  if (QUICK) return;
  console.log(
    `\ngoals: podnet pasta mode >= pasta by hand (within 5% noise): ${t.goal ? 'met' : 'NOT met'}; death reported within 50 ms: ${d ? 'met' : 'NOT met'}`,
  );
}

run(main, tmp);
