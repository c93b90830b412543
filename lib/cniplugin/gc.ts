/**
 * Garbage collection on a native network without any record of the runtimes that attached
 * containers through the CNI plugin. The kernel says what is alive: the host end of a
 * sandbox's veth pair exists exactly as long as the namespace holding its peer (the pair is
 * destroyed with that namespace: a reboot, a killed runtime whose namespace was then
 * removed). An owner whose host end is gone holds a lease, an attachment record and
 * published-port elements for nothing, and is released; every other owner stays, whoever
 * made it (podman, containerd). Sandboxes of podnet's API (container ids `podnet-<hash>-<id>`)
 * are left to the runtime's own gc, which knows them. An owner with a lease but no attachment record
 * yet also stays while the lease is younger than a minute: an ADD may be between its lease
 * and its link (the engine writes the record last).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

import { native } from '../addon';
import type { NativeNetworks } from '../native/networks';

export const YOUNG_LEASE_MS = 60_000;
/** The start of every container id podnet's runtime gives its sandboxes (Runtime.netnsPrefix). */
const API_PREFIX = 'podnet-';

export interface Owner {
  containerId: string;
  ifname: string;
}

/** Every owner of a lease or attachment record on `network`, with whether its sandbox still exists. */
export async function nativeOwners(nets: NativeNetworks, network: string, now = Date.now()): Promise<(Owner & { live: boolean })[]> {
  const owners = new Map<string, Owner & { recorded: boolean; young: boolean }>();
  const key = (o: Owner) => `${o.containerId}\n${o.ifname}`;
  for (const a of await nets.attachments(network)) owners.set(key(a), { containerId: a.containerId, ifname: a.ifname, recorded: true, young: false });
  // Lease files: "<containerId>\n<ifname>\n" named by the address (csrc/core/native/ipam.cc).
  const dir = path.join(nets.config.stateDir, 'networks', network);
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => isIP(f) !== 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const f of files) {
    try {
      const [containerId, ifname] = readFileSync(path.join(dir, f), 'utf8').split('\n');
      const young = now - statSync(path.join(dir, f)).mtimeMs < YOUNG_LEASE_MS;
      if (!containerId || !ifname) continue;
      const had = owners.get(key({ containerId, ifname }));
      owners.set(key({ containerId, ifname }), { containerId, ifname, recorded: had?.recorded ?? false, young: young || (had?.young ?? false) });
    } catch {
      /* released meanwhile */
    }
  }
  return [...owners.values()].map((o) => ({
    containerId: o.containerId,
    ifname: o.ifname,
    live:
      o.containerId.startsWith(API_PREFIX) ||
      (o.young && !o.recorded) ||
      existsSync(`/sys/class/net/${native.nativeHostIfname(network, o.containerId, o.ifname)}`),
  }));
}

/** Releases the owners on `network` whose sandbox is gone; returns what the engine removed and who. */
export async function gcNativeNetwork(nets: NativeNetworks, network: string): Promise<{ released: Owner[]; leases: number; elements: number; links: number }> {
  const owners = await nativeOwners(nets, network);
  const live = owners.filter((o) => o.live).map(({ containerId, ifname }) => ({ containerId, ifname }));
  const stats = await nets.gc(network, live);
  return { released: owners.filter((o) => !o.live).map(({ containerId, ifname }) => ({ containerId, ifname })), ...stats };
}
