/** Helpers for system tests: root gating with a printed reason, and host-state probes. */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export const isRoot = process.getuid?.() === 0;

/** `describe` for root-only suites: when not root the suite is skipped and the reason printed. */
export function describeRoot(name: string, fn: () => void): void {
  if (isRoot) {
    describe(name, fn);
    return;
  }

  console.warn(`SKIP ${name}: needs root (CI runs as root)`);
  describe.skip(name, fn);
}

/** Mount points of nsfs files in this mount namespace. */
export function nsfsMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - nsfs /.test(l))
    .map((l) => l.split(' ')[4]);
}

export function ipNetnsList(): string[] {
  // stderr ignored: ip complains about namespaces other tests remove while it lists them.
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The network namespace of every thread of this process. */
export function threadNetns(): string[] {
  return readdirSync('/proc/self/task').map((t) => readlinkSync(`/proc/self/task/${t}/ns/net`));
}

/** A unique name for this test file and run, so parallel files never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** GETs http://host:port/, retrying while the server (started just before, inside a sandbox) comes up. */
export async function httpGet(port: number, host = '127.0.0.1', deadlineMs = 15_000): Promise<string> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await (await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2000) })).text();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
