/** Subnet arithmetic on network lists: the subnets a list's IPAM declares, overlap, membership. */
import ipaddr from 'ipaddr.js';

import type { CniNetworkConfig } from './config';
import { isCidr, isIp } from '../validate';

/** The subnets a list's IPAM sections declare (host-local `ranges` and the older `subnet`). */
export function subnetsOf(net: CniNetworkConfig): string[] {
  const out: string[] = [];
  for (const p of net.plugins) {
    const ipam = p.ipam as { ranges?: { subnet?: unknown }[][]; subnet?: unknown } | undefined;
    for (const set of Array.isArray(ipam?.ranges) ? ipam.ranges : []) {
      for (const r of Array.isArray(set) ? set : []) if (typeof r?.subnet === 'string' && isCidr(r.subnet)) out.push(r.subnet);
    }
    if (typeof ipam?.subnet === 'string' && isCidr(ipam.subnet)) out.push(ipam.subnet);
  }
  return out;
}

export function overlaps(a: string, b: string): boolean {
  const [na, la] = ipaddr.parseCIDR(a);
  const [nb, lb] = ipaddr.parseCIDR(b);
  if (na.kind() !== nb.kind()) return false;
  return la <= lb ? nb.match([na, la] as never) : na.match([nb, lb] as never);
}

/** Whether address `ip` (with or without a prefix) lies in one of `subnets`. */
export function inSubnets(ip: string, subnets: string[]): boolean {
  const a = ip.split('/')[0];
  if (!isIp(a)) return false;
  const addr = ipaddr.parse(a);
  return subnets.some((s) => {
    const [net, len] = ipaddr.parseCIDR(s);
    return net.kind() === addr.kind() && addr.match([net, len] as never);
  });
}
