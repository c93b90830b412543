/**
 * The pasta command line, as Podman 5 builds it (containers/common
 * libnetwork/pasta/pasta_linux.go, createPastaArgs): `--config-net`, the
 * caller's options, one `-t`/`-u` spec per port mapping, `--dns-forward`,
 * `none` for every direction nobody asked for (so no port is forwarded by
 * pasta's `auto` default), `--no-map-gw` unless the caller gave Podman's
 * pseudo-option `--map-gw`, `--quiet` (unless the caller asked for `--debug`
 * or `--trace`), `--netns PATH`, and `--map-guest-addr`
 * when the installed pasta has it. podnet adds what its process management
 * needs: `-f` (stay in the foreground: its pidfd is the process podnet
 * watches), `--pid FILE` (written once the namespace is configured and the
 * ports are bound: the readiness signal), `--userns` for an unprivileged
 * caller's namespace, and `--runas 0:0` for root (by default pasta switches
 * from root to nobody, which then cannot enter the target namespace).
 */
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import type { CheckedPortMapping } from '../ports';
import type { PastaFeatures } from './features';

/** Where pasta forwards DNS queries inside the namespace; Podman 5's choice (a link-local address unlikely to clash). */
export const PASTA_DNS_FORWARD = '169.254.1.1';
/** The address the namespace uses to reach the host itself (Podman 5.3's `--map-guest-addr`). */
export const PASTA_HOST_ADDR = '169.254.1.2';

// Options podnet sets itself: a caller's would fight its process management.
const RESERVED = new Set(['netns', 'userns', 'netns-only', 'foreground', 'pid', 'runas', 'help', 'version', 'fd']);

/** The caller's options, checked against the installed pasta; what podnet's defaults must yield to. */
export interface PastaUserOptions {
  args: string[];
  /** Directions the caller forwarded (-t -u -T -U); the rest get `none`. */
  given: Set<'t' | 'u' | 'T' | 'U'>;
  dnsForward: boolean;
  /** Podman's `--map-gw`: drop the default `--no-map-gw`. */
  mapGw: boolean;
}

function bad(f: PastaFeatures, opt: string, why: string): PodnetError {
  return new PodnetError(ErrorCode.PASTA_OPTION, `pasta option '${opt}': ${why} (pasta at '${f.binary}')`, { path: f.binary, details: { option: opt } });
}

const DIRECTIONS: Record<string, 't' | 'u' | 'T' | 'U'> = { 'tcp-ports': 't', 'udp-ports': 'u', 'tcp-ns': 'T', 'udp-ns': 'U' };

/**
 * Checks options given as pasta takes them on its command line, one argument
 * per element (`['--mtu', '1500', '-T', '8080']`), against the option table
 * of the installed pasta: unknown options, a missing value, stray arguments
 * (pasta would run them as a command) and options podnet sets are refused.
 */
export function checkPastaOptions(f: PastaFeatures, list: readonly string[] = []): PastaUserOptions {
  if (!Array.isArray(list)) throw bad(f, String(list), 'expected an array of command-line arguments');
  const out: PastaUserOptions = { args: [], given: new Set(), dnsForward: false, mapGw: false };
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    if (typeof a !== 'string' || a.includes('\0')) throw bad(f, String(a), 'expected a string');
    if (a === '--map-gw') {
      out.mapGw = true;
      continue;
    }
    // The options in this argument: '--name[=value]', or '-abc' / '-tVALUE' (getopt's short clusters).
    const found: Array<{ name: string; inline?: string }> = [];
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const o = f.options.get(name);
      if (!o || o.name !== name) throw bad(f, a, 'unknown to this pasta');
      found.push(eq < 0 ? { name } : { name, inline: a.slice(eq + 1) });
    } else if (a.startsWith('-') && a.length > 1 && a !== '--') {
      for (let k = 1; k < a.length; k++) {
        const o = f.options.get(a[k]);
        if (!o || o.short !== a[k]) throw bad(f, a, `'-${a[k]}' is unknown to this pasta`);
        if (o.takesArg && k + 1 < a.length) {
          found.push({ name: o.name, inline: a.slice(k + 1) });
          break;
        }
        found.push({ name: o.name });
      }
    } else {
      throw bad(f, a, 'not an option (pasta would run it as a command)');
    }
    out.args.push(a);
    for (const { name, inline } of found) {
      const o = f.options.get(name)!;
      if (RESERVED.has(name)) throw bad(f, a, `--${name} is set by podnet`);
      if (!o.takesArg && inline !== undefined) throw bad(f, a, `--${name} takes no value`);
      if (o.takesArg && inline === undefined) {
        if (i + 1 >= list.length || typeof list[i + 1] !== 'string') throw bad(f, a, `--${name} needs a value`);
        out.args.push(list[++i]);
      }
      if (DIRECTIONS[name]) out.given.add(DIRECTIONS[name]);
      if (name === 'dns-forward') out.dnsForward = true;
    }
  }
  return out;
}

/** One pasta spec per protocol: `[HOSTIP/]HOST[-HOSTEND]:CTR[-CTREND]`. */
export function portSpecs(maps: readonly CheckedPortMapping[]): Array<['-t' | '-u', string]> {
  const out: Array<['-t' | '-u', string]> = [];
  maps.forEach((m, i) => {
    if (m.hostPort === 0) throw invalidArgument(`portMappings[${i}].hostPort`, 'pasta needs a real host port (resolve 0 first)');
    const span = (p: number) => (m.range > 1 ? `${p}-${p + m.range - 1}` : `${p}`);
    const spec = `${m.hostIP ? `${m.hostIP}/` : ''}${span(m.hostPort)}:${span(m.containerPort)}`;
    for (const p of m.protocols) {
      if (p === 'sctp') throw invalidArgument(`portMappings[${i}].protocol`, 'pasta forwards tcp and udp only, not sctp');
      out.push([p === 'tcp' ? '-t' : '-u', spec]);
    }
  });
  return out;
}

export interface PastaTarget {
  /** The network namespace (path). */
  netns: string;
  /** The user namespace owning it, for an unprivileged caller. */
  userns?: string;
  /** Where pasta writes its pid once ready. */
  pidFile: string;
  /** podnet runs as root: keep pasta root (`--runas 0:0`). */
  root: boolean;
}

/** The whole command line (exported for tests and diagnostics). */
export function pastaArgs(f: PastaFeatures, user: PastaUserOptions, ports: readonly CheckedPortMapping[], t: PastaTarget): string[] {
  const a = ['--config-net', ...user.args];
  const given = new Set(user.given);
  for (const [flag, spec] of portSpecs(ports)) {
    a.push(flag, spec);
    given.add(flag === '-t' ? 't' : 'u');
  }
  if (!user.dnsForward && f.dnsForward) a.push('--dns-forward', PASTA_DNS_FORWARD);
  for (const d of ['t', 'u', 'T', 'U'] as const) if (!given.has(d)) a.push(`-${d}`, 'none');
  if (!user.mapGw && f.noMapGw) a.push('--no-map-gw');
  // pasta refuses --quiet beside --debug or --trace: the caller's choice wins, as in Podman's createPastaArgs.
  if (!user.args.some((o) => ['-d', '--debug', '--trace', '-q', '--quiet'].includes(o))) a.push('--quiet');
  a.push('--netns', t.netns);
  if (f.mapGuestAddr) a.push('--map-guest-addr', PASTA_HOST_ADDR);
  if (t.userns) a.push('--userns', t.userns);
  if (t.root) {
    if (!f.runas) throw bad(f, '--runas', 'this pasta cannot keep root (no --runas): it would switch to nobody and fail to enter the namespace');
    a.push('--runas', '0:0');
  }
  a.push('-f', '--pid', t.pidFile);
  return a;
}
