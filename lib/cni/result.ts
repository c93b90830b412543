/**
 * CNI results: parse and validate what a plugin printed (0.3.0 to 1.1.0), and
 * convert between versions (0.3.x/0.4.0 carry `ips[].version`, 1.0.0 dropped it).
 */
import { isCidr, isIp, isObject } from '../validate';
import type { CniIPConfig, CniResult } from './types';

/** The versions this runtime speaks, oldest first. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The version of a normalized result. */
const CURRENT_VERSION = '1.0.0';

/** Compares dotted versions numerically: <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Thrown by parseResult with the path of the offending field; the caller wraps it with context. */
export class ResultFormatError extends Error {}

function fail(field: string, why: string): never {
  throw new ResultFormatError(`${field}: ${why}`);
}

function checkCidr(field: string, v: unknown): string {
  if (!isCidr(v)) fail(field, `'${String(v)}' is not an address/prefix`);
  return v;
}

function checkResultIp(field: string, v: unknown): string {
  if (!isIp(v)) fail(field, `'${String(v)}' is not an IP address`);
  return v;
}

function optString(field: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(field, 'expected a string');
  return v;
}

function optStrings(field: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(field, 'expected an array of strings');
  return v as string[];
}

/** The family of a CIDR or address: '4' or '6'. */
function familyOf(addr: string): '4' | '6' {
  return addr.includes(':') ? '6' : '4';
}

/**
 * Parses and validates a result of any supported version (the object a plugin
 * printed, or a cached one). Unknown top-level fields are dropped.
 */
export function parseResult(raw: unknown): CniResult {
  if (!isObject(raw)) fail('result', 'expected a JSON object');
  const cniVersion = raw.cniVersion;
  if (!isSupportedVersion(cniVersion)) fail('cniVersion', `unsupported result version '${String(cniVersion)}'`);
  const res: CniResult = { cniVersion };

  if (raw.interfaces !== undefined) {
    if (!Array.isArray(raw.interfaces)) fail('interfaces', 'expected an array');
    res.interfaces = raw.interfaces.map((i, n) => {
      const f = `interfaces[${n}]`;
      if (!isObject(i) || typeof i.name !== 'string' || i.name === '') fail(f, 'expected an object with a name');
      const out: NonNullable<CniResult['interfaces']>[number] = { name: i.name };
      const mac = optString(`${f}.mac`, i.mac);
      if (mac) out.mac = mac;
      if (i.mtu !== undefined) {
        if (!Number.isInteger(i.mtu)) fail(`${f}.mtu`, 'expected an integer');
        out.mtu = i.mtu as number;
      }
      const sandbox = optString(`${f}.sandbox`, i.sandbox);
      if (sandbox) out.sandbox = sandbox;
      return out;
    });
  }

  if (raw.ips !== undefined) {
    if (!Array.isArray(raw.ips)) fail('ips', 'expected an array');
    res.ips = raw.ips.map((ip, n) => {
      const f = `ips[${n}]`;
      if (!isObject(ip)) fail(f, 'expected an object');
      const out: CniIPConfig = { address: checkCidr(`${f}.address`, ip.address) };
      if (ip.gateway !== undefined && ip.gateway !== '') out.gateway = checkResultIp(`${f}.gateway`, ip.gateway);
      if (ip.interface !== undefined) {
        const idx = ip.interface;
        if (!Number.isInteger(idx) || (idx as number) < 0 || (idx as number) >= (res.interfaces?.length ?? 0)) {
          fail(`${f}.interface`, `index ${String(idx)} is not in interfaces`);
        }
        out.interface = idx as number;
      }
      if (ip.version !== undefined) {
        if (ip.version !== '4' && ip.version !== '6') fail(`${f}.version`, `'${String(ip.version)}' is not "4" or "6"`);
        if (ip.version !== familyOf(out.address)) fail(`${f}.version`, `does not match address ${out.address}`);
        out.version = ip.version;
      }
      return out;
    });
  }

  if (raw.routes !== undefined) {
    if (!Array.isArray(raw.routes)) fail('routes', 'expected an array');
    res.routes = raw.routes.map((r, n) => {
      const f = `routes[${n}]`;
      if (!isObject(r)) fail(f, 'expected an object');
      const out: NonNullable<CniResult['routes']>[number] = { dst: checkCidr(`${f}.dst`, r.dst) };
      if (r.gw !== undefined && r.gw !== '') out.gw = checkResultIp(`${f}.gw`, r.gw);
      return out;
    });
  }

  if (raw.dns !== undefined) {
    if (!isObject(raw.dns)) fail('dns', 'expected an object');
    const d = raw.dns;
    const dns: NonNullable<CniResult['dns']> = {};
    const ns = optStrings('dns.nameservers', d.nameservers);
    if (ns?.length) dns.nameservers = ns;
    const domain = optString('dns.domain', d.domain);
    if (domain) dns.domain = domain;
    const search = optStrings('dns.search', d.search);
    if (search?.length) dns.search = search;
    const options = optStrings('dns.options', d.options);
    if (options?.length) dns.options = options;
    if (Object.keys(dns).length) res.dns = dns;
  }
  return res;
}

/**
 * The same result in another version's format: before 1.0.0 every IP carries
 * `version`, from 1.0.0 on it does not.
 */
export function convertResult(res: CniResult, toVersion: string): CniResult {
  const legacy = compareVersions(toVersion, '1.0.0') < 0;
  const out: CniResult = { ...res, cniVersion: toVersion };
  if (res.ips) {
    out.ips = res.ips.map(({ version: _v, ...ip }) => (legacy ? { ...ip, version: familyOf(ip.address) } : ip));
  }
  return out;
}

/** A result in the current (1.0.0) format, as the API returns it. */
export function normalizeResult(res: CniResult): CniResult {
  return convertResult(res, CURRENT_VERSION);
}
