/** Input checks shared by every module; each throws a PodnetError naming the input. */
import ipaddr from 'ipaddr.js';

import { invalidArgument } from './errors';

/** A file name component: non-empty, at most 255 bytes, no '/', NUL, '.' or '..'. */
export function checkFileName(what: string, name: unknown): string {
  if (typeof name !== 'string') throw invalidArgument(what, `expected a string, got ${typeof name}`);
  if (name === '' || name === '.' || name === '..') throw invalidArgument(what, `'${name}' is not a valid name`);
  if (name.includes('/') || name.includes('\0')) throw invalidArgument(what, `'${printable(name)}' contains '/' or NUL`);
  if (Buffer.byteLength(name) > 255) throw invalidArgument(what, `'${name.slice(0, 32)}...' is longer than 255 bytes`);
  return name;
}

/** An absolute path without NUL. */
export function checkPath(what: string, p: unknown): string {
  if (typeof p !== 'string' || p === '') throw invalidArgument(what, 'expected a non-empty path');
  if (p.includes('\0')) throw invalidArgument(what, `'${printable(p)}' contains NUL`);
  if (!p.startsWith('/')) throw invalidArgument(what, `'${p}' is not an absolute path`);
  return p;
}

export function checkPid(what: string, pid: unknown): number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid > 0x3fffffff) {
    throw invalidArgument(what, `'${String(pid)}' is not a process id`);
  }
  return pid;
}

/** The CNI spec's rule for container ids and network names (podnet uses it for sandbox and pod names too). */
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function checkName(what: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) throw invalidArgument(what, `'${String(v)}' does not match ${NAME_RE.source}`);
  return v;
}

/** An interface name as the kernel takes it: 1-15 bytes, not '.' or '..', no '/', ':', whitespace or NUL. */
export function checkIfName(what: string, name: unknown): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..') {
    throw invalidArgument(what, `'${String(name)}' is not an interface name`);
  }
  if (Buffer.byteLength(name) > 15) throw invalidArgument(what, `'${name}' is longer than 15 bytes`);
  if (/[/:\s\0]/.test(name)) throw invalidArgument(what, `'${printable(name)}' contains '/', ':', whitespace or NUL`);
  return name;
}

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A plain dotted-quad IPv4 or an IPv6 address (ipaddr.isValid also takes "1.2.3" and hex forms). */
export function isIp(s: unknown): s is string {
  return typeof s === 'string' && (ipaddr.IPv4.isValidFourPartDecimal(s) || ipaddr.IPv6.isValid(s));
}

/** An address/prefix whose address passes isIp. */
export function isCidr(s: unknown): s is string {
  return typeof s === 'string' && isIp(s.split('/')[0]) && ipaddr.isValidCIDR(s);
}

/** A literal IPv4 or IPv6 address, returned in canonical form. */
export function checkIp(what: string, ip: unknown): string {
  if (!isIp(ip)) throw invalidArgument(what, `'${String(ip)}' is not an IP address`);
  return ipaddr.parse(ip).toString();
}

/** A port number, 1-65535 (0 too when `allowZero`: any free port). */
export function checkPort(what: string, v: unknown, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    throw invalidArgument(what, `'${String(v)}' is not a port number (${allowZero ? 0 : 1}-65535)`);
  }
  return v;
}

function printable(s: string): string {
  return s.replace(/\0/g, '\\0');
}
