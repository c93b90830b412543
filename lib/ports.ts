/**
 * Port mappings as callers give them (Podman's PortMapping: ranges, "tcp,udp"):
 * validation before anything starts, expansion into one entry per port and
 * protocol (CNI's `portMappings` capability, the forwarder's listeners,
 * slirp4netns's host forwards), and picking free host ports for hostPort 0.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';

import ipaddr from 'ipaddr.js';

import { PodnetError, invalidArgument } from './errors';
import { checkPort, isIp } from './validate';
import type { CniPortMapEntry } from './cni/types';
import type { PortMapping, PortProtocol } from './types';

const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];

/** A validated mapping with its protocols split; hostIP normalized. */
export interface CheckedPortMapping {
  hostIP?: string;
  hostPort: number;
  containerPort: number;
  protocols: PortProtocol[];
  range: number;
}

export function checkPortMappings(maps: unknown): CheckedPortMapping[] {
  if (maps === undefined) return [];
  if (!Array.isArray(maps)) throw invalidArgument('portMappings', 'expected an array');
  const out = maps.map((m: PortMapping, i): CheckedPortMapping => {
    const what = `portMappings[${i}]`;
    if (typeof m !== 'object' || m === null) throw invalidArgument(what, 'expected an object');
    const hostPort = checkPort(`${what}.hostPort`, m.hostPort, true);
    const containerPort = checkPort(`${what}.containerPort`, m.containerPort, false);
    const range = m.range ?? 1;
    if (!Number.isInteger(range) || range < 1) throw invalidArgument(`${what}.range`, `'${String(m.range)}' is not a positive integer`);
    if (containerPort + range - 1 > 65535 || hostPort + range - 1 > 65535) {
      throw invalidArgument(`${what}.range`, `${range} ports from ${hostPort || containerPort} go past 65535`);
    }
    const proto = m.protocol ?? 'tcp';
    if (typeof proto !== 'string') throw invalidArgument(`${what}.protocol`, 'expected a string');
    const protocols = [
      ...new Set(
        proto
          .toLowerCase()
          .split(',')
          .map((p) => p.trim()),
      ),
    ] as PortProtocol[];
    for (const p of protocols) {
      if (!PROTOCOLS.includes(p)) throw invalidArgument(`${what}.protocol`, `'${p}' is not tcp, udp or sctp`);
    }
    const checked: CheckedPortMapping = { hostPort, containerPort, protocols, range };
    if (m.hostIP !== undefined && m.hostIP !== '') {
      if (!isIp(m.hostIP)) {
        throw invalidArgument(`${what}.hostIP`, `'${String(m.hostIP)}' is not an IP address`);
      }
      checked.hostIP = ipaddr.parse(m.hostIP).toString();
    }
    return checked;
  });
  // The same host port twice (same address and protocol) cannot work: refuse it here.
  const used = new Map<string, number>();
  out.forEach((m, i) => {
    if (m.hostPort === 0) return;
    for (const p of m.protocols) {
      for (let k = 0; k < m.range; k++) {
        const key = `${m.hostIP ?? '*'}/${p}/${m.hostPort + k}`;
        const prev = used.get(key);
        if (prev !== undefined) throw invalidArgument(`portMappings[${i}]`, `host port ${p}/${m.hostPort + k} is also in portMappings[${prev}]`);
        used.set(key, i);
      }
    }
  });
  return out;
}

/** Whether `port` can be bound now for every protocol (sctp is not probed). */
export async function portFree(port: number, protocols: PortProtocol[], hostIP?: string): Promise<boolean> {
  for (const p of protocols) {
    const ok = await new Promise<boolean>((resolve) => {
      if (p === 'udp') {
        const s = dgram.createSocket(hostIP?.includes(':') ? 'udp6' : 'udp4');
        s.once('error', () => {
          s.close();
          resolve(false);
        });
        s.bind(port, hostIP, () => s.close(() => resolve(true)));
      } else {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(port, hostIP, () => s.close(() => resolve(true)));
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** Whether `ip` is an address of this host (or the unspecified address, which means all of them). */
function isLocalAddress(ip: string): boolean {
  const a = ipaddr.parse(ip);
  if (a.range() === 'unspecified') return true;
  const want = a.toNormalizedString();
  return Object.values(os.networkInterfaces()).some((list) => list?.some((i) => ipaddr.parse(i.address.split('%')[0]).toNormalizedString() === want));
}

/**
 * Refuses, before anything is set up, host ports a host listener already holds
 * (a DNAT rule would silently shadow it) and host IPs that are not this host's
 * (slirp4netns refuses them; a DNAT rule for one would never match). Port 0
 * and sctp are not probed.
 */
export async function checkHostPorts(maps: CheckedPortMapping[]): Promise<void> {
  for (const [i, m] of maps.entries()) {
    if (m.hostIP !== undefined && !isLocalAddress(m.hostIP)) {
      throw new PodnetError('EADDRNOTAVAIL', `invalid portMappings[${i}].hostIP: '${m.hostIP}' is not an address of this host`, {
        details: { hostIP: m.hostIP },
      });
    }
    if (m.hostPort === 0) continue;
    for (let k = 0; k < m.range; k++) {
      for (const p of m.protocols.filter((x) => x !== 'sctp')) {
        if (!(await portFree(m.hostPort + k, [p], m.hostIP))) {
          throw new PodnetError(
            'EADDRINUSE',
            `invalid portMappings[${i}]: host port ${p}/${m.hostPort + k}${m.hostIP ? ` on ${m.hostIP}` : ''} is already in use on this host`,
            {
              details: { hostIP: m.hostIP, hostPort: m.hostPort + k, protocol: p },
            },
          );
        }
      }
    }
  }
}

/** A free host port (for every protocol) chosen by the kernel, with `range - 1` free ports after it. */
async function pickHostPort(m: CheckedPortMapping): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, m.hostIP, () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    if (first + m.range - 1 > 65535) continue;
    let ok = true;
    for (let k = 0; k < m.range && ok; k++) ok = await portFree(first + k, m.protocols, m.hostIP);
    if (ok) return first;
  }
  throw invalidArgument('portMappings', `no free run of ${m.range} host ports found`);
}

/** Resolves hostPort 0 to free ports; returns the mappings as given, with real host ports. */
export async function resolveHostPorts(maps: CheckedPortMapping[]): Promise<CheckedPortMapping[]> {
  const out: CheckedPortMapping[] = [];
  for (const m of maps) out.push(m.hostPort === 0 ? { ...m, hostPort: await pickHostPort(m) } : m);
  return out;
}

/** One entry per port and protocol (CNI's `portMappings` capability), protocol by protocol. */
export function toCapabilityEntries(maps: CheckedPortMapping[]): CniPortMapEntry[] {
  const entries: CniPortMapEntry[] = [];
  for (const m of maps) {
    for (const protocol of m.protocols) {
      for (let k = 0; k < m.range; k++) {
        const e: CniPortMapEntry = { hostPort: m.hostPort + k, containerPort: m.containerPort + k, protocol };
        if (m.hostIP) e.hostIP = m.hostIP;
        entries.push(e);
      }
    }
  }
  return entries;
}

/** Back to the caller's PortMapping shape (protocols joined again). */
export function toPortMappings(maps: CheckedPortMapping[]): PortMapping[] {
  return maps.map((m) => ({
    ...(m.hostIP ? { hostIP: m.hostIP } : {}),
    hostPort: m.hostPort,
    containerPort: m.containerPort,
    protocol: m.protocols.join(','),
    ...(m.range > 1 ? { range: m.range } : {}),
  }));
}
