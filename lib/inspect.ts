/**
 * Inspect: a sandbox's port mappings, namespace path, requested networks and
 * CNI results as Docker/Podman `NetworkSettings` (Podman 2.x's
 * getContainerNetworkInfo and resultToBasicNetworkConfig, defects fixed), and
 * the `container:<id>` namespace chain (Podman 2.x's getContainerNetNS).
 *
 * Objects are built in the field order of Podman's InspectNetworkSettings, so
 * `JSON.stringify` prints what `podman inspect` prints for the same inputs
 * (map keys sorted as Go's encoding/json sorts them; fields Podman omits when
 * empty are left out).
 */
import ipaddr from 'ipaddr.js';

import type { CniResult } from './cni/types';
import type { PortMapping } from './types';
import { ErrorCode, PodnetError, invalidArgument } from './errors';
import { isIp } from './validate';

/** Fields common to the sandbox and to each network (Podman's InspectBasicNetworkConfig). */
export interface BasicNetworkConfig {
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  /** Later IPv4 addresses as CIDR; absent when none (Podman: omitempty). */
  SecondaryIPAddresses?: string[];
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  /** Later IPv6 addresses as CIDR; absent when none. */
  SecondaryIPv6Addresses?: string[];
  MacAddress: string;
  /** MACs of other interfaces the addresses point at; absent when none. Podman's JSON name. */
  AdditionalMACAddresses?: string[];
}

export interface InspectHostPort {
  HostIp: string;
  HostPort: string;
}

/** One named network the sandbox joined (Podman's InspectAdditionalNetwork). */
export interface AdditionalNetwork extends BasicNetworkConfig {
  NetworkID?: string;
  Aliases?: string[];
  DriverOpts: Record<string, string> | null;
  IPAMConfig: Record<string, string> | null;
  Links: string[] | null;
}

export interface NetworkSettings extends BasicNetworkConfig {
  Bridge: string;
  SandboxID: string;
  HairpinMode: boolean;
  LinkLocalIPv6Address: string;
  LinkLocalIPv6PrefixLen: number;
  /** `"<containerPort>/<proto>"` -> every host binding of that port, in mapping order. */
  Ports: Record<string, InspectHostPort[]>;
  SandboxKey: string;
  /** Present when networks were named: one entry per requested network. */
  Networks?: Record<string, AdditionalNetwork>;
}

export interface NetworkSettingsInput {
  /** The sandbox's namespace path; empty or absent when its network is down. */
  netnsPath?: string | null;
  portMappings?: PortMapping[];
  /** Requested network names in the order their results were produced; empty = the default network. */
  networks?: string[];
  /** One normalized CNI result per network (slirp4netns and none have none). */
  results?: CniResult[];
  /** Optional per-network DNS aliases (Podman 2.1 `Aliases`). */
  aliases?: Record<string, string[]>;
}

/** What a sandbox's namespace is, for resolveNetnsPath's lookup. */
export interface NetnsRef {
  /** Its own namespace path; null/absent for 'none' (or while down). */
  netnsPath?: string | null;
  /** The sandbox whose namespace it joins (`container:<id>` mode). */
  netnsContainer?: string;
}

function emptyBasic(): BasicNetworkConfig {
  return {
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    MacAddress: '',
  };
}

/** Puts the basic fields in Podman's order (optional lists only when non-empty). */
function ordered(c: BasicNetworkConfig): BasicNetworkConfig {
  const o: BasicNetworkConfig = {
    EndpointID: c.EndpointID,
    Gateway: c.Gateway,
    IPAddress: c.IPAddress,
    IPPrefixLen: c.IPPrefixLen,
  } as BasicNetworkConfig;
  if (c.SecondaryIPAddresses?.length) o.SecondaryIPAddresses = c.SecondaryIPAddresses;
  o.IPv6Gateway = c.IPv6Gateway;
  o.GlobalIPv6Address = c.GlobalIPv6Address;
  o.GlobalIPv6PrefixLen = c.GlobalIPv6PrefixLen;
  if (c.SecondaryIPv6Addresses?.length) o.SecondaryIPv6Addresses = c.SecondaryIPv6Addresses;
  o.MacAddress = c.MacAddress;
  if (c.AdditionalMACAddresses?.length) o.AdditionalMACAddresses = c.AdditionalMACAddresses;
  return o;
}

function badResult(why: string, details?: Record<string, unknown>): PodnetError {
  return new PodnetError(ErrorCode.INVALID_CNI_RESULT, `invalid CNI result: ${why}`, details ? { details } : {});
}

/** Canonical text of an address, as Go's net.IP.String() prints it. */
function canonical(ip: ipaddr.IPv4 | ipaddr.IPv6): string {
  return ip.kind() === 'ipv6' ? (ip as ipaddr.IPv6).toRFC5952String() : ip.toString();
}

function parseGateway(gw: unknown, family: 4 | 6, at: number): string {
  if (gw === undefined || gw === null || gw === '') return '';
  if (typeof gw !== 'string' || !isIp(gw)) throw badResult(`ips[${at}].gateway '${String(gw)}' is not an IP address`);
  const ip = ipaddr.parse(gw);
  if ((ip.kind() === 'ipv6') !== (family === 6)) throw badResult(`ips[${at}].gateway '${gw}' is not IPv${family}`);
  return canonical(ip);
}

/**
 * The basic network fields of one CNI result: the first IPv4 address is
 * primary and later ones secondary, likewise for IPv6; the family comes from
 * `version` (0.3.x/0.4.0) or from the address (1.0.0); the MAC is that of the
 * interface an address points at (index 0 included).
 */
export function resultToBasicNetworkConfig(result: CniResult): BasicNetworkConfig {
  if (typeof result !== 'object' || result === null) throw badResult('expected an object');
  const ips = result.ips ?? [];
  const interfaces = result.interfaces ?? [];
  if (!Array.isArray(ips)) throw badResult('ips is not a list');
  if (!Array.isArray(interfaces)) throw badResult('interfaces is not a list');
  const c = emptyBasic();
  const macs: string[] = [];
  let v4Mac: string | undefined;
  let v6Mac: string | undefined;
  ips.forEach((entry, at) => {
    if (typeof entry?.address !== 'string' || !ipaddr.isValidCIDR(entry.address)) {
      throw badResult(`ips[${at}].address '${String(entry?.address)}' is not an address in CIDR form`);
    }
    const [ip, prefix] = ipaddr.parseCIDR(entry.address);
    const family = ip.kind() === 'ipv6' ? 6 : 4;
    if (entry.version !== undefined && entry.version !== '4' && entry.version !== '6') {
      throw badResult(`ips[${at}].version '${String(entry.version)}' is not "4" or "6"`);
    }
    if (entry.version !== undefined && Number(entry.version) !== family) {
      throw badResult(`ips[${at}] says version ${entry.version} but '${entry.address}' is IPv${family}`);
    }
    const gateway = parseGateway(entry.gateway, family, at);
    const idx = entry.interface;
    const mac = Number.isInteger(idx) && idx! >= 0 && idx! < interfaces.length ? (interfaces[idx!]?.mac ?? '') : '';
    if (mac) macs.push(mac);
    if (family === 4 && c.IPAddress === '') {
      c.IPAddress = canonical(ip);
      c.IPPrefixLen = prefix;
      c.Gateway = gateway;
      v4Mac = mac;
    } else if (family === 6 && c.GlobalIPv6Address === '') {
      c.GlobalIPv6Address = canonical(ip);
      c.GlobalIPv6PrefixLen = prefix;
      c.IPv6Gateway = gateway;
      v6Mac = mac;
    } else {
      (family === 4 ? (c.SecondaryIPAddresses ??= []) : (c.SecondaryIPv6Addresses ??= [])).push(`${canonical(ip)}/${prefix}`);
    }
  });
  // The primary MAC is that of the IPv4 primary's interface (else the IPv6 primary's).
  c.MacAddress = v4Mac || v6Mac || '';
  for (const mac of macs) {
    if (mac !== c.MacAddress && !c.AdditionalMACAddresses?.includes(mac)) (c.AdditionalMACAddresses ??= []).push(mac);
  }
  return ordered(c);
}

/** Expands mappings (ranges, "tcp,udp") into Podman's Ports map, keys sorted as Go sorts them. */
export function portBindings(mappings: readonly PortMapping[] = []): Record<string, InspectHostPort[]> {
  if (!Array.isArray(mappings)) throw invalidArgument('portMappings', 'expected a list');
  const byKey = new Map<string, InspectHostPort[]>();
  mappings.forEach((m: PortMapping, at: number) => {
    const range = m.range ?? 1;
    for (const [what, v] of [
      ['hostPort', m.hostPort],
      ['containerPort', m.containerPort],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 65535) throw invalidArgument(`portMappings[${at}].${what}`, `'${String(v)}' is not a port`);
    }
    if (!Number.isInteger(range) || range < 1 || m.containerPort + range - 1 > 65535 || m.hostPort + range - 1 > 65535) {
      throw invalidArgument(`portMappings[${at}].range`, `'${String(m.range)}' does not fit the port space`);
    }
    const protocols = (m.protocol ?? 'tcp').split(',').map((p) => p.trim().toLowerCase());
    for (const proto of protocols) {
      if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') {
        throw invalidArgument(`portMappings[${at}].protocol`, `'${m.protocol}' is not tcp, udp or sctp`);
      }
      for (let i = 0; i < range; i++) {
        const key = `${m.containerPort + i}/${proto}`;
        const list = byKey.get(key) ?? [];
        list.push({ HostIp: m.hostIP ?? '', HostPort: String(m.hostPort === 0 ? 0 : m.hostPort + i) });
        byKey.set(key, list);
      }
    }
  });
  const out: Record<string, InspectHostPort[]> = {};
  for (const key of [...byKey.keys()].sort(goLess)) out[key] = byKey.get(key)!;
  return out;
}

/** Byte-wise string order, as Go's sort.Strings (and its JSON map keys) use. */
function goLess(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

/**
 * A sandbox's `NetworkSettings`. With networks named, each gets an entry in
 * `Networks` from the result at the same index (a count mismatch is an error);
 * without, the single result (if any) fills the top-level fields. No results
 * (slirp4netns, none) yields ports and SandboxKey only; a down network (no
 * netnsPath) yields placeholder entries for the named networks.
 */
export function toNetworkSettings(input: NetworkSettingsInput): NetworkSettings {
  if (typeof input !== 'object' || input === null) throw invalidArgument('network settings input', 'expected an object');
  const networks = input.networks ?? [];
  const results = input.results ?? [];
  if (!Array.isArray(networks) || networks.some((n) => typeof n !== 'string' || n === '')) {
    throw invalidArgument('networks', 'expected a list of network names');
  }
  if (!Array.isArray(results)) throw invalidArgument('results', 'expected a list of CNI results');
  if (new Set(networks).size !== networks.length) throw invalidArgument('networks', 'a network is named twice');
  const netnsPath = input.netnsPath ?? '';
  if (typeof netnsPath !== 'string') throw invalidArgument('netnsPath', 'expected a string');

  let top = emptyBasic();
  let named: Record<string, AdditionalNetwork> | undefined;
  const up = netnsPath !== '';
  if (up && results.length > 0 && networks.length > 0) {
    if (networks.length !== results.length) {
      throw new PodnetError(
        ErrorCode.INSPECT_MISMATCH,
        `network inspection mismatch: asked to join ${networks.length} network(s) [${networks.join(', ')}] but have ${results.length} result(s)`,
        { details: { networks, results: results.length } },
      );
    }
    named = {};
    networks.forEach((name, i) => (named![name] = additional(name, resultToBasicNetworkConfig(results[i]), input.aliases?.[name])));
  } else if (up && results.length > 0) {
    if (results.length > 1) {
      throw new PodnetError(ErrorCode.INSPECT_MISMATCH, `network inspection mismatch: ${results.length} results but no networks named (at most 1 expected)`, {
        details: { results: results.length },
      });
    }
    top = resultToBasicNetworkConfig(results[0]);
  } else if (!up && networks.length > 0) {
    // Down: placeholder entries for the networks it will join, as Podman prints them.
    named = {};
    for (const name of networks) named[name] = additional(name, emptyBasic(), input.aliases?.[name]);
  }

  const settings: NetworkSettings = {
    ...ordered(top),
    Bridge: '',
    SandboxID: '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: portBindings(input.portMappings ?? []),
    SandboxKey: netnsPath,
  };
  if (named) {
    settings.Networks = {};
    for (const name of Object.keys(named).sort(goLess)) settings.Networks[name] = named[name];
  }
  return settings;
}

function additional(name: string, basic: BasicNetworkConfig, aliases?: string[]): AdditionalNetwork {
  const n: AdditionalNetwork = { ...ordered(basic), NetworkID: name } as AdditionalNetwork;
  if (aliases?.length) n.Aliases = [...aliases];
  n.DriverOpts = null;
  n.IPAMConfig = null;
  n.Links = null;
  return n;
}

/**
 * The namespace path a sandbox uses, following `container:<id>` joins to the
 * owner (Podman 2.x's getContainerNetNS). Returns null for 'none' (no
 * namespace). An unknown sandbox or a cycle is a typed error, never a hang.
 */
export function resolveNetnsPath(id: string, lookup: (id: string) => NetnsRef | undefined | null): string | null {
  if (typeof id !== 'string' || id === '') throw invalidArgument('sandbox id', 'expected a non-empty string');
  if (typeof lookup !== 'function') throw invalidArgument('lookup', 'expected a function');
  const chain: string[] = [];
  for (let cur = id; ;) {
    if (chain.includes(cur)) {
      throw new PodnetError(ErrorCode.NETNS_CYCLE, `network namespace cycle: ${[...chain, cur].join(' -> ')}`, {
        details: { chain: [...chain, cur] },
      });
    }
    chain.push(cur);
    const ref = lookup(cur);
    if (!ref) {
      throw new PodnetError(ErrorCode.NO_SUCH_SANDBOX, `no such sandbox '${cur}'${chain.length > 1 ? ` (joined by ${chain.slice(0, -1).join(' -> ')})` : ''}`, {
        details: { chain },
      });
    }
    if (ref.netnsPath) return ref.netnsPath;
    if (!ref.netnsContainer) return null;
    cur = ref.netnsContainer;
  }
}
