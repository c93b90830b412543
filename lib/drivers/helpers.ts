/** Helper processes of a sandbox, live in this process or known only from the state after a crash. */
import { debug } from '../debug';
import { procRef, signalIfAlive } from '../runtime/proc';
import type { HelperName } from '../runtime/state';
import type { HelperExit } from '../spawn';
import type { DriverCall, LiveHelper, NetworkDriver } from './driver';

/**
 * Records a helper this process started: live for a graceful stop, in the
 * state for a fresh process. Its exit is watched: one while it is still
 * recorded is a death nobody asked for, passed to `live.onHelperExit`.
 */
export function recordHelper(call: DriverCall, name: HelperName, helper: LiveHelper, extra: { apiSocket?: string } = {}): void {
  const { live } = call;
  live.helpers.set(name, helper);
  void helper.exited.then((exit) => {
    if (live.helpers.get(name) === helper) live.onHelperExit?.(name, helper, exit);
  });
  const ref = procRef(helper.pid);
  if (ref) call.state.helpers[name] = { ...ref, ...extra };
}

/** What the slirp4netns and pasta drivers share: a user-mode networking process per sandbox, in a namespace of its own, for any user. */
export abstract class UserModeDriver implements Pick<NetworkDriver, 'namespace' | 'unprivileged' | 'accepts'> {
  readonly namespace = 'own';
  readonly unprivileged = true;
  readonly accepts = { portMappings: true, staticAddress: false, networkOptions: true };
  /** The program to run instead of the one in PATH. */
  protected readonly binary?: string;

  constructor(binary?: string) {
    this.binary = binary;
  }
}

/** A user-mode networking process (slirp4netns, pasta) as its start returns it. */
export interface UserModeProcess {
  readonly pid: number;
  readonly args: readonly string[];
  readonly exited: Promise<HelperExit>;
  stop(): Promise<unknown>;
  output(): string;
}

/** Records a started slirp4netns or pasta and saves the state; its command line and, once stopped, its output go to the debug log. */
export async function recordUserMode(
  call: DriverCall,
  name: HelperName,
  command: string,
  p: UserModeProcess,
  extra: { apiSocket?: string } = {},
): Promise<void> {
  const { id } = call.state;
  debug('sandbox %s: %s %d: %s', id, command, p.pid, p.args.join(' '));
  const stop = async (): Promise<void> => {
    await p.stop();
    debug('sandbox %s: %s output: %s', id, command, p.output());
  };
  recordHelper(call, name, { pid: p.pid, exited: p.exited, output: () => p.output(), stop }, extra);
  await call.save();
}

/** Stops a helper: gracefully when this process started it, else by signal to the recorded process (if still that one). */
export async function stopHelper(call: DriverCall, name: HelperName): Promise<void> {
  const live = call.live.helpers.get(name);
  call.live.helpers.delete(name);
  if (live) await live.stop();
  else signalIfAlive(call.state.helpers[name]);
}
