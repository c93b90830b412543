/**
 * Link statistics of sandboxes (Podman 2.x's getContainerNetIO, for every
 * interface and for rootless sandboxes too), read with libnl inside each
 * network namespace. Sockets are kept per namespace between calls, so
 * repeated polling costs one netlink round trip per entry; `releaseStats`
 * drops a namespace's socket at teardown (otherwise it is dropped within a
 * second of a poll that finds its path gone).
 */
import { ErrorCode, PodnetError, fromNative, invalidArgument } from './errors';
import { native } from './addon';
import { checkIfName, checkPath } from './validate';

/** A link's counters (IFLA_STATS64; exact as numbers up to 2^53). */
export interface LinkStats {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  rxErrors: number;
  txErrors: number;
  rxDropped: number;
  txDropped: number;
  multicast: number;
  collisions: number;
  rxLengthErrors: number;
  rxOverErrors: number;
  rxCrcErrors: number;
  rxFrameErrors: number;
  rxFifoErrors: number;
  rxMissedErrors: number;
  txAbortedErrors: number;
  txCarrierErrors: number;
  txFifoErrors: number;
  txHeartbeatErrors: number;
  txWindowErrors: number;
  rxCompressed: number;
  txCompressed: number;
  rxNohandler: number;
}

/** Every non-loopback interface of a namespace, by name. */
export type LinkStatsByName = Record<string, LinkStats>;

export interface LinkStatsEntry {
  /** Namespace path; null or '' for 'none' networking (result null). */
  netnsPath: string | null | undefined;
  /** One interface; absent for every non-loopback interface. */
  ifname?: string;
}

/** One entry's outcome in linkStatsMany: `stats` or `error`, never both. */
export type LinkStatsOutcome =
  | { netnsPath: string | null | undefined; ifname?: string; stats: LinkStats | LinkStatsByName | null; error?: undefined }
  | { netnsPath: string | null | undefined; ifname?: string; stats?: undefined; error: PodnetError };

/** The order csrc/core/link_stats.cc writes counters in (struct rtnl_link_stats64's). */
const COUNTERS = [
  'rxPackets',
  'txPackets',
  'rxBytes',
  'txBytes',
  'rxErrors',
  'txErrors',
  'rxDropped',
  'txDropped',
  'multicast',
  'collisions',
  'rxLengthErrors',
  'rxOverErrors',
  'rxCrcErrors',
  'rxFrameErrors',
  'rxFifoErrors',
  'rxMissedErrors',
  'txAbortedErrors',
  'txCarrierErrors',
  'txFifoErrors',
  'txHeartbeatErrors',
  'txWindowErrors',
  'rxCompressed',
  'txCompressed',
  'rxNohandler',
] as const satisfies ReadonlyArray<keyof LinkStats>;

function counters(c: Float64Array, o: number): LinkStats {
  // An object literal keeps one hidden class for every result (fast to build and read).
  return {
    rxPackets: c[o + 0],
    txPackets: c[o + 1],
    rxBytes: c[o + 2],
    txBytes: c[o + 3],
    rxErrors: c[o + 4],
    txErrors: c[o + 5],
    rxDropped: c[o + 6],
    txDropped: c[o + 7],
    multicast: c[o + 8],
    collisions: c[o + 9],
    rxLengthErrors: c[o + 10],
    rxOverErrors: c[o + 11],
    rxCrcErrors: c[o + 12],
    rxFrameErrors: c[o + 13],
    rxFifoErrors: c[o + 14],
    rxMissedErrors: c[o + 15],
    txAbortedErrors: c[o + 16],
    txCarrierErrors: c[o + 17],
    txFifoErrors: c[o + 18],
    txHeartbeatErrors: c[o + 19],
    txWindowErrors: c[o + 20],
    rxCompressed: c[o + 21],
    txCompressed: c[o + 22],
    rxNohandler: c[o + 23],
  };
}

function isNone(p: string | null | undefined): p is null | undefined | '' {
  return p === null || p === undefined || p === '';
}

function toError(err: unknown, path: string, ifname?: string): PodnetError {
  const e = err as { code?: string; message?: string };
  if (e?.code === ErrorCode.NO_SUCH_INTERFACE) {
    return new PodnetError(ErrorCode.NO_SUCH_INTERFACE, e.message ?? `no interface '${ifname}' in '${path}'`, {
      path,
      details: { ifname },
      cause: err,
    });
  }
  return fromNative(err, `link statistics of '${path}'`);
}

/**
 * Reads many namespaces in one native call (one thread, sockets cached per
 * namespace). Each entry gets its own stats or error; only a malformed
 * argument (not a list) throws.
 */
export async function linkStatsMany(entries: readonly LinkStatsEntry[]): Promise<LinkStatsOutcome[]> {
  if (!Array.isArray(entries)) throw invalidArgument('linkStatsMany entries', 'expected a list');
  const out: LinkStatsOutcome[] = new Array(entries.length);
  const req: Array<[string, string | null]> = [];
  const at: number[] = [];
  entries.forEach((entry: LinkStatsEntry, i: number) => {
    const netnsPath = entry?.netnsPath;
    const base = entry?.ifname === undefined ? { netnsPath } : { netnsPath, ifname: entry.ifname };
    try {
      if (typeof entry !== 'object' || entry === null) throw invalidArgument(`entry ${i}`, 'expected {netnsPath, ifname?}');
      if (isNone(netnsPath)) {
        out[i] = { ...base, stats: null };
        return;
      }
      checkPath('netns path', netnsPath);
      const ifname = entry.ifname === undefined ? null : checkIfName('interface name', entry.ifname);
      req.push([netnsPath, ifname]);
      at.push(i);
    } catch (err) {
      out[i] = { ...base, error: err as PodnetError };
    }
  });
  if (req.length > 0) {
    const [errors, counts, names, values] = await native.statsRead(req).catch((err: unknown) => {
      throw fromNative(err, `link statistics of ${req.length} namespace(s)`);
    });
    let k = 0;
    for (let j = 0; j < req.length; j++) {
      const [path, ifname] = req[j];
      const base = ifname === null ? { netnsPath: path } : { netnsPath: path, ifname };
      if (errors[j] !== undefined) {
        out[at[j]] = { ...base, error: toError(errors[j], path, ifname ?? undefined) };
        continue;
      }
      if (ifname !== null) {
        out[at[j]] = { ...base, stats: counters(values, k * COUNTERS.length) };
      } else {
        const byName: LinkStatsByName = {};
        for (let m = 0; m < counts[j]; m++) byName[names[k + m]] = counters(values, (k + m) * COUNTERS.length);
        out[at[j]] = { ...base, stats: byName };
      }
      k += counts[j];
    }
  }
  return out;
}

/**
 * Statistics of one interface of a namespace, or with no `ifname` of every
 * non-loopback interface keyed by name (eth0, tap0 under slirp4netns, ...).
 * 'none' networking (null/'' path) gives null; a missing interface is
 * ERR_NO_SUCH_INTERFACE.
 */
export function linkStats(netnsPath: string | null | undefined, ifname: string): Promise<LinkStats | null>;
export function linkStats(netnsPath: string | null | undefined): Promise<LinkStatsByName | null>;
export async function linkStats(netnsPath: string | null | undefined, ifname?: string): Promise<LinkStats | LinkStatsByName | null> {
  if (isNone(netnsPath)) return null;
  checkPath('netns path', netnsPath);
  if (ifname !== undefined) checkIfName('interface name', ifname);
  const [r] = await linkStatsMany([ifname === undefined ? { netnsPath } : { netnsPath, ifname }]);
  if (r.error) throw r.error;
  return r.stats!;
}

/**
 * Closes the cached netlink socket of a namespace (by the path it was read
 * through), or every cached socket when no path is given. A cached socket
 * keeps its namespace alive, so a runtime calls this at teardown. Resolves
 * with the number of sockets closed.
 */
export async function releaseStats(netnsPath?: string): Promise<number> {
  if (netnsPath !== undefined) checkPath('netns path', netnsPath);
  try {
    return await native.statsRelease(netnsPath ?? null);
  } catch (err) {
    throw fromNative(err, 'release link statistics sockets');
  }
}

/** How many namespace sockets (and paths leading to them) are cached. */
export function statsCacheInfo(): Promise<{ sockets: number; paths: number }> {
  return native.statsCacheInfo();
}
