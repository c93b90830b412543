#!/usr/bin/env node
// CNI setup + teardown of one pod with one port mapping, three ways, interleaved in rounds:
//   podnet   CniRuntime.setUpPod + tearDownPod on the embedded default network `podnet`
//   shell    the same plugin chain (bridge, portmap, firewall, tuning) run by scripts/bench/cni-chain.sh
//   netavark /usr/lib/podman/netavark setup + teardown of an equivalent bridge network with one port
// Usage: scripts/bench/cni [cycles=40]   (root; needs `npx tsc` output in dist/)
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
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
const { pluginStdin } = require(path.join(root, 'dist/cni/libcni'));
const { toCapabilityEntries, checkPortMappings } = require(path.join(root, 'dist/ports'));

const QUICK = Boolean(process.env.QUICK); // CI: a few iterations so the benchmark cannot rot; no goal checked
const CYCLES = Number(process.argv[2] ?? (QUICK ? 2 : 40));
const PER_ROUND = 2; // cycles per tool per round: fine interleaving evens out a noisy machine
const NETAVARK = '/usr/lib/podman/netavark';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pn-cni-bench-'));
const linkExists = (n) => fs.existsSync(`/sys/class/net/${n}`);
const hadBridges = { podnet0: linkExists('podnet0'), pncni12: linkExists('pncni12') };
const ms = (ns) => Number(ns) / 1e6;
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function main() {
  const rt = new CniRuntime({ confDir: path.join(tmp, 'net.d'), cacheDir: path.join(tmp, 'cache') });
  const [net] = await rt.networks();
  const nsPn = await NetNS.create({ name: 'pn-cni-bench-pn' });
  const nsSh = await NetNS.create({ name: 'pn-cni-bench-sh' });
  const nsNv = await NetNS.create({ name: 'pn-cni-bench-nv' });
  try {
    // Shell chain: each plugin's stdin as podnet would send it (without prevResult), one file each.
    const chainDir = path.join(tmp, 'chain');
    fs.mkdirSync(chainDir);
    const caps = { portMappings: toCapabilityEntries(checkPortMappings([{ hostPort: 18901, containerPort: 80 }])) };
    net.plugins.forEach((p, i) => fs.writeFileSync(path.join(chainDir, `${i}.json`), pluginStdin(p, net, caps)));

    // netavark: the same bridge + NAT + one port, on this branch's own subnet and bridge name.
    const haveNetavark = fs.existsSync(NETAVARK);
    const nvFile = path.join(tmp, 'netavark.json');
    fs.writeFileSync(
      nvFile,
      JSON.stringify({
        container_id: createHash('sha256').update('pn-cni-bench-nv').digest('hex'),
        container_name: 'pn-cni-bench-nv',
        port_mappings: [{ host_ip: '', container_port: 80, host_port: 18902, range: 1, protocol: 'tcp' }],
        networks: { 'pn-cni-nv': { static_ips: ['10.89.12.2'], interface_name: 'eth0' } },
        network_info: {
          'pn-cni-nv': {
            name: 'pn-cni-nv',
            id: createHash('sha256').update('pn-cni-nv').digest('hex'),
            driver: 'bridge',
            network_interface: 'pncni12',
            subnets: [{ subnet: '10.89.12.0/24', gateway: '10.89.12.1' }],
            ipv6_enabled: false,
            internal: false,
            dns_enabled: false,
            ipam_options: { driver: 'host-local' },
          },
        },
      }),
    );
    const nv = (cmd) => {
      const r = spawnSync(NETAVARK, ['--config', path.join(tmp, 'nv'), '-f', nvFile, cmd, nsNv.path], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`netavark ${cmd}: ${r.stderr}`);
    };

    const t = { pnUp: [], pnDown: [], sh: [], nvUp: [], nvDown: [] };
    const perPlugin = {};
    const runPodnet = async (n) => {
      for (let k = 0; k < n; k++) {
        const t0 = process.hrtime.bigint();
        await rt.setUpPod({ id: 'pn-cni-bench-pn', netnsPath: nsPn.path, portMappings: [{ hostPort: 18900, containerPort: 80 }] });
        const t1 = process.hrtime.bigint();
        await rt.tearDownPod({ id: 'pn-cni-bench-pn' });
        t.pnUp.push(ms(t1 - t0));
        t.pnDown.push(ms(process.hrtime.bigint() - t1));
      }
    };
    const runShell = (n) => {
      const out = execFileSync('bash', [path.join(__dirname, 'cni-chain.sh'), chainDir, nsSh.path, 'pn-cni-bench-sh', String(n)], { encoding: 'utf8' });
      for (const line of out.trim().split('\n')) {
        const parts = line.split(' ');
        const us = Number(parts.pop());
        if (parts[0] === 'cycle_us') t.sh.push(us / 1000);
        else if (parts[0] !== 'total_us') perPlugin[parts.join(' ')] = (perPlugin[parts.join(' ')] ?? 0) + us / 1000;
      }
    };
    const runNetavark = (n) => {
      for (let k = 0; k < n; k++) {
        const t0 = process.hrtime.bigint();
        nv('setup');
        const t1 = process.hrtime.bigint();
        nv('teardown');
        t.nvUp.push(ms(t1 - t0));
        t.nvDown.push(ms(process.hrtime.bigint() - t1));
      }
    };

    // Warm-up (bridge creation, iptables chains, plugin VERSION cache, page cache), then rounds.
    await runPodnet(2);
    runShell(2);
    if (haveNetavark) runNetavark(2);
    t.pnUp.length = t.pnDown.length = t.sh.length = t.nvUp.length = t.nvDown.length = 0;
    for (const k of Object.keys(perPlugin)) delete perPlugin[k];
    inPluginsNs = 0n;
    podnetPerPlugin = {};
    const per = PER_ROUND;
    const ROUNDS = Math.max(1, Math.round(CYCLES / PER_ROUND));
    for (let r = 0; r < ROUNDS; r++) {
      await runPodnet(per);
      runShell(per);
      if (haveNetavark) runNetavark(per);
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
    console.log(`shell     ${sh.toFixed(1)}  median ${median(t.sh).toFixed(1)}`);
    console.log(`ratio podnet/shell: mean ${(pn / sh).toFixed(3)} (${(pn - sh).toFixed(1)} ms), median ${(median(pnCycles) / median(t.sh)).toFixed(3)}`);
    if (haveNetavark) {
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
    for (const ns of [nsPn, nsSh, nsNv]) await ns.remove().catch(() => {});
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
