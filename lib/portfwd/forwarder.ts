/**
 * PortForwarder: podnet's rootlessport. Starts the native forwarder
 * (podnet-portfwd, epoll + splice loops) as a helper (lib/spawn.ts): its
 * configuration as JSON on stdin, the exit pipe on fd 3 (it ends when that
 * closes, so it never outlives its owner), the ready pipe on fd 4, and a
 * "CODE: message" line in its output when it fails.
 */
import { closeSync, existsSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';

import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import type { PortMapping } from '../types';
import { debug } from '../debug';
import { native } from '../addon';
import { spawnHelper, type HelperExit, type HelperProcess } from '../spawn';
import { checkIp, checkPath } from '../validate';
import { expandPortMappings, type Listener } from './mappings';

export interface PortForwarderOptions {
  /** The container's network namespace (a bind mount or /proc/PID/ns/net). */
  netnsPath: string;
  /** For an unprivileged caller: the user namespace that owns `netnsPath`. */
  usernsPath?: string;
  /** Address connections go to; default the namespace's first global address (never loopback). */
  containerIP?: string;
  portMappings: PortMapping[];
  /**
   * TCP connections reach the container from the client's own address (an
   * IP_TRANSPARENT dial inside the namespace, as rootlesskit v3's builtin
   * driver); a loopback client appears as the host side of the namespace's
   * default route. Default true. false: every connection comes from the
   * namespace's own address. UDP always does (see README).
   */
  keepClientAddress?: boolean;
  /** UDP flows (client address and port) relayed at once; the least recently used goes first. Default 1024. */
  udpMaxFlows?: number;
  /** A UDP flow without a datagram either way for this long ends. Default 60000. */
  udpIdleTimeoutMs?: number;
  /** How long to wait for every listener to be bound; default 3000 (rootlessport's). */
  timeoutMs?: number;
}

export interface PortForwarderHandle {
  readonly pid: number;
  /** Settles when the forwarder has exited and been reaped. */
  readonly exited: Promise<HelperExit>;
  /** What it wrote so far (its "CODE: message" line when it fails). */
  output(): string;
  /** Closes the exit pipe and waits for the forwarder to end. */
  stop(): Promise<void>;
  /** Resident memory of the forwarder, KiB; undefined once it exited. */
  rssKiB(): number | undefined;
}

/** Path of the native forwarder executable (built by node-gyp with the addon; a prebuild must ship it too). */
export function forwarderPath(): string {
  const prebuilt = `../../prebuilds/${process.platform}-${process.arch}/podnet-portfwd`;
  for (const rel of ['../../build/Release/podnet-portfwd', '../../build/Debug/podnet-portfwd', prebuilt]) {
    const p = path.join(__dirname, rel);
    if (existsSync(p)) return p;
  }
  throw new PodnetError(ErrorCode.PORTFWD_FAILED, 'podnet-portfwd is not built (run node-gyp rebuild)');
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Turns the forwarder's "CODE: message" line into a typed error naming the listener. */
function forwarderError(line: string, fallback: string): PodnetError {
  const m = /^([A-Z][A-Z0-9_]*): (.*)$/.exec(line.trim());
  if (!m) return new PodnetError(ErrorCode.PORTFWD_FAILED, `port forwarder: ${line.trim() || fallback}`);
  const details: Record<string, unknown> = {};
  const l = /listen on (tcp|udp) \[?([0-9a-fA-F.:]+?)\]?:(\d+)/.exec(m[2]);
  if (l) Object.assign(details, { protocol: l[1], hostIP: l[2], hostPort: Number(l[3]) });
  return new PodnetError(m[1], `port forwarder: ${m[2]}`, { details });
}

function positiveInteger(name: string, v: unknown, max = 2 ** 31 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > max) throw invalidArgument(name, `'${String(v)}' is not an integer from 1 to ${max}`);
  return v;
}

export class PortForwarder {
  static async start(opts: PortForwarderOptions): Promise<PortForwarderHandle> {
    if (typeof opts !== 'object' || opts === null) throw invalidArgument('options', 'expected an object');
    const netns = checkPath('netnsPath', opts.netnsPath);
    const userns = opts.usernsPath === undefined ? '' : checkPath('usernsPath', opts.usernsPath);
    const target = opts.containerIP === undefined ? '' : checkIp('containerIP', opts.containerIP);
    const listen: Listener[] = expandPortMappings(opts.portMappings);
    const timeoutMs = positiveInteger('timeoutMs', opts.timeoutMs ?? 3000);
    const keepClientAddress = opts.keepClientAddress ?? true;
    if (typeof keepClientAddress !== 'boolean') throw invalidArgument('keepClientAddress', `'${String(keepClientAddress)}' is not a boolean`);
    const udpMaxFlows = positiveInteger('udpMaxFlows', opts.udpMaxFlows ?? 1024);
    const udpIdleMs = positiveInteger('udpIdleTimeoutMs', opts.udpIdleTimeoutMs ?? 60000, 86400000);
    const exe = forwarderPath();

    // Config on stdin from a memfd (positional write: the offset stays at 0 for the child).
    const config = native.memfd('podnet-portfwd-config');
    let helper: HelperProcess;
    try {
      writeSync(config, JSON.stringify({ netns, userns, target, keepClientAddress, udpMaxFlows, udpIdleMs, listen }), 0);
      helper = spawnHelper(exe, [], { stdin: config, name: 'podnet-portfwd' });
    } finally {
      closeSync(config);
    }
    try {
      await helper.waitReady(timeoutMs);
    } catch (err) {
      const e = err as PodnetError;
      if (e.code === ErrorCode.HELPER_TIMEOUT)
        throw new PodnetError(ErrorCode.PORTFWD_TIMEOUT, `port forwarder not ready within ${timeoutMs} ms`, { cause: err });
      // Its stdout says why, as one "CODE: message" line (debug lines may surround it).
      const out = String((e.details as { output?: string } | undefined)?.output ?? '');
      throw forwarderError(/^[A-Z][A-Z0-9_]*: .*$/m.exec(out)?.[0] ?? out, e.message);
    }
    // The forwarder lives as long as its owner: do not hold the owner's event loop.
    helper.unref();
    const pid = helper.pid;
    return {
      pid,
      exited: helper.exited,
      output: () => helper.output(),
      async stop() {
        await helper.stop();
        debug('podnet-portfwd[%d] output: %s', pid, helper.output());
      },
      rssKiB() {
        if (!helper.running) return undefined;
        try {
          return rssOf(pid);
        } catch {
          return undefined;
        }
      },
    };
  }
}
