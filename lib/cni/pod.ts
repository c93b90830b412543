/**
 * The pod part of the CNI runtime (what ocicni does for CRI runtimes): a pod's
 * networks resolved and every input checked before anything runs, attachment
 * in order as eth0, eth1, ... with rollback, teardown from the cache alone
 * (also from another process after a crash), and CHECK.
 */
import { existsSync } from 'node:fs';

import ipaddr from 'ipaddr.js';

import { ErrorCode, PodnetError, errorMessage, invalidArgument } from '../errors';
import { setNetnsSysctl } from '../netns';
import { type CheckedPortMapping, checkHostPorts, checkPortMappings, resolveHostPorts, toCapabilityEntries, toPortMappings } from '../ports';
import { checkIfName, checkName, checkPath, isCidr, isIp } from '../validate';
import { type CacheEntry, cachePath, listAllCache, listCache, readCache, removeCache, writeCache } from './cache';
import { type CniNetworkConfig, hasIPv6, parseNetworkConfig } from './config';
import { killStrayPlugins } from './exec';
import type { ListAttachment, PluginRunner, RuntimeConf } from './libcni';
import { bridgeMasquerades, removeBridgeMasq } from './masq';
import { compareVersions, convertResult, normalizeResult, parseResult } from './result';
import { inSubnets, subnetsOf } from './subnets';
import type { PortMapping } from '../types';
import type { CniResult } from './types';

/** A network a pod joins, with its per-network options (modern Podman's model). */
export interface PodNetworkAttachment {
  name: string;
  /** Static addresses (IPv4 and/or IPv6, with or without prefix), through the `ips` capability. */
  ips?: string[];
  mac?: string;
  /** DNS names for the `aliases` capability. */
  aliases?: string[];
  /** Interface name in the pod; default eth<N> by position. */
  ifname?: string;
  /** Passed as the `bandwidth` capability, when a plugin declares it. */
  bandwidth?: Record<string, number>;
  /** Passed as the `ipRanges` capability, when a plugin declares it. */
  ipRanges?: unknown[];
  /** Passed as the `dns` capability, when a plugin declares it. */
  dns?: Record<string, unknown>;
}

export interface PodNetworkSpec {
  /** Container id (CNI_CONTAINERID). */
  id: string;
  /** Pod name, passed as K8S_POD_NAME in CNI_ARGS. */
  name?: string;
  /** Passed as K8S_POD_NAMESPACE in CNI_ARGS. */
  namespace?: string;
  /** The pod's network namespace (a bind mount path). */
  netnsPath: string;
  /** Networks in order; default: the default network. */
  networks?: (string | PodNetworkAttachment)[];
  /** Go to the first network. hostPort 0 picks a free port (reported back). */
  portMappings?: PortMapping[];
  /** Static IP for the first network (unless it names its own). */
  ip?: string;
  /** Static MAC for the first network (unless it names its own). */
  mac?: string;
}

export interface PodTeardownSpec {
  id: string;
  name?: string;
  namespace?: string;
  /** Default: the path cached at setup. A namespace already gone is fine. */
  netnsPath?: string;
  /** Default: every attachment cached for `id`. */
  networks?: (string | PodNetworkAttachment)[];
  /**
   * Drop the cache entries even where DEL failed (a plugin no longer installed,
   * one that keeps failing), as `podman rm -f` does, and report what may remain.
   */
  force?: boolean;
}

/** What a forced teardown could not undo: one error per attachment whose DEL failed. */
export interface PodTeardownReport {
  notUndone: PodnetError[];
}

export interface PodNetworkResult {
  network: string;
  ifname: string;
  /** The list's ADD result, normalized to CNI 1.0.0. */
  result: CniResult;
  /** On the first network: the port mappings with the host ports actually used. */
  portMappings?: PortMapping[];
}

/** One network of one pod, resolved and ready to run. */
interface Attachment extends ListAttachment {
  ports?: CheckedPortMapping[];
}

/** An attachment found for teardown or check, with its cache entry when there is one. */
type Item = { entry?: CacheEntry; att: ListAttachment };

/** What the pod layer needs of the runtime: the plugin runner, the cache and the configured networks. */
export interface PodContext {
  runner: PluginRunner;
  cacheDir: string;
  defaultNetwork: string;
  networks(): Promise<CniNetworkConfig[]>;
  lookup(name: string, nets: CniNetworkConfig[]): Promise<CniNetworkConfig>;
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function checkMac(what: string, mac: unknown): string {
  const m = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC_RE.test(m)) throw invalidArgument(what, `'${String(mac)}' is not a MAC address (xx:xx:xx:xx:xx:xx)`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw invalidArgument(what, `'${mac}' is a multicast address`);
  return m;
}

function checkStaticIp(what: string, ip: unknown, subnets: string[]): string {
  if (!(typeof ip === 'string' && (ip.includes('/') ? isCidr(ip) : isIp(ip)))) throw invalidArgument(what, `'${ip}' is not an IP address`);
  const addr = ipaddr.parse(ip.split('/')[0]);
  if (addr.range() === 'unspecified' || addr.range() === 'multicast' || addr.range() === 'broadcast') {
    throw invalidArgument(what, `'${ip}' cannot be a host address`);
  }
  // host-local refuses it too, but only after the bridge plugin has made links.
  if (subnets.length && !inSubnets(ip, subnets)) throw invalidArgument(what, `'${ip}' is outside the network's subnets ${subnets.join(', ')}`);
  return ip;
}

function checkArgValue(what: string, v: unknown): string {
  if (typeof v !== 'string' || v === '' || /[;=\0\n]/.test(v))
    throw invalidArgument(what, `'${String(v)}' is empty or contains ';', '=' or a control character`);
  return v;
}

const checkPodId = (id: unknown): string => checkName('pod id', id);

/** Attachment `i` of a networks list: a name or an object, its name checked, its ifname defaulting to eth<i>. */
function attachmentAt(list: readonly (string | PodNetworkAttachment)[], i: number): { a: PodNetworkAttachment; ifname: string } {
  const a = typeof list[i] === 'string' ? { name: list[i] as string } : (list[i] as PodNetworkAttachment);
  if (typeof a !== 'object' || a === null) throw invalidArgument(`networks[${i}]`, 'expected a network name or an object');
  checkName(`networks[${i}].name`, a.name);
  return { a, ifname: checkIfName(`networks[${i}].ifname`, a.ifname ?? `eth${i}`) };
}

function argsString(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}

function cniArgs(spec: { id: string; name?: string; namespace?: string }): [string, string][] {
  const args: [string, string][] = [['IgnoreUnknown', '1']];
  if (spec.namespace !== undefined) args.push(['K8S_POD_NAMESPACE', checkArgValue('pod namespace', spec.namespace)]);
  if (spec.name !== undefined) args.push(['K8S_POD_NAME', checkArgValue('pod name', spec.name)]);
  args.push(['K8S_POD_INFRA_CONTAINER_ID', spec.id]);
  return args;
}

/** A list's final result must stay inside the subnets its IPAM declares (a broken plugin could hand out anything). */
function checkResultSubnets(net: CniNetworkConfig, result: CniResult): string | undefined {
  const subnets = subnetsOf(net);
  if (!subnets.length) return undefined;
  const bad = (result.ips ?? []).find((ip) => !inSubnets(ip.address, subnets));
  return bad && `address ${bad.address} is outside the network's subnets ${subnets.join(', ')}`;
}

export class PodNetworks {
  constructor(readonly ctx: PodContext) {}

  /**
   * Resolves a pod's networks to attachments and checks every input (names,
   * static addresses, capabilities, port mappings, host ports free and on
   * local addresses, plugins installed and speaking the list's version),
   * before anything is made.
   */
  async validate(spec: Omit<PodNetworkSpec, 'netnsPath'>): Promise<Attachment[]> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    checkPodId(spec.id);
    cniArgs(spec);
    const list = spec.networks === undefined || spec.networks.length === 0 ? [this.ctx.defaultNetwork] : spec.networks;
    if (!Array.isArray(list)) throw invalidArgument('networks', 'expected an array');
    const nets = await this.ctx.networks();
    const ports = checkPortMappings(spec.portMappings);
    const seenIf = new Set<string>();
    const seenNet = new Set<string>();
    const atts: Attachment[] = [];
    for (let i = 0; i < list.length; i++) {
      const what = `networks[${i}]`;
      const { a, ifname } = attachmentAt(list, i);
      if (seenNet.has(a.name)) throw invalidArgument(what, `network '${a.name}' is listed twice`);
      seenNet.add(a.name);
      if (seenIf.has(ifname)) throw invalidArgument(`${what}.ifname`, `'${ifname}' is used twice`);
      seenIf.add(ifname);
      const net = await this.ctx.lookup(a.name, nets);
      const caps = new Set(
        net.plugins.flatMap((p) =>
          Object.entries(p.capabilities ?? {})
            .filter(([, on]) => on)
            .map(([c]) => c),
        ),
      );
      const need = (cap: string, field: string) => {
        if (!caps.has(cap)) throw invalidArgument(field, `network '${net.name}' has no plugin with the '${cap}' capability`);
      };
      const capabilityArgs: Record<string, unknown> = {};
      const ips = a.ips ?? (i === 0 && spec.ip !== undefined ? [spec.ip] : undefined);
      if (ips !== undefined) {
        if (!Array.isArray(ips) || ips.length === 0) throw invalidArgument(`${what}.ips`, 'expected a non-empty array');
        const subnets = subnetsOf(net);
        ips.forEach((ip, k) => checkStaticIp(`${what}.ips[${k}]`, ip, subnets));
        need('ips', `${what}.ips`);
        capabilityArgs.ips = ips;
      }
      const mac = a.mac ?? (i === 0 ? spec.mac : undefined);
      if (mac !== undefined) {
        need('mac', `${what}.mac`);
        capabilityArgs.mac = checkMac(`${what}.mac`, mac);
      }
      if (a.aliases !== undefined) {
        if (!Array.isArray(a.aliases) || a.aliases.some((x) => typeof x !== 'string' || x === ''))
          throw invalidArgument(`${what}.aliases`, 'expected an array of names');
        capabilityArgs.aliases = { [net.name]: a.aliases };
      }
      for (const k of ['bandwidth', 'ipRanges', 'dns'] as const) {
        if (a[k] !== undefined) {
          if (typeof a[k] !== 'object' || a[k] === null) throw invalidArgument(`${what}.${k}`, 'expected an object or array');
          capabilityArgs[k] = a[k];
        }
      }
      const att: Attachment = { net, ifname, capabilityArgs };
      if (i === 0 && ports.length) {
        need('portMappings', 'portMappings');
        att.ports = ports;
      }
      atts.push(att);
    }
    if (ports.length) await checkHostPorts(ports);
    await Promise.all(atts.map(async (a) => (a.bins = await this.ctx.runner.plugins(a.net))));
    return atts;
  }

  /**
   * Attaches a pod to its networks (default: the default network), in order,
   * as eth0, eth1, ...; results come back in that order. On any failure
   * everything already done is undone (reverse order) and the error re-raised.
   */
  async setUp(spec: PodNetworkSpec): Promise<PodNetworkResult[]> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    const id = checkPodId(spec.id);
    const netns = checkPath('netnsPath', spec.netnsPath);
    const pairs = cniArgs(spec);
    const rt: RuntimeConf = { containerId: id, netns, cniArgs: argsString(pairs) };
    const atts = await this.validate(spec);
    if (!existsSync(netns)) throw new PodnetError('ENOENT', `network namespace '${netns}' does not exist`, { path: netns });
    // A second ADD would fail and its rollback would undo the first: refuse it up front. An
    // interrupted ADD (an entry still `adding`) must be torn down first, with its partial result.
    for (const att of atts) {
      const cached = await readCache(cachePath(this.ctx.cacheDir, att.net.name, id, att.ifname));
      if (cached?.result !== undefined) {
        const how = cached.adding ? 'has an interrupted set-up (tear it down first)' : 'is already set up';
        throw new PodnetError(ErrorCode.CNI_ALREADY_SET_UP, `pod '${id}' ${how} on network '${att.net.name}' as ${att.ifname}`, {
          details: { id, network: att.net.name, ifname: att.ifname },
        });
      }
    }

    const done: { att: Attachment; result?: CniResult }[] = [];
    let dadOff = false;
    const results: PodNetworkResult[] = [];
    try {
      for (const att of atts) {
        if (att.ports) {
          att.ports = await resolveHostPorts(att.ports);
          att.capabilityArgs.portMappings = toCapabilityEntries(att.ports);
        }
        const entry: CacheEntry = {
          kind: 'cniCacheV1',
          containerId: id,
          config: att.net.bytes.toString('base64'),
          ifName: att.ifname,
          networkName: att.net.name,
          netns,
          cniArgs: pairs,
          capabilityArgs: att.capabilityArgs,
        };
        // Cached before ADD too, so a crash half-way can still be torn down from another process.
        await writeCache(this.ctx.cacheDir, { ...entry, adding: true });
        const rec: (typeof done)[number] = { att };
        done.push(rec);
        // The sysctl is namespace-wide: once per pod, before the first IPv6 link is made.
        if (hasIPv6(att.net) && !dadOff) {
          await setNetnsSysctl(netns, 'net.ipv6.conf.default.accept_dad', '0'); // DAD delays readiness by 1-2 s
          dadOff = true;
        }
        const result = await this.ctx.runner.add(att, rt, async (r) => {
          rec.result = r;
          await writeCache(this.ctx.cacheDir, { ...entry, adding: true, result: convertResult(r, att.net.cniVersion) });
        });
        const outside = checkResultSubnets(att.net, result);
        if (outside) {
          throw new PodnetError(ErrorCode.CNI_PLUGIN_OUTPUT, `CNI network '${att.net.name}': ${outside}`, { details: { network: att.net.name, result } });
        }
        await writeCache(this.ctx.cacheDir, { ...entry, result: convertResult(result, att.net.cniVersion) });
        const out: PodNetworkResult = { network: att.net.name, ifname: att.ifname, result: normalizeResult(result) };
        if (att.ports) out.portMappings = toPortMappings(att.ports);
        results.push(out);
      }
      return results;
    } catch (err) {
      for (const { att, result } of done.reverse()) {
        try {
          await this.ctx.runner.del(att, rt, result);
          await removeCache(this.ctx.cacheDir, att.net.name, id, att.ifname);
        } catch {
          // keep the cache entry so a later teardown can retry; the original error matters
        }
      }
      throw err;
    }
  }

  /**
   * The attachments to tear down or check: the named networks, else everything
   * cached for the pod. Only cached ones: the entry is written before ADD
   * starts, so a network without one never ran a plugin for this pod.
   */
  async #existing(spec: PodTeardownSpec): Promise<{ items: Item[]; errors: PodnetError[] }> {
    const id = checkPodId(spec.id);
    const errors: PodnetError[] = [];
    const nets = await this.ctx.networks();
    // The cached list is what ADD ran; if it cannot be read back, the list configured now under that name.
    const fromCache = (entry: CacheEntry): Item | undefined => {
      let net: CniNetworkConfig | undefined;
      try {
        net = parseNetworkConfig(JSON.parse(Buffer.from(entry.config, 'base64').toString()), `cache entry for '${entry.networkName}'`);
      } catch (err) {
        net = nets.find((n) => n.name === entry.networkName);
        if (!net)
          errors.push(err instanceof PodnetError ? err : new PodnetError(ErrorCode.CNI_CONFIG, `cache entry for '${entry.networkName}': ${errorMessage(err)}`));
      }
      return net && { entry, att: { net, ifname: entry.ifName, capabilityArgs: entry.capabilityArgs ?? {} } };
    };
    let entries: CacheEntry[];
    if (spec.networks === undefined) {
      entries = await listCache(this.ctx.cacheDir, id);
      entries.sort((a, b) => a.ifName.localeCompare(b.ifName, 'en', { numeric: true }));
    } else {
      if (!Array.isArray(spec.networks)) throw invalidArgument('networks', 'expected an array');
      const list = spec.networks.length ? spec.networks : [this.ctx.defaultNetwork];
      entries = [];
      for (let i = 0; i < list.length; i++) {
        const { a, ifname } = attachmentAt(list, i);
        const entry = await readCache(cachePath(this.ctx.cacheDir, a.name, id, ifname));
        if (entry) entries.push(entry);
      }
    }
    const items: Item[] = [];
    for (const e of entries) {
      const item = fromCache(e);
      if (item) items.push(item);
    }
    return { items, errors };
  }

  /** Every attachment in the cache: container id, network, interface and the namespace it was made in. */
  async cachedAttachments(): Promise<{ id: string; network: string; ifname: string; netnsPath: string }[]> {
    return (await listAllCache(this.ctx.cacheDir)).map((e) => ({ id: e.containerId, network: e.networkName, ifname: e.ifName, netnsPath: e.netns }));
  }

  /**
   * Detaches a pod: DEL for every network in reverse order with the cached
   * config and result, going on past errors (reported together as
   * ERR_CNI_TEARDOWN, or returned when `force`). Works from the cache alone; a
   * pod not set up is fine.
   */
  async tearDown(spec: PodTeardownSpec): Promise<PodTeardownReport> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    if (spec.netnsPath !== undefined) checkPath('netnsPath', spec.netnsPath);
    const { items, errors } = await this.#existing(spec);
    const notUndone: PodnetError[] = [];
    for (const { entry, att } of items.reverse()) {
      const nsPath = spec.netnsPath ?? entry?.netns ?? '';
      // DEL must succeed when the namespace is gone: then CNI_NETNS is left empty, as the spec allows.
      const netns = nsPath && existsSync(nsPath) ? nsPath : '';
      const rt: RuntimeConf = { containerId: spec.id, netns, cniArgs: argsString(entry?.cniArgs ?? cniArgs(spec)) };
      let prev: CniResult | undefined;
      try {
        if (entry?.result !== undefined) prev = parseResult(entry.result);
      } catch {
        prev = undefined; // a damaged cached result: DEL without it rather than not at all
      }
      // An interrupted ADD may have left plugins running (their owner was killed): they go first.
      if (entry?.adding && entry.netns) killStrayPlugins(spec.id, entry.netns, att.ifname);
      try {
        await this.ctx.runner.del(att, rt, prev);
        if (!netns && prev && bridgeMasquerades(att.net)) await removeBridgeMasq(att.net.name, spec.id, prev);
        await removeCache(this.ctx.cacheDir, att.net.name, spec.id, att.ifname);
      } catch (e) {
        const err = e instanceof PodnetError ? e : new PodnetError(ErrorCode.CNI_TEARDOWN, errorMessage(e), { cause: e });
        if (!spec.force) {
          errors.push(err);
          continue;
        }
        const left = prev?.ips?.map((ip) => ip.address).join(', ');
        notUndone.push(
          new PodnetError(
            err.code,
            `network '${att.net.name}' (${att.ifname}): DEL failed, its cache entry was dropped; what its plugins made may remain${left ? ` (addresses ${left})` : ''}: ${err.message}`,
            {
              details: { network: att.net.name, ifname: att.ifname, plugins: att.net.plugins.map((p) => p.type), result: prev },
              cause: err,
            },
          ),
        );
        await removeCache(this.ctx.cacheDir, att.net.name, spec.id, att.ifname).catch(() => {});
      }
    }
    if (errors.length) {
      throw new PodnetError(ErrorCode.CNI_TEARDOWN, `tear down pod '${spec.id}': ${errors.map((e) => e.message).join('; ')}`, {
        details: { errors: errors.map((e) => ({ code: e.code, message: e.message, details: e.details })) },
        cause: errors[0],
      });
    }
    return { notUndone };
  }

  /** CHECK for every network of the pod (in order) against its cached result; throws the first failure. */
  async check(spec: PodTeardownSpec): Promise<void> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    const { items, errors } = await this.#existing(spec);
    if (errors.length) throw errors[0];
    const notSetUp = (x: Item) => x.entry?.result === undefined || x.entry.adding === true;
    if (items.length === 0 || items.some(notSetUp)) {
      throw new PodnetError(
        ErrorCode.CNI_NOT_SET_UP,
        `pod '${spec.id}' is not set up on ${
          items.length
            ? items
                .filter(notSetUp)
                .map((x) => x.att.net.name)
                .join(', ')
            : 'any network'
        }`,
        {
          details: { id: spec.id },
        },
      );
    }
    for (const { entry, att } of items) {
      if (att.net.disableCheck) continue;
      if (compareVersions(att.net.cniVersion, '0.4.0') < 0) {
        throw new PodnetError(ErrorCode.CNI_VERSION, `network '${att.net.name}' (cniVersion ${att.net.cniVersion}) does not support CHECK`, {
          details: { network: att.net.name },
        });
      }
      const e = entry as CacheEntry;
      const rt: RuntimeConf = { containerId: spec.id, netns: spec.netnsPath ?? e.netns, cniArgs: argsString(e.cniArgs ?? []) };
      await this.ctx.runner.check(att, rt, parseResult(e.result));
    }
  }
}
