/**
 * Debug logging (helpers' output and what podnet does), to stderr. On when
 * NODE_DEBUG names `podnet` at start-up, or after `setDebug(true)` (the CLI's
 * --debug): util.debuglog reads NODE_DEBUG only once, at process start.
 */
import { format } from 'node:util';

let enabled = /\bpodnet\b/i.test(process.env.NODE_DEBUG ?? '');

export function setDebug(on: boolean): void {
  enabled = on;
}

export function debug(fmt: string, ...args: unknown[]): void {
  if (enabled) process.stderr.write(`podnet ${process.pid}: ${format(fmt, ...args)}\n`);
}
