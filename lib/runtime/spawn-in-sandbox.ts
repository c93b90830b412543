/** Starting processes inside a sandbox's namespaces. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

import { spawnInNetns } from '../netns';
import type { SandboxState } from './state';

/** Spawns `cmd` inside the sandbox; on the host for host networking. */
export function spawnIn(state: Pick<SandboxState, 'mode' | 'netnsPath' | 'usernsPath'>, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  if (state.mode === 'host' || !state.netnsPath) return spawn(cmd, args, opts);
  return spawnInNetns(state.netnsPath, state.usernsPath, cmd, args, opts);
}
