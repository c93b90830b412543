/**
 * What a slirp4netns binary supports, from its `--help` (Podman 2.x's
 * checkSlirpFlags, extended). Cached per binary file (path, inode, mtime), so a
 * replaced binary is probed again.
 */
import { statSync } from 'node:fs';

import { runCommand } from '../command';
import { PodnetError, ErrorCode } from '../errors';
import { resolveCommand } from '../spawn';

export interface SlirpFeatures {
  /** Resolved path of the binary. */
  binary: string;
  /** `slirp4netns --version` first line's version, when it prints one. */
  version?: string;
  sandbox: boolean;
  seccomp: boolean;
  disableHostLoopback: boolean;
  mtu: boolean;
  ipv6: boolean;
  cidr: boolean;
  outboundAddr: boolean;
  outboundAddr6: boolean;
  disableDns: boolean;
  macAddress: boolean;
  apiSocket: boolean;
  netnsTypePath: boolean;
  usernsPath: boolean;
}

const FLAGS: Array<[Exclude<keyof SlirpFeatures, 'binary' | 'version'>, string]> = [
  ['sandbox', '--enable-sandbox'],
  ['seccomp', '--enable-seccomp'],
  ['disableHostLoopback', '--disable-host-loopback'],
  ['mtu', '--mtu'],
  ['ipv6', '--enable-ipv6'],
  ['cidr', '--cidr'],
  ['outboundAddr', '--outbound-addr='],
  ['outboundAddr6', '--outbound-addr6'],
  ['disableDns', '--disable-dns'],
  ['macAddress', '--macaddress'],
  ['apiSocket', '--api-socket'],
  ['netnsTypePath', '--netns-type'],
  ['usernsPath', '--userns-path'],
];

/** Parses `--help` (and optionally `--version`) output; exported for unit tests. */
export function parseSlirpHelp(binary: string, help: string, versionOut = ''): SlirpFeatures {
  const f = { binary } as SlirpFeatures;
  for (const [key, flag] of FLAGS) f[key] = help.includes(flag);
  const v = /slirp4netns version (\S+)/.exec(versionOut);
  if (v) f.version = v[1];
  return f;
}

const cache = new Map<string, Promise<SlirpFeatures>>();

async function run(file: string, arg: string): Promise<string> {
  const r = await runCommand(file, [arg], { timeoutMs: 5000 });
  const text = `${r.stdout}${r.stderr}`;
  // Old versions exit non-zero after --help; the text is what matters.
  if (r.code !== 0 && !text) throw new Error(`${file} ${arg} exited with ${r.code ?? r.signal}`);
  return text;
}

/** Features of `binary` (default: slirp4netns from PATH); ERR_HELPER_NOT_FOUND when absent. */
export async function slirpFeatures(binary?: string): Promise<SlirpFeatures> {
  const file = resolveCommand(binary ?? 'slirp4netns');
  const st = statSync(file);
  const key = `${file}\0${st.ino}\0${st.mtimeMs}`;
  let p = cache.get(key);
  if (!p) {
    p = Promise.all([run(file, '--help'), run(file, '--version').catch(() => '')])
      .then(([help, version]) => parseSlirpHelp(file, help, version))
      .catch((err) => {
        cache.delete(key);
        throw new PodnetError(ErrorCode.HELPER_EXITED, `cannot run '${file} --help': ${(err as Error).message}`, { path: file, cause: err });
      });
    cache.set(key, p);
  }
  return p;
}
