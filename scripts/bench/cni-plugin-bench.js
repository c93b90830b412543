#!/usr/bin/env node
// podnet's CNI plugin (build/Release/podnet-cni on a native network) against Debian's CNI
// chain, interleaved in rounds, same run:
//  1. setup + teardown of one container with one published port, driven as libcni drives
//     plugins (scripts/bench/cni-chain.sh: one exec per plugin and command, the ADD result
//     as prevResult on DEL): podnet alone vs bridge(host-local) + portmap + firewall + tuning.
//     Goal: podnet at least 20x faster.
//  2. `podman run -d -p PORT:80` of busybox httpd until the published port serves a page,
//     then `podman rm -f`: on a podnet network vs a network like podman's default CNI one
//     (the same four plugins), wall time per container.
// Usage: scripts/bench/cni-plugin [rounds=15]; QUICK=1: two rounds, no goal checked. Root.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { now, median } = require('./common');

const root = path.join(__dirname, '..', '..');
const PLUGIN = path.join(root, 'build', 'Release', 'podnet-cni');
const QUICK = process.env.QUICK === '1';
const ROUNDS = QUICK ? 2 : Number(process.argv[2] ?? 15);
const PER_ROUND = QUICK ? 1 : 2; // exec cycles per way per round
const GOAL = 20;
// This benchmark's names, subnets and ports.
const PN_NET = 'cnip-bench-pn';
const BR_NET = 'cnip-bench-br';
const BRIDGE = 'cnip-bench0';
const PN_SUBNET = ['10.89.236.0/24', '10.89.236.1'];
const BR_SUBNET = ['10.89.237.0/24', '10.89.237.1'];
const PORTS = { execPn: 45900, execBr: 45901, podmanPn: 45902, podmanBr: 45903 };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cnip-bench-'));
const networksDir = path.join(tmp, 'networks');
const stateDir = path.join(tmp, 'state');
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const fmt = (a) => `mean ${mean(a).toFixed(1)}  median ${median(a).toFixed(1)} ms`;

function write(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

// The native network both parts use, in this run's own definitions and state directories.
const { NativeNetworks } = require(path.join(root, 'dist', 'native', 'networks'));
const nets = new NativeNetworks({ networksDir, stateDir });

const podnetPlugin = (extra = {}) => ({ type: 'podnet', network: PN_NET, networksDir, stateDir, ...extra });
// The chain podman 4 writes for a CNI bridge network (87-podman-bridge.conflist).
const bridgeChain = (portMappings) => [
  {
    type: 'bridge',
    bridge: BRIDGE,
    isGateway: true,
    ipMasq: true,
    hairpinMode: true,
    ipam: { type: 'host-local', routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: BR_SUBNET[0], gateway: BR_SUBNET[1] }]] },
  },
  { type: 'portmap', capabilities: { portMappings: true }, ...(portMappings ? { runtimeConfig: { portMappings } } : {}) },
  { type: 'firewall' },
  { type: 'tuning' },
];

// Part 1: one exec per plugin and command, through scripts/bench/cni-chain.sh for both.
function execPart(t) {
  const pnDir = path.join(tmp, 'exec-pn');
  const pnKeepDir = path.join(tmp, 'exec-pn-keep');
  const brDir = path.join(tmp, 'exec-br');
  const pnBin = path.join(tmp, 'exec-bin');
  write(path.join(pnBin, 'podnet'), fs.readFileSync(PLUGIN));
  fs.chmodSync(path.join(pnBin, 'podnet'), 0o755);
  const stamp = (p, name) => JSON.stringify({ cniVersion: '1.0.0', name, ...p });
  write(
    path.join(pnDir, '0.json'),
    stamp(podnetPlugin({ runtimeConfig: { portMappings: [{ hostPort: PORTS.execPn, containerPort: 80, protocol: 'tcp' }] } }), PN_NET),
  );
  write(
    path.join(pnKeepDir, '0.json'),
    stamp(
      podnetPlugin({ linkGoesWithNamespace: true, runtimeConfig: { portMappings: [{ hostPort: PORTS.execPn, containerPort: 80, protocol: 'tcp' }] } }),
      PN_NET,
    ),
  );
  bridgeChain([{ hostPort: PORTS.execBr, containerPort: 80, protocol: 'tcp' }]).forEach((p, i) => write(path.join(brDir, `${i}.json`), stamp(p, BR_NET)));
  const run = (dir, ns, cid, n, cniPath, record = true) => {
    const out = sh('bash', [path.join(__dirname, 'cni-chain.sh'), dir, `/run/netns/${ns}`, cid, String(n)], { env: { ...process.env, CNI_PATH: cniPath } });
    for (const l of out.split('\n')) {
      const m = /^(\S+) (ADD|DEL) (\d+)$/.exec(l);
      if (m && record) t.perCall[`${m[1]} ${m[2]}`] = (t.perCall[`${m[1]} ${m[2]}`] ?? 0) + Number(m[3]) / 1000;
    }
    return out
      .split('\n')
      .filter((l) => l.startsWith('cycle_us '))
      .map((l) => Number(l.split(' ')[1]) / 1000);
  };
  const cycle = (n) => {
    t.execPn.push(...run(pnDir, 'cnip-bench-pn', 'cnip-bench-pn', n, pnBin));
    // The veth left to the namespace's removal, as by a runtime that removes it after DEL:
    // a fresh namespace per cycle, removed after it, outside the timing.
    for (let k = 0; k < n; k++) {
      sh('ip', ['netns', 'add', 'cnip-bench-keep']);
      try {
        t.execPnKeep.push(...run(pnKeepDir, 'cnip-bench-keep', 'cnip-bench-keep', 1, pnBin, false));
      } finally {
        sh('ip', ['netns', 'delete', 'cnip-bench-keep']);
      }
    }
    t.execBr.push(...run(brDir, 'cnip-bench-br', 'cnip-bench-br', n, '/usr/lib/cni'));
  };
  return cycle;
}

// Part 2: podman with its own configuration, storage and CNI directories.
function podmanPart(t) {
  const pdir = path.join(tmp, 'podman');
  const rootfs = path.join(pdir, 'rootfs');
  for (const d of ['bin', 'www', 'etc', 'tmp']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  write(path.join(rootfs, 'www', 'index.html'), 'bench\n');
  write(path.join(pdir, 'plugins', 'podnet'), fs.readFileSync(PLUGIN));
  fs.chmodSync(path.join(pdir, 'plugins', 'podnet'), 0o755);
  fs.mkdirSync(path.join(pdir, 'tmp'), { recursive: true });
  write(
    path.join(pdir, 'net.d', `${PN_NET}.conflist`),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: PN_NET,
      plugins: [podnetPlugin({ linkGoesWithNamespace: true, capabilities: { portMappings: true, ips: true, mac: true } })],
    }),
  );
  write(path.join(pdir, 'net.d', `${BR_NET}.conflist`), JSON.stringify({ cniVersion: '0.4.0', name: BR_NET, plugins: bridgeChain() }));
  const conf = path.join(pdir, 'containers.conf');
  write(
    conf,
    [
      '[containers]',
      'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "none"',
      `tmp_dir = "${pdir}/tmp"`,
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ["${pdir}/plugins", "/usr/lib/cni"]`,
      `network_config_dir = "${pdir}/net.d"`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const podman = (args) => sh('podman', ['--root', `${pdir}/root`, '--runroot', `${pdir}/runroot`, '--storage-driver', 'vfs', ...args], { env });
  const served = async (port) => {
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200 && (await r.text()) === 'bench\n') return;
      } catch (err) {
        if (Date.now() > end) throw err;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const one = async (net, port, into) => {
    const t0 = now();
    podman([
      'run',
      '-d',
      '--name',
      'cnip-bench',
      '--network',
      net,
      '-p',
      `${port}:80`,
      '--rootfs',
      rootfs,
      '/bin/busybox',
      'httpd',
      '-f',
      '-p',
      '80',
      '-h',
      '/www',
    ]);
    try {
      await served(port);
    } catch (err) {
      const state = spawnSync(
        'podman',
        [
          '--root',
          `${pdir}/root`,
          '--runroot',
          `${pdir}/runroot`,
          '--storage-driver',
          'vfs',
          'inspect',
          '-f',
          '{{.State.Status}} {{.NetworkSettings.Networks}}',
          'cnip-bench',
        ],
        { env, encoding: 'utf8' },
      );
      throw new Error(`${net}: port ${port} not served (${err.message}); container: ${state.stdout}${state.stderr}`);
    }
    podman(['rm', '-f', '-t', '0', 'cnip-bench']);
    into.push(now() - t0);
  };
  const cycle = async () => {
    await one(PN_NET, PORTS.podmanPn, t.podmanPn);
    await one(BR_NET, PORTS.podmanBr, t.podmanBr);
  };
  cycle.cleanup = () => {
    spawnSync('podman', ['--root', `${pdir}/root`, '--runroot', `${pdir}/runroot`, '--storage-driver', 'vfs', 'rm', '-af', '-t', '0'], { env });
  };
  return cycle;
}

async function main() {
  if (!fs.existsSync(PLUGIN)) throw new Error(`${PLUGIN} is not built (node-gyp rebuild)`);
  await nets.create({ name: PN_NET, subnet: PN_SUBNET[0], gateway: PN_SUBNET[1] });
  const t = { execPn: [], execPnKeep: [], execBr: [], podmanPn: [], podmanBr: [], perCall: {} };
  for (const ns of ['cnip-bench-pn', 'cnip-bench-br']) sh('ip', ['netns', 'add', ns]);
  let podmanCycle;
  try {
    const execCycle = execPart(t);
    podmanCycle = podmanPart(t);
    // Warm-up: bridge, iptables chains and nftables table created, page cache.
    execCycle(1);
    await podmanCycle();
    for (const k of ['execPn', 'execPnKeep', 'execBr', 'podmanPn', 'podmanBr']) t[k].length = 0;
    t.perCall = {};
    for (let r = 0; r < ROUNDS; r++) {
      execCycle(PER_ROUND);
      await podmanCycle();
    }
  } finally {
    podmanCycle?.cleanup();
    for (const ns of ['cnip-bench-pn', 'cnip-bench-br']) spawnSync('ip', ['netns', 'delete', ns]);
    await cleanupNetworks();
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
  const ratio = mean(t.execBr) / mean(t.execPn);
  console.log(`CNI plugin benchmark, ${ROUNDS} interleaved rounds; load ${os.loadavg()[0].toFixed(1)}${QUICK ? ' (QUICK)' : ''}`);
  console.log(`1. setup+teardown of one container, one published port, one exec per plugin and command (${t.execPn.length} cycles each)`);
  console.log(`   podnet plugin                        ${fmt(t.execPn)}`);
  console.log(`   bridge+portmap+firewall+tuning chain ${fmt(t.execBr)}`);
  console.log(`   chain/podnet: mean x${ratio.toFixed(1)}, median x${(median(t.execBr) / median(t.execPn)).toFixed(1)}`);
  const keep = mean(t.execBr) / mean(t.execPnKeep);
  console.log(
    `   podnet, linkGoesWithNamespace       ${fmt(t.execPnKeep)}; chain/this: mean x${keep.toFixed(1)}, median x${(median(t.execBr) / median(t.execPnKeep)).toFixed(1)}`,
  );
  if (!QUICK) console.log(`   goal x${GOAL}: ${ratio >= GOAL ? 'met' : 'NOT met'} (default); ${keep >= GOAL ? 'met' : 'NOT met'} (linkGoesWithNamespace)`);
  console.log(
    '   per call, ms per cycle: ' +
      Object.entries(t.perCall)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${(v / t.execPn.length).toFixed(1)}`)
        .join(', '),
  );
  console.log(`2. podman run -d -p until the port serves, then podman rm -f (${t.podmanPn.length} containers each)`);
  console.log(`   podnet network        ${fmt(t.podmanPn)}`);
  console.log(`   podman CNI bridge     ${fmt(t.podmanBr)}`);
  console.log(`   bridge/podnet: mean x${(mean(t.podmanBr) / mean(t.podmanPn)).toFixed(2)}, median x${(median(t.podmanBr) / median(t.podmanPn)).toFixed(2)}`);
}

// What the runs leave by design: the bridge, host-local's directory and the podnet
// network's base rules (portmap's shared CNI-HOSTPORT-* chains stay, as the plugin intends).
async function cleanupNetworks() {
  if (fs.existsSync(`/sys/class/net/${BRIDGE}`)) spawnSync('ip', ['link', 'delete', BRIDGE]);
  fs.rmSync(`/var/lib/cni/networks/${BR_NET}`, { recursive: true, force: true });
  await nets.remove(PN_NET, { force: true }).catch((e) => console.error(`removing ${PN_NET}: ${e.message}`));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
