/**
 * Network configuration lists: loading a directory as libcni does (`.conflist`,
 * and `.conf`/`.json` single plugins wrapped into a list, in file-name order,
 * first of a name wins), validation, the embedded default network, and
 * conflists built from options.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import ipaddr from 'ipaddr.js';

import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { NAME_RE, checkIfName, checkName, isCidr, isIp, isObject } from '../validate';
import { SUPPORTED_VERSIONS, compareVersions, isSupportedVersion } from './result';

export const DEFAULT_NETWORK_NAME = 'podnet';
export const DEFAULT_CONF_DIR = '/etc/cni/net.d';

/** One plugin's configuration, as written in the list. */
export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A loaded network configuration list. */
export interface CniNetworkConfig {
  name: string;
  /** The version the list is executed with (the highest supported of `cniVersions`, else `cniVersion`). */
  cniVersion: string;
  disableCheck?: boolean;
  plugins: CniPluginConf[];
  /** The file it came from; absent for the embedded default network. */
  file?: string;
  /** The list as JSON bytes (cached with each attachment, as libcni does). */
  bytes: Buffer;
}

function configError(file: string, field: string, why: string): PodnetError {
  return new PodnetError(ErrorCode.CNI_CONFIG, `CNI config '${file}': ${field}: ${why}`, {
    path: file,
    details: { file, field },
  });
}

/**
 * Validates a parsed conflist (or single-plugin conf when `single`) and returns
 * the list; `source` names it in errors.
 */
export function parseNetworkConfig(raw: unknown, source: string, single = false): CniNetworkConfig {
  if (!isObject(raw)) throw configError(source, '(top level)', 'expected a JSON object');
  if (typeof raw.name !== 'string' || !NAME_RE.test(raw.name)) {
    throw configError(source, 'name', `'${String(raw.name)}' does not match ${NAME_RE.source}`);
  }
  let version: string | undefined;
  if (raw.cniVersions !== undefined) {
    if (!Array.isArray(raw.cniVersions)) throw configError(source, 'cniVersions', 'expected an array of versions');
    version = raw.cniVersions.filter(isSupportedVersion).sort(compareVersions).pop();
  }
  if (version === undefined) {
    if (typeof raw.cniVersion !== 'string') throw configError(source, 'cniVersion', 'missing');
    if (!isSupportedVersion(raw.cniVersion)) {
      throw configError(source, 'cniVersion', `'${raw.cniVersion}' is not one of ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    version = raw.cniVersion;
  }
  let plugins: unknown;
  if (single) {
    const { name: _n, cniVersion: _v, cniVersions: _vs, ...plugin } = raw;
    plugins = [plugin];
  } else {
    plugins = raw.plugins;
    if (!Array.isArray(plugins) || plugins.length === 0) throw configError(source, 'plugins', 'expected a non-empty array');
  }
  (plugins as unknown[]).forEach((p, i) => {
    const field = single ? 'type' : `plugins[${i}].type`;
    if (!isObject(p)) throw configError(source, single ? '(top level)' : `plugins[${i}]`, 'expected an object');
    if (typeof p.type !== 'string' || p.type === '') throw configError(source, field, 'missing');
    if (p.type.includes('/') || p.type === '.' || p.type === '..') {
      throw configError(source, field, `'${p.type}' is not a plugin name (path separators are refused)`);
    }
    if (p.capabilities !== undefined && !isObject(p.capabilities)) {
      throw configError(source, single ? 'capabilities' : `plugins[${i}].capabilities`, 'expected an object');
    }
  });
  if (raw.disableCheck !== undefined && typeof raw.disableCheck !== 'boolean') {
    throw configError(source, 'disableCheck', 'expected a boolean');
  }
  // A single-plugin .conf is cached as the list libcni wraps it into.
  const bytes = JSON.stringify(single ? { cniVersion: raw.cniVersion, name: raw.name, plugins } : raw);
  return {
    name: raw.name,
    cniVersion: version,
    ...(raw.disableCheck ? { disableCheck: true } : {}),
    plugins: plugins as CniPluginConf[],
    bytes: Buffer.from(bytes),
  };
}

export interface LoadedConfigs {
  /** Valid networks, first of a name wins, in file-name order. */
  networks: CniNetworkConfig[];
  /** One error per file that could not be used (ERR_CNI_CONFIG naming the file and field). */
  errors: PodnetError[];
}

/** Loads every network configuration in `dir` (a missing directory has none). */
export async function loadConfigDir(dir: string): Promise<LoadedConfigs> {
  let names: string[];
  try {
    names = readdirSync(dir); // sync: see cache.ts
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { networks: [], errors: [] };
    throw new PodnetError((err as NodeJS.ErrnoException).code ?? ErrorCode.CNI_CONFIG, `read CNI config dir '${dir}': ${(err as Error).message}`, {
      path: dir,
    });
  }
  const files = names.filter((n) => /\.(conflist|conf|json)$/.test(n)).sort();
  const texts = files.map((f) => {
    try {
      return readFileSync(path.join(dir, f), 'utf8');
    } catch (e) {
      return e as Error;
    }
  });
  const networks: CniNetworkConfig[] = [];
  const errors: PodnetError[] = [];
  const seen = new Set<string>();
  files.forEach((f, i) => {
    const file = path.join(dir, f);
    const text = texts[i];
    try {
      if (text instanceof Error) throw configError(file, '(file)', text.message);
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        throw configError(file, '(json)', (e as Error).message);
      }
      const net = parseNetworkConfig(raw, file, !f.endsWith('.conflist'));
      net.file = file;
      if (!seen.has(net.name)) {
        seen.add(net.name);
        networks.push(net);
      }
    } catch (e) {
      errors.push(e as PodnetError);
    }
  });
  return { networks, errors };
}

/** Options for a bridge network (the embedded default, or `createNetwork`). */
export interface BridgeNetworkOptions {
  name: string;
  /** IPv4 subnet (CIDR); at least one of subnet and ipv6Subnet. */
  subnet?: string;
  /** Default: the first host address of `subnet`. */
  gateway?: string;
  /** IPv6 subnet, e.g. a ULA /64. */
  ipv6Subnet?: string;
  ipv6Gateway?: string;
  /** Bridge interface name (1-15 bytes). */
  bridge: string;
  /** No gateway, no default route, no masquerading: pods reach only each other. */
  internal?: boolean;
  mtu?: number;
  /** Masquerade traffic leaving the subnet; default true unless internal. */
  ipMasq?: boolean;
}

/** The network podnet uses when none is named and none of this name is configured. */
export function defaultNetworkOptions(): BridgeNetworkOptions {
  return { name: DEFAULT_NETWORK_NAME, bridge: 'podnet0', subnet: '10.89.0.0/24', gateway: '10.89.0.1' };
}

/** A subnet and its gateway, validated: the subnet is given as its network address. */
export function checkRange(what: string, family: 'ipv4' | 'ipv6', subnet: string, gateway: string | undefined, internal: boolean) {
  if (!isCidr(subnet)) throw invalidArgument(what, `'${String(subnet)}' is not an address/prefix`);
  const [addr, bits] = ipaddr.parseCIDR(subnet);
  if (addr.kind() !== family) throw invalidArgument(what, `'${subnet}' is not an ${family} subnet`);
  const net = family === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(subnet) : ipaddr.IPv6.networkAddressFromCIDR(subnet);
  if (net.toString() !== addr.toString()) throw invalidArgument(what, `'${subnet}' has host bits set (network is ${net}/${bits})`);
  if (bits > (family === 'ipv4' ? 30 : 126)) throw invalidArgument(what, `'${subnet}' is too small`);
  const range: Record<string, string> = { subnet: `${net}/${bits}` };
  if (gateway !== undefined) {
    if (!isIp(gateway) || !ipaddr.parse(gateway).match([addr, bits]) || ipaddr.parse(gateway).kind() !== family) {
      throw invalidArgument(`${what} gateway`, `'${gateway}' is not an address in ${subnet}`);
    }
    range.gateway = gateway;
  } else if (!internal) {
    const bytes = net.toByteArray();
    bytes[bytes.length - 1] += 1;
    range.gateway = ipaddr.fromByteArray(bytes).toString();
  }
  return range;
}

/** Builds a bridge conflist (bridge + host-local, portmap, firewall, tuning), as Podman's CNI networks were. */
export function buildBridgeNetwork(opts: BridgeNetworkOptions): CniNetworkConfig {
  if (!isObject(opts)) throw invalidArgument('network options', 'expected an object');
  checkName('network name', opts.name);
  checkIfName('bridge name', opts.bridge);
  if (opts.subnet === undefined && opts.ipv6Subnet === undefined) throw invalidArgument('network options', 'need subnet or ipv6Subnet');
  if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 576 || opts.mtu > 65535)) {
    throw invalidArgument('mtu', `'${String(opts.mtu)}' is not an integer in 576-65535`);
  }
  const internal = opts.internal === true;
  const ranges: Record<string, string>[][] = [];
  const routes: { dst: string }[] = [];
  if (opts.subnet !== undefined) {
    ranges.push([checkRange('subnet', 'ipv4', opts.subnet, opts.gateway, internal)]);
    if (!internal) routes.push({ dst: '0.0.0.0/0' });
  }
  if (opts.ipv6Subnet !== undefined) {
    ranges.push([checkRange('ipv6Subnet', 'ipv6', opts.ipv6Subnet, opts.ipv6Gateway, internal)]);
    if (!internal) routes.push({ dst: '::/0' });
  }
  const bridge: CniPluginConf = {
    type: 'bridge',
    bridge: opts.bridge,
    isGateway: !internal,
    ipMasq: opts.ipMasq ?? !internal,
    hairpinMode: true,
    ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
    ipam: { type: 'host-local', ...(routes.length ? { routes } : {}), ranges },
    capabilities: { ips: true },
  };
  const list = {
    cniVersion: '1.0.0',
    name: opts.name,
    plugins: [bridge, { type: 'portmap', capabilities: { portMappings: true } }, { type: 'firewall' }, { type: 'tuning', capabilities: { mac: true } }],
  };
  return parseNetworkConfig(list, `network '${opts.name}'`);
}

/** Whether a list's IPAM hands out IPv6 addresses (then DAD is turned off in the sandbox). */
export function hasIPv6(net: CniNetworkConfig): boolean {
  return net.plugins.some((p) => {
    const ipam = p.ipam;
    return isObject(ipam) && JSON.stringify([ipam.ranges, ipam.subnet, ipam.addresses]).includes(':');
  });
}

/** The bridge interface a list uses, if its first plugin is the bridge plugin. */
export function bridgeOf(net: CniNetworkConfig): string | undefined {
  const p = net.plugins.find((x) => x.type === 'bridge');
  if (!p) return undefined;
  return typeof p.bridge === 'string' ? p.bridge : 'cni0';
}
