/**
 * Port mappings as callers give them (Podman's PortMapping: ranges, "tcp,udp")
 * expanded to the forwarder's listeners, one per host address, port and
 * protocol. Pure, so bad input is refused before any process starts.
 */
import ipaddr from 'ipaddr.js';

import { invalidArgument } from '../errors';
import type { PortMapping } from '../cni/types';

export interface Listener {
  proto: 'tcp' | 'udp';
  /** Host address to bind, canonical form. */
  ip: string;
  port: number;
  /** Port inside the container. */
  cport: number;
}

function checkPort(what: string, p: unknown): number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
    throw invalidArgument(what, `'${String(p)}' is not a port (1-65535)`);
  }
  return p;
}

/** A literal IPv4 or IPv6 address in canonical form. */
export function checkIP(what: string, ip: unknown): string {
  const ok = typeof ip === 'string' && /^[0-9a-fA-F.:]+$/.test(ip) &&
    (ipaddr.IPv4.isValidFourPartDecimal(ip) || (ip.includes(':') && ipaddr.IPv6.isValid(ip)));
  if (!ok) {
    throw invalidArgument(what, `'${String(ip)}' is not an IP address`);
  }
  return ipaddr.parse(ip as string).toString();
}

export function expandPortMappings(mappings: unknown): Listener[] {
  if (!Array.isArray(mappings) || mappings.length === 0) {
    throw invalidArgument('portMappings', 'expected a non-empty array');
  }
  const out: Listener[] = [];
  const seen = new Set<string>();
  mappings.forEach((m: PortMapping, i) => {
    const at = `portMappings[${i}]`;
    if (typeof m !== 'object' || m === null) throw invalidArgument(at, 'expected an object');
    const hostPort = checkPort(`${at}.hostPort`, m.hostPort);
    const containerPort = checkPort(`${at}.containerPort`, m.containerPort);
    const range = m.range ?? 1;
    if (!Number.isInteger(range) || range < 1) throw invalidArgument(`${at}.range`, `'${String(range)}' is not a positive integer`);
    if (hostPort + range - 1 > 65535 || containerPort + range - 1 > 65535) {
      throw invalidArgument(`${at}.range`, `${range} ports from ${hostPort}/${containerPort} pass 65535`);
    }
    const ip = m.hostIP === undefined || m.hostIP === '' ? '0.0.0.0' : checkIP(`${at}.hostIP`, m.hostIP);
    const protos = (m.protocol ?? 'tcp').toLowerCase().split(',').map((p) => p.trim());
    for (const proto of protos) {
      if (proto !== 'tcp' && proto !== 'udp') {
        throw invalidArgument(`${at}.protocol`, `'${proto}' is not supported (tcp, udp)`);
      }
      for (let k = 0; k < range; k++) {
        const key = `${proto} ${ip} ${hostPort + k}`;
        if (seen.has(key)) throw invalidArgument(at, `host port ${proto} ${ip}:${hostPort + k} is mapped twice`);
        seen.add(key);
        out.push({ proto, ip, port: hostPort + k, cport: containerPort + k });
      }
    }
  });
  return out;
}
