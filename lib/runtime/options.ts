/** Checks and defaults of the runtime's inputs, applied before anything is created. */
import path from 'node:path';

import { invalidArgument } from '../errors';
import { checkName, checkPath } from '../validate';
import type { NetworkMode } from './state';

export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** /run/podnet for root, else $XDG_RUNTIME_DIR/podnet (or /tmp/podnet-UID without one). */
export function defaultStateDir(): string {
  if (isRoot()) return '/run/podnet';
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? path.join(xdg, 'podnet') : `/tmp/podnet-${process.geteuid?.()}`;
}

/** A sandbox or pod id: the CNI name rule, and short enough for a namespace file name with its prefix. */
export function checkId(what: string, id: unknown): string {
  checkName(what, id);
  if ((id as string).length > 200) throw invalidArgument(what, `'${(id as string).slice(0, 32)}...' is longer than 200 characters`);
  return id as string;
}

/** The network mode: given, or bridge when networks are named, else the default for this user. */
export function parseMode(mode: unknown, networks?: unknown): NetworkMode {
  if (networks !== undefined) {
    if (!Array.isArray(networks)) throw invalidArgument('networks', 'expected an array of network names');
    networks.forEach((n) => checkId('network name', n));
    if (mode !== undefined && mode !== 'bridge') throw invalidArgument('networks', `CNI networks need network mode 'bridge', not '${String(mode)}'`);
    return 'bridge';
  }
  if (mode === undefined) return isRoot() ? 'bridge' : 'slirp4netns';
  if (mode === 'bridge' || mode === 'slirp4netns' || mode === 'pasta' || mode === 'none' || mode === 'host') return mode;
  if (typeof mode === 'string' && mode.startsWith('ns:')) return `ns:${checkPath('namespace path', mode.slice(3))}`;
  if (typeof mode === 'string' && mode.startsWith('container:')) return `container:${checkId('container id', mode.slice(10))}`;
  throw invalidArgument('network mode', `'${String(mode)}' is not one of bridge, slirp4netns, pasta, none, host, ns:<path>, container:<id>`);
}
