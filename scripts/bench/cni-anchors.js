'use strict';
// The anchors of the CNI and native benchmarks, both on a namespace made
// beforehand: the bare plugin chain as a plain script runs it
// (scripts/bench/cni-chain.sh) and netavark, the tool Podman 4+ runs instead.
const { execFileSync, spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const { pluginStdin } = require(path.join(root, 'dist/cni/libcni'));
const { toCapabilityEntries, checkPortMappings } = require(path.join(root, 'dist/ports'));

const NETAVARK = '/usr/lib/podman/netavark';
const ms = (ns) => Number(ns) / 1e6;

/**
 * The plugins of network list `net` with one published port (`hostPort` to 80),
 * each plugin's stdin as podnet would send it (without prevResult) in
 * `dir`/<i>.json. `run(n)` runs n ADD+DEL cycles and returns each cycle's ms
 * and the ms spent per plugin call ("bridge ADD"), summed over the cycles.
 */
function plainChain({ dir, net, hostPort, nsPath, id }) {
  fs.mkdirSync(dir);
  const caps = { portMappings: toCapabilityEntries(checkPortMappings([{ hostPort, containerPort: 80 }])) };
  net.plugins.forEach((p, i) => fs.writeFileSync(path.join(dir, `${i}.json`), pluginStdin(p, net, caps)));
  return {
    run(n) {
      const cycles = [];
      const perPlugin = {};
      const out = execFileSync('bash', [path.join(__dirname, 'cni-chain.sh'), dir, nsPath, id, String(n)], { encoding: 'utf8' });
      for (const line of out.trim().split('\n')) {
        const parts = line.split(' ');
        const us = Number(parts.pop());
        if (parts[0] === 'cycle_us') cycles.push(us / 1000);
        else if (parts[0] !== 'total_us') perPlugin[parts.join(' ')] = us / 1000;
      }
      return { cycles, perPlugin };
    },
  };
}

/**
 * netavark with a bridge network `network` (bridge `bridge`, `subnet` with
 * `gateway`), the container at `ip` with one published port (`hostPort` to 80).
 * null when netavark is not installed. `cycle()` times one setup and one
 * teardown (ms each); `cleanup()` tears down whatever a failed cycle left.
 */
function netavark({ tmp, id, network, bridge, subnet, gateway, ip, hostPort, nsPath }) {
  if (!fs.existsSync(NETAVARK)) return null;
  const file = path.join(tmp, `${id}.netavark.json`);
  const sha = (s) => createHash('sha256').update(s).digest('hex');
  fs.writeFileSync(
    file,
    JSON.stringify({
      container_id: sha(id),
      container_name: id,
      port_mappings: [{ host_ip: '', container_port: 80, host_port: hostPort, range: 1, protocol: 'tcp' }],
      networks: { [network]: { static_ips: [ip], interface_name: 'eth0' } },
      network_info: {
        [network]: {
          name: network,
          id: sha(network),
          driver: 'bridge',
          network_interface: bridge,
          subnets: [{ subnet, gateway }],
          ipv6_enabled: false,
          internal: false,
          dns_enabled: false,
          ipam_options: { driver: 'host-local' },
        },
      },
    }),
  );
  const args = (cmd) => ['--config', path.join(tmp, 'nv'), '-f', file, cmd, nsPath];
  const nv = (cmd) => {
    const r = spawnSync(NETAVARK, args(cmd), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`netavark ${cmd}: ${r.stderr}`);
  };
  return {
    path: NETAVARK,
    cycle() {
      const t0 = process.hrtime.bigint();
      nv('setup');
      const t1 = process.hrtime.bigint();
      nv('teardown');
      return { up: ms(t1 - t0), down: ms(process.hrtime.bigint() - t1) };
    },
    cleanup() {
      spawnSync(NETAVARK, args('teardown'));
    },
  };
}

module.exports = { NETAVARK, plainChain, netavark };
