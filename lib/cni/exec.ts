/**
 * Running CNI plugin binaries: lookup in the search path, spawn with argv and
 * env (no shell), stdin config, timeout, "text file busy" retry as libcni
 * does, and turning the spec's error JSON into a typed error.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { runCommand, type RunResult } from '../command';
import { ErrorCode, PodnetError } from '../errors';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** Directories searched after `binDirs` and $CNI_PATH. */
export const DEFAULT_BIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];

const ETXTBSY_TRIES = 5;
const ETXTBSY_DELAY_MS = 1000;
const MAX_OUTPUT = 16 << 20;

/** A plugin binary found in the search path; `key` changes when the file is replaced. */
export interface FoundPlugin {
  path: string;
  key: string;
}

/** Finds an executable plugin `type` in `dirs` (one stat per directory); typed error naming it and the dirs. */
export async function findPlugin(type: string, dirs: string[]): Promise<FoundPlugin> {
  for (const d of dirs) {
    const p = path.join(d, type);
    let st;
    try {
      st = statSync(p, { throwIfNoEntry: false }); // sync: see cache.ts
    } catch {
      continue; // an unreadable directory: not here
    }
    if (st?.isFile() && st.mode & 0o111) return { path: p, key: `${p}:${st.ino}:${st.mtimeMs}` };
  }
  throw new PodnetError(ErrorCode.CNI_PLUGIN_NOT_FOUND, `CNI plugin '${type}' not found in ${dirs.join(':')}`, {
    details: { plugin: type, dirs },
  });
}

export interface PluginCall {
  command: CniCommand;
  /** Absolute path of the binary. */
  plugin: string;
  /** For errors: the network the call is for. */
  network?: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS, `K=V;K=V`. */
  args?: string;
  /** CNI_PATH. */
  path: string;
  stdin: string;
  timeoutMs: number;
}

function describe(call: PluginCall): string {
  const net = call.network ? ` on network '${call.network}'` : '';
  return `CNI plugin '${path.basename(call.plugin)}' ${call.command}${net}`;
}

function details(call: PluginCall, extra: Record<string, unknown>): Record<string, unknown> {
  return { plugin: path.basename(call.plugin), command: call.command, network: call.network, ...extra };
}

function spawnOnce(call: PluginCall): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? '',
    CNI_NETNS: call.netns ?? '',
    CNI_IFNAME: call.ifname ?? '',
    CNI_ARGS: call.args ?? '',
    CNI_PATH: call.path,
  };
  return runCommand(call.plugin, [], { env, input: call.stdin, timeoutMs: call.timeoutMs, maxOutput: MAX_OUTPUT });
}

/**
 * Runs one plugin command and returns its stdout (the result JSON for ADD and
 * VERSION, usually empty otherwise). Failures are typed: not executable,
 * timeout, or the plugin's own error (with its CNI code).
 */
export async function execPlugin(call: PluginCall): Promise<Buffer> {
  let raw: RunResult;
  for (let attempt = 1; ; attempt++) {
    try {
      raw = await spawnOnce(call);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ETXTBSY' && attempt < ETXTBSY_TRIES) {
        await new Promise((r) => setTimeout(r, ETXTBSY_DELAY_MS));
        continue;
      }
      throw new PodnetError(code ?? ErrorCode.CNI_PLUGIN_FAILED, `${describe(call)}: cannot execute ${call.plugin}: ${(e as Error).message}`, {
        path: call.plugin,
        details: details(call, {}),
        cause: e,
      });
    }
  }
  if (raw.timedOut) {
    throw new PodnetError(ErrorCode.CNI_PLUGIN_TIMEOUT, `${describe(call)}: killed after ${call.timeoutMs} ms`, {
      details: details(call, { timeoutMs: call.timeoutMs, stderr: raw.stderr }),
    });
  }
  if (raw.code === 0) return raw.stdout;
  // The spec's error: JSON {cniVersion, code, msg, details} on stdout, non-zero exit.
  let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    const v = JSON.parse(raw.stdout.toString());
    if (typeof v === 'object' && v !== null) parsed = v;
  } catch {
    // not JSON: fall back to stderr
  }
  const cniCode = typeof parsed?.code === 'number' ? parsed.code : undefined;
  const msg =
    typeof parsed?.msg === 'string'
      ? parsed.msg + (typeof parsed.details === 'string' && parsed.details ? `: ${parsed.details}` : '')
      : (raw.stderr.trim() || raw.stdout.toString().trim() || 'no error output').slice(0, 2000);
  const how = raw.signal ? `killed by ${raw.signal}` : `exit ${raw.code}`;
  throw new PodnetError(ErrorCode.CNI_PLUGIN_FAILED, `${describe(call)} failed: ${msg} (${cniCode !== undefined ? `CNI code ${cniCode}, ` : ''}${how})`, {
    details: details(call, { cniCode, msg, cniDetails: parsed?.details, exitCode: raw.code, signal: raw.signal, stderr: raw.stderr }),
  });
}

/** Parses a plugin's stdout as JSON, or a typed error naming the plugin. */
export function parseOutput(out: Buffer, call: Pick<PluginCall, 'plugin' | 'command' | 'network'>): unknown {
  try {
    return JSON.parse(out.toString());
  } catch (e) {
    throw outputError(call as PluginCall, `output is not JSON (${(e as Error).message}): ${JSON.stringify(out.toString().slice(0, 200))}`);
  }
}

export function outputError(call: Pick<PluginCall, 'plugin' | 'command' | 'network'>, why: string): PodnetError {
  return new PodnetError(ErrorCode.CNI_PLUGIN_OUTPUT, `${describe(call as PluginCall)}: malformed output: ${why}`, {
    details: details(call as PluginCall, { why }),
  });
}

/**
 * Kills plugin processes still running for one attachment (and whatever they
 * forked: it inherits their environment), found by the CNI_* environment they
 * were given. For an ADD whose owner was killed: its plugins were orphaned
 * (they run in process groups of their own) and may hang forever.
 */
export function killStrayPlugins(containerId: string, netns: string, ifname: string): number[] {
  const want = [`CNI_CONTAINERID=${containerId}`, `CNI_NETNS=${netns}`, `CNI_IFNAME=${ifname}`];
  const killed: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = new Set(readFileSync(`/proc/${d}/environ`, 'latin1').split('\0'));
      if (!want.every((w) => env.has(w))) continue;
      process.kill(Number(d), 'SIGKILL');
      killed.push(Number(d));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return killed;
}
