/** Starting processes inside a sandbox's namespaces (user namespace first, as setns requires). */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

import type { SandboxState } from './state';

/** nsenter arguments that enter the sandbox's namespaces; empty for host networking. */
export function enterArgs(state: Pick<SandboxState, 'mode' | 'netnsPath' | 'usernsPath'>): string[] {
  if (state.mode === 'host' || !state.netnsPath) return [];
  const user = state.usernsPath ? [`--user=${state.usernsPath}`, '--preserve-credentials'] : [];
  return [...user, `--net=${state.netnsPath}`];
}

/** Spawns `cmd` inside the sandbox (nsenter execs it: signals reach the command itself). */
export function spawnIn(state: Pick<SandboxState, 'mode' | 'netnsPath' | 'usernsPath'>, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const ns = enterArgs(state);
  return ns.length ? spawn('nsenter', [...ns, '--', cmd, ...args], opts) : spawn(cmd, args, opts);
}
