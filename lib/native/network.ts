/**
 * Native network definitions: what `network create --driver native` writes to
 * `<networksDir>/<name>.json` and the engine (csrc/core/native/engine.h) reads.
 * Pure validation here, so bad input is a typed error before anything is written.
 */
import ipaddr from 'ipaddr.js';

import { checkRange } from '../cni/config';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { checkName } from '../validate';

export interface NativeNetworkOptions {
  name: string;
  /** IPv4 subnet (CIDR); at least one of subnet and ipv6Subnet. */
  subnet?: string;
  /** Default: the first host address of `subnet`. */
  gateway?: string;
  ipv6Subnet?: string;
  ipv6Gateway?: string;
  mtu?: number;
  /** No masquerade and no route out of the network's subnets. */
  internal?: boolean;
  /** Refuse traffic to and from other native networks (default true); false lets two non-isolated networks talk. */
  isolate?: boolean;
}

/** The JSON file's content. */
export interface NativeNetworkDef {
  name: string;
  driver: 'native';
  subnets: { subnet: string; gateway: string }[];
  mtu: number;
  internal: boolean;
  isolate: boolean;
  created: string;
}

export function buildNativeNetwork(opts: NativeNetworkOptions): NativeNetworkDef {
  if (typeof opts !== 'object' || opts === null) throw invalidArgument('network options', 'expected an object');
  checkName('network name', opts.name);
  if (opts.subnet === undefined && opts.ipv6Subnet === undefined) throw invalidArgument('network options', 'need subnet or ipv6Subnet');
  if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 576 || opts.mtu > 65535)) {
    throw invalidArgument('mtu', `'${String(opts.mtu)}' is not an integer in 576-65535`);
  }
  const subnets: { subnet: string; gateway: string }[] = [];
  // A routed sandbox always has a next hop, so even an internal network has a gateway.
  if (opts.subnet !== undefined) subnets.push(checkRange('subnet', 'ipv4', opts.subnet, opts.gateway, false) as { subnet: string; gateway: string });
  if (opts.ipv6Subnet !== undefined) {
    subnets.push(checkRange('ipv6Subnet', 'ipv6', opts.ipv6Subnet, opts.ipv6Gateway, false) as { subnet: string; gateway: string });
  }
  for (const s of subnets) s.gateway = ipaddr.parse(s.gateway).toString();
  return {
    name: opts.name,
    driver: 'native',
    subnets,
    mtu: opts.mtu ?? 1500,
    internal: opts.internal === true,
    isolate: opts.isolate !== false,
    created: new Date().toISOString(),
  };
}

/** Throws ERR_NATIVE_SUBNET_OVERLAP when a subnet of `def` overlaps one in `taken` (name -> CIDRs). */
export function checkNoOverlap(def: NativeNetworkDef, taken: Map<string, string[]>): void {
  for (const { subnet } of def.subnets) {
    const [a, abits] = ipaddr.parseCIDR(subnet);
    for (const [name, cidrs] of taken) {
      for (const other of cidrs) {
        let b: ipaddr.IPv4 | ipaddr.IPv6;
        let bbits: number;
        try {
          [b, bbits] = ipaddr.parseCIDR(other);
        } catch {
          continue;
        }
        if (a.kind() !== b.kind()) continue;
        const bits = Math.min(abits, bbits);
        if (a.match(b, bits)) {
          throw new PodnetError(ErrorCode.NATIVE_SUBNET_OVERLAP, `subnet ${subnet} of network '${def.name}' overlaps ${other} of network '${name}'`, {
            details: { subnet, other, network: name },
          });
        }
      }
    }
  }
}
