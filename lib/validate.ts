/** Input checks shared by every module; each throws a PodnetError naming the input. */
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

function printable(s: string): string {
  return s.replace(/\0/g, '\\0');
}
