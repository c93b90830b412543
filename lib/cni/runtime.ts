/**
 * The CNI runtime (libcni + ocicni as Podman used them): network lists from a
 * config directory or the embedded default, ADD/DEL/CHECK of whole lists with
 * prevResult chaining and the libcni cache, and pod-level setup/teardown with
 * rollback.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';

import ipaddr from 'ipaddr.js';

import { writeFileAtomic } from '../atomic';
import { runCommand } from '../command';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { checkIfName, checkName, checkPath, isCidr, isIp } from '../validate';
import { setNetnsSysctl } from '../netns';
import { type CacheEntry, DEFAULT_CACHE_DIR, listCache, listCacheByNetwork, listAllCache, readCache, cachePath, removeCache, writeCache } from './cache';
import {
  type BridgeNetworkOptions,
  type CniNetworkConfig,
  type CniPluginConf,
  DEFAULT_CONF_DIR,
  DEFAULT_NETWORK_NAME,
  bridgeOf,
  buildBridgeNetwork,
  defaultNetworkOptions,
  hasIPv6,
  loadConfigDir,
  parseNetworkConfig,
} from './config';
import { DEFAULT_BIN_DIRS, type CniCommand, type FoundPlugin, execPlugin, findPlugin, outputError, parseOutput } from './exec';
import { bridgeMasquerades, removeBridgeMasq } from './masq';
import { type CheckedPortMapping, checkPortMappings, resolveHostPorts, toCapabilityEntries, toPortMappings } from '../ports';
import { ResultFormatError, compareVersions, convertResult, normalizeResult, parseResult } from './result';
import type { PortMapping } from '../types';
import type { CniResult } from './types';

export interface CniRuntimeOptions {
  /** Network configuration directory; default /etc/cni/net.d. */
  confDir?: string;
  /** Plugin directories searched first (then $CNI_PATH, /usr/lib/cni, /opt/cni/bin). */
  binDirs?: string[];
  /** libcni cache directory (results go to `<cacheDir>/results`); default /var/lib/cni. */
  cacheDir?: string;
  /** The network used when a pod names none; default `podnet` (embedded unless configured). */
  defaultNetwork?: string;
  /** A plugin running longer is killed (SIGKILL); default 60000. */
  pluginTimeoutMs?: number;
}

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
}

export interface PodNetworkResult {
  network: string;
  ifname: string;
  /** The list's ADD result, normalized to CNI 1.0.0. */
  result: CniResult;
  /** On the first network: the port mappings with the host ports actually used. */
  portMappings?: PortMapping[];
}

/** An attachment found for teardown or check, with its cache entry when there is one. */
type Item = { entry?: CacheEntry; att: Omit<Attachment, 'ports'> };

/** One network of one pod, resolved and ready to run. */
interface Attachment {
  net: CniNetworkConfig;
  /** The plugin binaries, once resolved. */
  bins?: string[];
  ifname: string;
  capabilityArgs: Record<string, unknown>;
  ports?: CheckedPortMapping[];
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function checkMac(what: string, mac: unknown): string {
  const m = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC_RE.test(m)) throw invalidArgument(what, `'${String(mac)}' is not a MAC address (xx:xx:xx:xx:xx:xx)`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw invalidArgument(what, `'${mac}' is a multicast address`);
  return m;
}

function checkStaticIp(what: string, ip: unknown): string {
  if (!(typeof ip === 'string' && (ip.includes('/') ? isCidr(ip) : isIp(ip)))) throw invalidArgument(what, `'${ip}' is not an IP address`);
  const addr = ipaddr.parse(ip.split('/')[0]);
  if (addr.range() === 'unspecified' || addr.range() === 'multicast' || addr.range() === 'broadcast') {
    throw invalidArgument(what, `'${ip}' cannot be a host address`);
  }
  return ip;
}

function checkArgValue(what: string, v: unknown): string {
  if (typeof v !== 'string' || v === '' || /[;=\0\n]/.test(v)) throw invalidArgument(what, `'${String(v)}' is empty or contains ';', '=' or a control character`);
  return v;
}

const checkId = (id: unknown): string => checkName('pod id', id);

/** Attachment `i` of a networks list: a name or an object, its name checked, its ifname defaulting to eth<i>. */
function attachmentAt(list: readonly (string | PodNetworkAttachment)[], i: number): { a: PodNetworkAttachment; ifname: string } {
  const a = typeof list[i] === 'string' ? { name: list[i] as string } : (list[i] as PodNetworkAttachment);
  if (typeof a !== 'object' || a === null) throw invalidArgument(`networks[${i}]`, 'expected a network name or an object');
  checkName(`networks[${i}].name`, a.name);
  return { a, ifname: checkIfName(`networks[${i}].ifname`, a.ifname ?? `eth${i}`) };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}


export class CniRuntime {
  readonly confDir: string;
  readonly binDirs: string[];
  readonly cacheDir: string;
  readonly defaultNetwork: string;
  readonly pluginTimeoutMs: number;
  /** Plugin path + identity -> supportedVersions (VERSION is asked once per binary). */
  readonly #versions = new Map<string, Promise<string[]>>();
  #embedded?: CniNetworkConfig;

  constructor(opts: CniRuntimeOptions = {}) {
    this.confDir = checkPath('confDir', opts.confDir ?? DEFAULT_CONF_DIR);
    this.cacheDir = checkPath('cacheDir', opts.cacheDir ?? DEFAULT_CACHE_DIR);
    if (opts.binDirs !== undefined && (!Array.isArray(opts.binDirs) || opts.binDirs.some((d) => typeof d !== 'string'))) {
      throw invalidArgument('binDirs', 'expected an array of directories');
    }
    const envPath = (process.env.CNI_PATH ?? '').split(':').filter(Boolean);
    this.binDirs = [...new Set([...(opts.binDirs ?? []).map((d) => checkPath('binDirs entry', d)), ...envPath, ...DEFAULT_BIN_DIRS])];
    this.defaultNetwork = opts.defaultNetwork ?? DEFAULT_NETWORK_NAME;
    checkName('defaultNetwork', this.defaultNetwork);
    this.pluginTimeoutMs = opts.pluginTimeoutMs ?? 60000;
    if (!Number.isInteger(this.pluginTimeoutMs) || this.pluginTimeoutMs <= 0) {
      throw invalidArgument('pluginTimeoutMs', `'${String(opts.pluginTimeoutMs)}' is not a positive integer`);
    }
  }

  // ---- networks ----

  #embeddedDefault(): CniNetworkConfig {
    this.#embedded ??= buildBridgeNetwork(defaultNetworkOptions());
    return this.#embedded;
  }

  /** The configured networks (file-name order) and the embedded default unless one of its name is configured. */
  async networks(): Promise<CniNetworkConfig[]> {
    const { networks } = await loadConfigDir(this.confDir);
    return networks.some((n) => n.name === DEFAULT_NETWORK_NAME) ? networks : [...networks, this.#embeddedDefault()];
  }

  /** The files in confDir that could not be loaded, one ERR_CNI_CONFIG each (naming the file and field). */
  async configErrors(): Promise<PodnetError[]> {
    return (await loadConfigDir(this.confDir)).errors;
  }

  async #lookup(name: string, nets?: CniNetworkConfig[]): Promise<CniNetworkConfig> {
    const found = (nets ?? (await this.networks())).find((n) => n.name === name);
    if (!found) {
      throw new PodnetError(ErrorCode.CNI_NETWORK_NOT_FOUND, `CNI network '${name}' not found in ${this.confDir}`, { details: { network: name } });
    }
    return found;
  }

  /** Writes `<confDir>/<name>.conflist` for a bridge network; refuses a name, bridge or subnet already in use. */
  async createNetwork(opts: BridgeNetworkOptions): Promise<CniNetworkConfig> {
    const net = buildBridgeNetwork(opts);
    const existing = (await loadConfigDir(this.confDir)).networks;
    const clash = (why: string) => new PodnetError(ErrorCode.CNI_NETWORK_EXISTS, `cannot create CNI network '${net.name}': ${why}`, { details: { network: net.name } });
    if (existing.some((n) => n.name === net.name)) throw clash('a network of that name exists');
    const others = existing.some((n) => n.name === DEFAULT_NETWORK_NAME) ? existing : [...existing, this.#embeddedDefault()];
    for (const o of others) {
      if (bridgeOf(o) === opts.bridge) throw clash(`bridge '${opts.bridge}' is used by network '${o.name}'`);
      const theirs = subnetsOf(o);
      for (const mine of subnetsOf(net)) {
        const hit = theirs.find((t) => overlaps(mine, t));
        if (hit) throw clash(`subnet ${mine} overlaps ${hit} of network '${o.name}'`);
      }
    }
    const file = path.join(this.confDir, `${net.name}.conflist`);
    try {
      writeFileAtomic(file, JSON.stringify(JSON.parse(net.bytes.toString()), null, 2) + '\n', { mode: 0o644, dirMode: 0o755, exclusive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw clash(`'${file}' exists`);
      throw new PodnetError((err as NodeJS.ErrnoException).code ?? 'EIO', `write '${file}': ${errorText(err)}`, { path: file, cause: err });
    }
    net.file = file;
    return net;
  }

  /**
   * Removes a configured network: its file, its host-local leases directory and
   * its bridge. Refused while pods are attached (per the cache) unless `force`.
   */
  async removeNetwork(name: string, opts: { force?: boolean } = {}): Promise<void> {
    checkName('network name', name);
    const net = (await loadConfigDir(this.confDir)).networks.find((n) => n.name === name);
    if (!net?.file) throw new PodnetError(ErrorCode.CNI_NETWORK_NOT_FOUND, `CNI network '${name}' not found in ${this.confDir}`, { details: { network: name } });
    const users = await listCacheByNetwork(this.cacheDir, name);
    if (users.length && !opts.force) {
      throw new PodnetError(ErrorCode.CNI_NETWORK_IN_USE, `CNI network '${name}' is in use by ${users.map((u) => u.containerId).join(', ')}`, {
        details: { network: name, containers: users.map((u) => u.containerId) },
      });
    }
    await rm(net.file, { force: true });
    for (const p of net.plugins) {
      const ipam = p.ipam as { type?: string; dataDir?: string } | undefined;
      if (ipam?.type === 'host-local') await rm(path.join(ipam.dataDir ?? '/var/lib/cni/networks', name), { recursive: true, force: true });
    }
    const bridge = bridgeOf(net);
    if (bridge && existsSync(`/sys/class/net/${bridge}`)) {
      const r = await runCommand('ip', ['link', 'delete', bridge]).catch((e: Error) => ({ code: -1, stderr: e.message }));
      if (r.code !== 0 && existsSync(`/sys/class/net/${bridge}`)) {
        throw new PodnetError(ErrorCode.CNI_TEARDOWN, `remove bridge '${bridge}' of network '${name}': ${r.stderr.trim()}`, { details: { network: name, bridge } });
      }
    }
  }

  // ---- plugin execution ----

  /** The plugin binaries of a list, each checked to speak the list's version. */
  async #plugins(net: CniNetworkConfig): Promise<string[]> {
    return Promise.all(
      net.plugins.map(async (p) => {
        const bin = await findPlugin(p.type, this.binDirs);
        const versions = await this.#supportedVersions(bin, net);
        if (!versions.includes(net.cniVersion)) {
          throw new PodnetError(ErrorCode.CNI_VERSION, `CNI plugin '${p.type}' of network '${net.name}' does not support version ${net.cniVersion} (supports ${versions.join(', ')})`, {
            details: { plugin: p.type, network: net.name, cniVersion: net.cniVersion, supported: versions },
          });
        }
        return bin.path;
      }),
    );
  }

  /** VERSION is asked once per binary (until it is replaced). */
  #supportedVersions(bin: FoundPlugin, net: CniNetworkConfig): Promise<string[]> {
    let p = this.#versions.get(bin.key);
    if (!p) {
      const call = { command: 'VERSION' as const, plugin: bin.path, network: net.name, path: this.binDirs.join(':'), timeoutMs: this.pluginTimeoutMs };
      p = execPlugin({ ...call, stdin: JSON.stringify({ cniVersion: net.cniVersion }) }).then((out) => {
        const v = parseOutput(out, call) as { supportedVersions?: unknown };
        if (!Array.isArray(v?.supportedVersions) || v.supportedVersions.some((x) => typeof x !== 'string')) {
          throw outputError(call, 'VERSION output has no supportedVersions array');
        }
        return v.supportedVersions as string[];
      });
      this.#versions.set(bin.key, p);
      p.catch(() => this.#versions.delete(bin.key));
    }
    return p;
  }

  /**
   * Runs `command` over a whole list for one attachment: ADD and CHECK in
   * order, DEL in reverse (every plugin, collecting errors). Returns the ADD
   * result; `progress` sees each intermediate ADD result (for rollback).
   */
  async #runList(
    command: Exclude<CniCommand, 'VERSION'>,
    att: { net: CniNetworkConfig; ifname: string; capabilityArgs: Record<string, unknown>; bins?: string[] },
    containerId: string,
    netns: string,
    cniArgs: string,
    prevResult?: CniResult,
    progress?: (r: CniResult) => void,
  ): Promise<CniResult | undefined> {
    const { net } = att;
    const bins = att.bins ?? (await this.#plugins(net));
    const base = { network: net.name, containerId, netns, ifname: att.ifname, args: cniArgs, path: this.binDirs.join(':'), timeoutMs: this.pluginTimeoutMs };
    if (command === 'DEL') {
      // libcni passes prevResult on DEL from 0.4.0 on; the firewall plugin needs it to find its rules.
      const prev = compareVersions(net.cniVersion, '0.4.0') >= 0 ? prevResult : undefined;
      const errors: unknown[] = [];
      for (let i = net.plugins.length - 1; i >= 0; i--) {
        const stdin = pluginStdin(net.plugins[i], net, att.capabilityArgs, prev);
        await execPlugin({ ...base, command, plugin: bins[i], stdin }).catch((e) => errors.push(e));
      }
      if (errors.length) throw errors[0];
      return undefined;
    }
    let result = prevResult;
    for (let i = 0; i < net.plugins.length; i++) {
      const stdin = pluginStdin(net.plugins[i], net, att.capabilityArgs, command === 'ADD' && i === 0 ? undefined : result);
      const call = { ...base, command, plugin: bins[i], stdin };
      const out = await execPlugin(call);
      if (command === 'CHECK') continue;
      try {
        result = parseResult(parseOutput(out, call));
      } catch (e) {
        if (e instanceof ResultFormatError) throw outputError(call, e.message);
        throw e;
      }
      progress?.(result);
    }
    return result;
  }

  // ---- pods ----

  /** Resolves a pod's networks to attachments and validates every input, before anything runs. */
  async #attachments(spec: PodNetworkSpec): Promise<Attachment[]> {
    const list = spec.networks === undefined || spec.networks.length === 0 ? [this.defaultNetwork] : spec.networks;
    if (!Array.isArray(list)) throw invalidArgument('networks', 'expected an array');
    const nets = await this.networks();
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
      const net = await this.#lookup(a.name, nets);
      const caps = new Set(net.plugins.flatMap((p) => Object.entries(p.capabilities ?? {}).filter(([, on]) => on).map(([c]) => c)));
      const need = (cap: string, field: string) => {
        if (!caps.has(cap)) throw invalidArgument(field, `network '${net.name}' has no plugin with the '${cap}' capability`);
      };
      const capabilityArgs: Record<string, unknown> = {};
      const ips = a.ips ?? (i === 0 && spec.ip !== undefined ? [spec.ip] : undefined);
      if (ips !== undefined) {
        if (!Array.isArray(ips) || ips.length === 0) throw invalidArgument(`${what}.ips`, 'expected a non-empty array');
        ips.forEach((ip, k) => checkStaticIp(`${what}.ips[${k}]`, ip));
        need('ips', `${what}.ips`);
        capabilityArgs.ips = ips;
      }
      const mac = a.mac ?? (i === 0 ? spec.mac : undefined);
      if (mac !== undefined) {
        need('mac', `${what}.mac`);
        capabilityArgs.mac = checkMac(`${what}.mac`, mac);
      }
      if (a.aliases !== undefined) {
        if (!Array.isArray(a.aliases) || a.aliases.some((x) => typeof x !== 'string' || x === '')) throw invalidArgument(`${what}.aliases`, 'expected an array of names');
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
    await Promise.all(atts.map(async (a) => (a.bins = await this.#plugins(a.net))));
    return atts;
  }

  #cniArgs(spec: { id: string; name?: string; namespace?: string }): [string, string][] {
    const args: [string, string][] = [['IgnoreUnknown', '1']];
    if (spec.namespace !== undefined) args.push(['K8S_POD_NAMESPACE', checkArgValue('pod namespace', spec.namespace)]);
    if (spec.name !== undefined) args.push(['K8S_POD_NAME', checkArgValue('pod name', spec.name)]);
    args.push(['K8S_POD_INFRA_CONTAINER_ID', spec.id]);
    return args;
  }

  /**
   * Attaches a pod to its networks (default: the default network), in order,
   * as eth0, eth1, ...; results come back in that order. On any failure
   * everything already done is undone (reverse order) and the error re-raised.
   */
  async setUpPod(spec: PodNetworkSpec): Promise<PodNetworkResult[]> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    const id = checkId(spec.id);
    const netns = checkPath('netnsPath', spec.netnsPath);
    const pairs = this.#cniArgs(spec);
    const cniArgs = pairs.map(([k, v]) => `${k}=${v}`).join(';');
    const atts = await this.#attachments(spec);
    if (!existsSync(netns)) throw new PodnetError('ENOENT', `network namespace '${netns}' does not exist`, { path: netns });
    // A second ADD would fail and its rollback would undo the first: refuse it up front.
    for (const att of atts) {
      const cached = await readCache(cachePath(this.cacheDir, att.net.name, id, att.ifname));
      if (cached?.result !== undefined) {
        throw new PodnetError(ErrorCode.CNI_ALREADY_SET_UP, `pod '${id}' is already set up on network '${att.net.name}' as ${att.ifname}`, {
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
        await writeCache(this.cacheDir, entry);
        const rec: (typeof done)[number] = { att };
        done.push(rec);
        // The sysctl is namespace-wide: once per pod, before the first IPv6 link is made.
        if (hasIPv6(att.net) && !dadOff) {
          await this.#disableDad(netns);
          dadOff = true;
        }
        const result = (await this.#runList('ADD', att, id, netns, cniArgs, undefined, (r) => (rec.result = r))) as CniResult;
        await writeCache(this.cacheDir, { ...entry, result: convertResult(result, att.net.cniVersion) });
        const out: PodNetworkResult = { network: att.net.name, ifname: att.ifname, result: normalizeResult(result) };
        if (att.ports) out.portMappings = toPortMappings(att.ports);
        results.push(out);
      }
      return results;
    } catch (err) {
      for (const { att, result } of done.reverse()) {
        try {
          await this.#runList('DEL', att, id, netns, cniArgs, result);
          await removeCache(this.cacheDir, att.net.name, id, att.ifname);
        } catch {
          // keep the cache entry so a later tearDownPod can retry; the original error matters
        }
      }
      throw err;
    }
  }

  /** The attachments to tear down or check: the named networks, else everything cached for the pod. */
  async #existing(spec: PodTeardownSpec): Promise<{ items: Item[]; errors: PodnetError[] }> {
    const id = checkId(spec.id);
    const errors: PodnetError[] = [];
    const nets = await this.networks();
    const configured = (name: string) => nets.find((n) => n.name === name);
    // The cached list is what ADD ran; if it cannot be read back, the list configured now under that name.
    const fromCache = (entry: CacheEntry): Item | undefined => {
      let net: CniNetworkConfig | undefined;
      try {
        net = parseNetworkConfig(JSON.parse(Buffer.from(entry.config, 'base64').toString()), `cache entry for '${entry.networkName}'`);
      } catch (err) {
        net = configured(entry.networkName);
        if (!net) errors.push(err instanceof PodnetError ? err : new PodnetError(ErrorCode.CNI_CONFIG, `cache entry for '${entry.networkName}': ${errorText(err)}`));
      }
      return net && { entry, att: { net, ifname: entry.ifName, capabilityArgs: entry.capabilityArgs ?? {} } };
    };
    const items: Item[] = [];
    if (spec.networks === undefined) {
      const entries = await listCache(this.cacheDir, id);
      entries.sort((a, b) => a.ifName.localeCompare(b.ifName, 'en', { numeric: true }));
      for (const e of entries) {
        const item = fromCache(e);
        if (item) items.push(item);
      }
      return { items, errors };
    }
    if (!Array.isArray(spec.networks)) throw invalidArgument('networks', 'expected an array');
    const list = spec.networks.length ? spec.networks : [this.defaultNetwork];
    for (let i = 0; i < list.length; i++) {
      const { a, ifname } = attachmentAt(list, i);
      const entry = await readCache(cachePath(this.cacheDir, a.name, id, ifname));
      const item = entry ? fromCache(entry) : undefined;
      const net = configured(a.name);
      // Not cached: DEL with the current list (cleans up after a crash), or nothing if it is unknown.
      if (item) items.push(item);
      else if (net && !entry) items.push({ att: { net, ifname, capabilityArgs: {} } });
    }
    return { items, errors };
  }

  /** Every attachment in the cache: container id, network, interface and the namespace it was made in. */
  async cachedAttachments(): Promise<{ id: string; network: string; ifname: string; netnsPath: string }[]> {
    return (await listAllCache(this.cacheDir)).map((e) => ({ id: e.containerId, network: e.networkName, ifname: e.ifName, netnsPath: e.netns }));
  }

  /**
   * Detaches a pod: DEL for every network in reverse order with the cached
   * config and result, going on past errors (reported together as
   * ERR_CNI_TEARDOWN). Works from the cache alone; a pod not set up is fine.
   */
  async tearDownPod(spec: PodTeardownSpec): Promise<void> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    if (spec.netnsPath !== undefined) checkPath('netnsPath', spec.netnsPath);
    const { items, errors } = await this.#existing(spec);
    for (const { entry, att } of items.reverse()) {
      const nsPath = spec.netnsPath ?? entry?.netns ?? '';
      // DEL must succeed when the namespace is gone: then CNI_NETNS is left empty, as the spec allows.
      const netns = nsPath && existsSync(nsPath) ? nsPath : '';
      const cniArgs = (entry?.cniArgs ?? this.#cniArgs({ ...spec, id: spec.id })).map(([k, v]) => `${k}=${v}`).join(';');
      let prev: CniResult | undefined;
      try {
        if (entry?.result !== undefined) prev = parseResult(entry.result);
      } catch {
        prev = undefined; // a damaged cached result: DEL without it rather than not at all
      }
      try {
        await this.#runList('DEL', att, spec.id, netns, cniArgs, prev);
        if (!netns && prev && bridgeMasquerades(att.net)) await removeBridgeMasq(att.net.name, spec.id, prev);
        await removeCache(this.cacheDir, att.net.name, spec.id, att.ifname);
      } catch (e) {
        errors.push(e instanceof PodnetError ? e : new PodnetError(ErrorCode.CNI_TEARDOWN, errorText(e), { cause: e }));
      }
    }
    if (errors.length) {
      throw new PodnetError(ErrorCode.CNI_TEARDOWN, `tear down pod '${spec.id}': ${errors.map((e) => e.message).join('; ')}`, {
        details: { errors: errors.map((e) => ({ code: e.code, message: e.message, details: e.details })) },
        cause: errors[0],
      });
    }
  }

  /** CHECK for every network of the pod (in order) against its cached result; throws the first failure. */
  async checkPod(spec: PodTeardownSpec): Promise<void> {
    if (typeof spec !== 'object' || spec === null) throw invalidArgument('pod', 'expected an object');
    const { items, errors } = await this.#existing(spec);
    if (errors.length) throw errors[0];
    if (items.length === 0 || items.some((x) => x.entry?.result === undefined)) {
      throw new PodnetError(ErrorCode.CNI_NOT_SET_UP, `pod '${spec.id}' is not set up on ${items.length ? items.filter((x) => !x.entry?.result).map((x) => x.att.net.name).join(', ') : 'any network'}`, {
        details: { id: spec.id },
      });
    }
    for (const { entry, att } of items) {
      if (att.net.disableCheck) continue;
      if (compareVersions(att.net.cniVersion, '0.4.0') < 0) {
        throw new PodnetError(ErrorCode.CNI_VERSION, `network '${att.net.name}' (cniVersion ${att.net.cniVersion}) does not support CHECK`, { details: { network: att.net.name } });
      }
      const e = entry as CacheEntry;
      const netns = spec.netnsPath ?? e.netns;
      const cniArgs = (e.cniArgs ?? []).map(([k, v]) => `${k}=${v}`).join(';');
      await this.#runList('CHECK', att, spec.id, netns, cniArgs, parseResult(e.result));
    }
  }

  /** IPv6 duplicate-address detection delays readiness by 1-2 s: off for new links in the sandbox. */
  async #disableDad(netns: string): Promise<void> {
    await setNetnsSysctl(netns, 'net.ipv6.conf.default.accept_dad', '0');
  }
}

/** A plugin's stdin: its config without `capabilities`, plus name, cniVersion, runtimeConfig, prevResult. */
export function pluginStdin(plugin: CniPluginConf, net: CniNetworkConfig, capabilityArgs: Record<string, unknown>, prevResult?: CniResult): string {
  const { capabilities, ...conf } = plugin;
  const out: Record<string, unknown> = { ...conf, name: net.name, cniVersion: net.cniVersion };
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {})) {
    if (on && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
  }
  if (Object.keys(rc).length) out.runtimeConfig = { ...(conf.runtimeConfig as object | undefined), ...rc };
  if (prevResult) out.prevResult = convertResult(prevResult, net.cniVersion);
  return JSON.stringify(out);
}

function subnetsOf(net: CniNetworkConfig): string[] {
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

function overlaps(a: string, b: string): boolean {
  const [na, la] = ipaddr.parseCIDR(a);
  const [nb, lb] = ipaddr.parseCIDR(b);
  if (na.kind() !== nb.kind()) return false;
  return la <= lb ? nb.match([na, la] as never) : na.match([nb, lb] as never);
}
