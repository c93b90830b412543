/**
 * PortForwarder: podnet's rootlessport. Starts the native forwarder
 * (build/Release/podnet-portfwd, a single-threaded epoll + splice process)
 * with its configuration as JSON on stdin, an exit pipe on fd 3 (the forwarder
 * ends when it closes, so it never outlives its owner) and a ready pipe on fd 4.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import type { PortMapping } from '../cni/types';
import { debug } from '../debug';
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
  /** How long to wait for every listener to be bound; default 3000 (rootlessport's). */
  timeoutMs?: number;
}

export interface PortForwarderHandle {
  readonly pid: number;
  /** Closes the exit pipe and waits for the forwarder to end. */
  stop(): Promise<void>;
  /** Resident memory of the forwarder (and its namespace helper), KiB; undefined once it exited. */
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

export class PortForwarder {
  static async start(opts: PortForwarderOptions): Promise<PortForwarderHandle> {
    if (typeof opts !== 'object' || opts === null) throw invalidArgument('options', 'expected an object');
    const netns = checkPath('netnsPath', opts.netnsPath);
    const userns = opts.usernsPath === undefined ? '' : checkPath('usernsPath', opts.usernsPath);
    const target = opts.containerIP === undefined ? '' : checkIp('containerIP', opts.containerIP);
    const listen: Listener[] = expandPortMappings(opts.portMappings);
    const timeoutMs = opts.timeoutMs ?? 3000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw invalidArgument('timeoutMs', `'${timeoutMs}' is not a positive integer`);
    const exe = forwarderPath();

    const child = spawn(exe, [], { stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'] });
    const [stdin, stdout, stderr, exitPipe, readyPipe] = child.stdio as [Writable, Readable, Readable, Writable, Readable];
    let out = '';
    stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    stderr.setEncoding('utf8').on('data', (d: string) => debug('podnet-portfwd[%d]: %s', child.pid, d.trimEnd()));
    stdin.on('error', () => { /* an early exit shows as a closed ready pipe */ });
    exitPipe.on('error', () => { /* likewise */ });
    stdin.end(JSON.stringify({ netns, userns, target, listen }));

    let spawnError: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.once('error', (e) => { spawnError = e; resolve(); });  // could not be started
    });
    try {
      await waitReady(child, readyPipe, exited, timeoutMs, () => out || (spawnError ? `${exe}: ${spawnError.message}` : ''));
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      exitPipe.destroy();
      await exited;
      throw err;
    }
    // The forwarder lives as long as its owner: do not hold the owner's event loop.
    for (const s of [stdout, stderr, exitPipe, readyPipe] as unknown as Array<{ unref?: () => void }>) s.unref?.();
    child.unref();
    const pid = child.pid as number;
    return {
      pid,
      async stop() {
        exitPipe.destroy();
        const t = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(t);
      },
      rssKiB() {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        try {
          const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
          return [pid, ...kids].reduce((sum, p) => sum + rssOf(p), 0);
        } catch {
          return undefined;
        }
      },
    };
  }
}

function waitReady(child: ChildProcess, ready: Readable, exited: Promise<void>, timeoutMs: number, out: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new PodnetError(ErrorCode.PORTFWD_TIMEOUT, `port forwarder not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err?: PodnetError) => {
      clearTimeout(timer);
      ready.removeAllListeners('data');
      if (err) reject(err); else resolve();
    };
    ready.once('data', () => done());
    // Closed without "ready": the forwarder failed and said why on stdout.
    exited.then(() => done(forwarderError(out(), `exited with ${child.exitCode ?? child.signalCode}`)));
  });
}
