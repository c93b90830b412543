/**
 * Shared by the reliability suites: CNI plugins that misbehave as shell
 * scripts (fork, hang, fail), a fresh-process runner for owners that get
 * SIGKILLed, and a census of everything a sandbox can leave on the host.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes an executable plugin script `name` into `dir`: `body` handles ADD; VERSION answers unless `version` replaces it. */
export function writePlugin(dir: string, name: string, body: string, version = 'echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\''): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `#!/bin/sh
# A test CNI plugin: ${name}
input=$(cat)
case "$CNI_COMMAND" in
  VERSION) ${version} ;;
  ADD) ${body} ;;
  *) exit 0 ;;
esac
`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** ADD that passes prevResult through (what a no-op plugin in a chain returns). */
export const PASS_THROUGH = `printf '%s' "$input" | node -e 'const c=JSON.parse(require("fs").readFileSync(0,"utf8"));process.stdout.write(JSON.stringify(c.prevResult??{cniVersion:c.cniVersion}))'`;

/** Starts a fresh node process running `code` with podnet's compiled sources (dist/) as `podnet`; resolves when it prints `marker`. */
export function startOwner(code: string, marker = 'READY'): { child: ChildProcess; ready: Promise<void>; out: () => string } {
  const root = path.join(__dirname, '..', '..');
  const child = spawn(process.execPath, ['-e', `const podnet = require(${JSON.stringify(path.join(root, 'dist/index.js'))});\n(async () => { ${code} })().catch((e) => { console.error('FAILED', e.code, e.message); process.exit(1); });`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const seen = (b: Buffer) => {
      out += b.toString();
      if (out.includes(marker)) resolve();
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (c, s) => reject(new Error(`owner exited (${c ?? s}) before ${marker}: ${out}`)));
  });
  ready.catch(() => {});
  return { child, ready, out: () => out };
}

/** Polls `fn` until it returns a truthy value, or throws naming `what` at the deadline. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** iptables and ip6tables rules (iptables-save lines) containing any of `needles`. */
export function iptablesRules(needles: string[]): string[] {
  const text = execFileSync('iptables-save', { encoding: 'utf8' }) + execFileSync('ip6tables-save', { encoding: 'utf8' });
  return text.split('\n').filter((l) => !l.startsWith('#') && needles.some((n) => l.includes(n)));
}

/** nftables rules and set elements (`nft list ruleset` lines) containing any of `needles`. */
export function nftRules(needles: string[]): string[] {
  const text = execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  return text.split('\n').filter((l) => needles.some((n) => l.includes(n)));
}

/** Files under `dir` (recursively), for caches, leases and state. */
export function filesUnder(dir: string, keep: (name: string) => boolean = () => true): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, keep));
    else if (keep(e.name)) out.push(p);
  }
  return out;
}

/** Leases of host-local networks `nets` (files named for addresses). */
export function leases(nets: string[]): string[] {
  return nets.flatMap((n) => filesUnder(`/var/lib/cni/networks/${n}`, (f) => /^[0-9a-f.:]+$/.test(f)));
}

/** Processes whose command line contains `needle` (other than this one). */
export function processesWith(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(stat)) continue; // a zombie waiting for init
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push({ pid: Number(d), cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Host veth links whose peer is gone or attached to `bridges`. */
export function bridgePorts(bridges: string[]): string[] {
  return bridges.flatMap((b) => (existsSync(`/sys/class/net/${b}/brif`) ? readdirSync(`/sys/class/net/${b}/brif`).map((l) => `${b}:${l}`) : []));
}
