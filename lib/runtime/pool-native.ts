/**
 * Pool entries for a native network: a fresh namespace (lo up) with its
 * attachment already made (veth, address lease, routes, neighbours, record),
 * without ports, so that a create only publishes its ports
 * (NativeNetworks.addPorts) and bind-mounts the namespace.
 *
 * Unlike the namespace, which dies with its fd, an attachment is on disk and
 * on the host (lease, record, host veth, /32 route): a pool entry's engine
 * container id names the process that made it, `<prefix>_<pid>.<start>.<n>`,
 * so gc in any process tells a live owner's entries (kept) from a dead one's
 * (released). The `_` after the state dir's prefix never starts a sandbox id
 * (checkName), so an entry's id is never a sandbox's.
 */
import { invalidArgument, type PodnetError } from '../errors';
import { native } from '../addon';
import type { NativeNetworks } from '../native/networks';
import type { PoolBackend, WarmEntry } from './pool';
import { selfRef, type ProcRef } from './proc';

/** Every entry of this process gets its own number. */
let entries = 0;

/**
 * `prepare` runs once before the first entry (the network must be native and
 * exist: the default network is created on first use); a failure is retried
 * at the next refill.
 */
export function nativePoolBackend(nets: NativeNetworks, network: string, idPrefix: string, prepare: () => Promise<void>): PoolBackend {
  let ready: Promise<void> | undefined;
  return {
    async make(): Promise<WarmEntry> {
      ready ??= prepare().catch((e: Error) => {
        ready = undefined;
        throw e;
      });
      await ready;
      const me = selfRef();
      const containerId = `${idPrefix}_${me.pid}.${me.start}.${++entries}`;
      const ns = await native.netnsUnshare();
      try {
        // The namespace has no path: the engine opens it through this process's fd table.
        const attachment = await nets.attach({ network, containerId, ifname: 'eth0', netnsPath: `/proc/self/fd/${ns.fd}`, ports: [] });
        return { ns, attachment };
      } catch (e) {
        native.closeFd(ns.fd);
        throw e;
      }
    },
    async discard(e: WarmEntry): Promise<void> {
      try {
        // Only this fd holds the namespace: closing it takes the veth pair and its host route with it,
        // in the kernel's namespace cleanup, without waiting here for the link deletion's RCU grace period.
        if (e.attachment) await nets.detach(network, e.attachment.containerId, e.attachment.ifname, undefined, { namespaceGoes: true });
      } finally {
        native.closeFd(e.ns.fd);
      }
    },
  };
}

/** The process that made a pool entry, from its engine container id; undefined for any other id. */
export function poolEntryOwner(containerId: string, idPrefix: string): ProcRef | undefined {
  if (!containerId.startsWith(`${idPrefix}_`)) return undefined;
  const m = /^(\d+)\.(\d+)\.\d+$/.exec(containerId.slice(idPrefix.length + 1));
  return m ? { pid: Number(m[1]), start: Number(m[2]) } : undefined;
}

/** Thrown by a pool's first refill when its network is not a native one. */
export function notNative(network: string): PodnetError {
  return invalidArgument('pool network', `'${network}' is a CNI network; pools serve native networks and 'none'`);
}
