/**
 * The bridge plugin (containernetworking-plugins < 1.2) finds the addresses to
 * un-masquerade on DEL by reading them off the container's interface: when the
 * namespace is already gone it returns early and leaves its per-container
 * `CNI-<hash>` nat chain behind. From the cached result we know the addresses,
 * so we remove exactly the rules the plugin added (same chain name, comment
 * and match as its SetupIPMasq), as later plugin versions do themselves.
 */
import { createHash } from 'node:crypto';

import { runCommand } from '../command';
import type { CniNetworkConfig } from './config';
import type { CniResult } from './types';

/** libcni's utils.FormatChainName: "CNI-" + sha512(name + id) in hex, cut to 28 characters. */
export function masqChainName(network: string, containerId: string): string {
  return `CNI-${createHash('sha512')
    .update(network + containerId)
    .digest('hex')}`.slice(0, 28);
}

async function iptables(bin: string, args: string[]): Promise<number | null> {
  return (await runCommand(bin, ['-w', '-t', 'nat', ...args]).catch(() => ({ code: -1 }))).code;
}

/** Whether a list's bridge plugin masquerades (then its rules need this cleanup when the netns is gone). */
export function bridgeMasquerades(net: CniNetworkConfig): boolean {
  return net.plugins.some((p) => p.type === 'bridge' && p.ipMasq === true && p.ipam !== undefined);
}

/** Removes the bridge plugin's masquerade rules and chain for this container; missing rules are fine. */
export async function removeBridgeMasq(network: string, containerId: string, result: CniResult): Promise<void> {
  const chain = masqChainName(network, containerId);
  const comment = `name: "${network}" id: "${containerId}"`;
  for (const bin of ['iptables', 'ip6tables']) {
    const v6 = bin === 'ip6tables';
    const ips = (result.ips ?? []).map((i) => i.address.split('/')[0]).filter((a) => a.includes(':') === v6);
    if (ips.length === 0) continue;
    for (const ip of ips) await iptables(bin, ['-D', 'POSTROUTING', '-s', ip, '-j', chain, '-m', 'comment', '--comment', comment]);
    if ((await iptables(bin, ['-F', chain])) === 0) await iptables(bin, ['-X', chain]);
  }
}
