/**
 * What a pasta binary supports, from its `--help` (as lib/slirp/features.ts
 * does for slirp4netns). Debian 12 ships passt 0.0~git20230309, which lacks
 * options Podman 5 passes (e.g. `--map-guest-addr`, passt commit 57b7bd2 of
 * 2024-08): the option table parsed here decides what podnet may pass, and
 * which extra options a caller may give. Cached per binary file (path, inode,
 * mtime), so a replaced binary is probed again.
 */
import { statSync } from 'node:fs';

import { runCommand } from '../command';
import { ErrorCode, PodnetError } from '../errors';
import { resolveCommand } from '../spawn';

export interface PastaOption {
  /** Long name without the dashes (`tcp-ports`). */
  name: string;
  /** Short letter, when it has one (`t`). */
  short?: string;
  /** Whether it takes a value (the help shows a placeholder such as SPEC). */
  takesArg: boolean;
}

export interface PastaFeatures {
  /** Resolved path of the binary. */
  binary: string;
  /** From `pasta --version`, when it names one (Debian's prints "unknown version"). */
  version?: string;
  /** Options by long name (`tcp-ports`) and by short letter (`t`). */
  options: Map<string, PastaOption>;
  /** Options podnet passes when present. */
  runas: boolean;
  mapGuestAddr: boolean;
  dnsForward: boolean;
  noMapGw: boolean;
}

// pasta logs through syslog(3); where no syslog socket exists, glibc's fallback prints this line before each message.
const SYSLOG_NOISE = /^Failed to send \d+ bytes to syslog\n?/gm;

/** pasta's output without syslog fallback noise. */
export function cleanPastaOutput(text: string): string {
  return text.replace(SYSLOG_NOISE, '');
}

// `  -t, --tcp-ports SPEC\tTCP port forwarding`, `  --runas UID|UID:GID \tRun as`, `      --trace\t\tBe extra verbose`.
const OPTION_LINE = /^\s+(?:-([A-Za-z0-9]), )?--([a-z0-9][a-z0-9-]*)(?:[ =]([A-Z][A-Za-z0-9|:_.[\]-]*))?\s*(?:\t|$)/;

/** Parses `--help` (and optionally `--version`) output; exported for unit tests. */
export function parsePastaHelp(binary: string, help: string, versionOut = ''): PastaFeatures {
  const options = new Map<string, PastaOption>();
  for (const line of cleanPastaOutput(help).split('\n')) {
    const m = OPTION_LINE.exec(line);
    if (!m) continue;
    const o: PastaOption = { name: m[2], takesArg: m[3] !== undefined };
    if (m[1]) o.short = m[1];
    options.set(o.name, o);
    if (o.short) options.set(o.short, o);
  }
  const f: PastaFeatures = {
    binary,
    options,
    runas: options.has('runas'),
    mapGuestAddr: options.has('map-guest-addr'),
    dnsForward: options.has('dns-forward'),
    noMapGw: options.has('no-map-gw'),
  };
  const v = /^pasta (\S+)/m.exec(cleanPastaOutput(versionOut));
  if (v && v[1] !== 'unknown') f.version = v[1];
  return f;
}

const cache = new Map<string, Promise<PastaFeatures>>();

async function run(file: string, arg: string): Promise<string> {
  const r = await runCommand(file, [arg], { timeoutMs: 5000 });
  const text = `${r.stdout}${r.stderr}`; // pasta prints its help on stderr
  if (r.code !== 0 && !text) throw new Error(`${file} ${arg} exited with ${r.code ?? r.signal}`);
  return text;
}

/** Finds the binary (a path, or pasta in PATH); ERR_PASTA_NOT_FOUND when absent. */
export function resolvePasta(binary?: string): string {
  try {
    return resolveCommand(binary ?? 'pasta');
  } catch (err) {
    const e = err as PodnetError;
    if (e.code !== ErrorCode.HELPER_NOT_FOUND) throw err;
    throw new PodnetError(ErrorCode.PASTA_NOT_FOUND, `${e.message} (pasta comes with the passt package)`, { path: binary ?? 'pasta', cause: err });
  }
}

/** Features of `binary` (default: pasta from PATH). */
export async function pastaFeatures(binary?: string): Promise<PastaFeatures> {
  const file = resolvePasta(binary);
  const st = statSync(file);
  const key = `${file}\0${st.ino}\0${st.mtimeMs}`;
  let p = cache.get(key);
  if (!p) {
    p = Promise.all([run(file, '--help'), run(file, '--version').catch(() => '')])
      .then(([help, version]) => {
        const f = parsePastaHelp(file, help, version);
        if (!f.options.has('netns') || !f.options.has('config-net')) throw new Error('its --help lists no --netns or --config-net');
        return f;
      })
      .catch((err) => {
        cache.delete(key);
        throw new PodnetError(ErrorCode.PASTA_NOT_FOUND, `'${file}' does not work as pasta: ${(err as Error).message}`, { path: file, cause: err });
      });
    cache.set(key, p);
  }
  return p;
}
