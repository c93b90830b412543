/** Helper processes of a sandbox, live in this process or known only from the state after a crash. */
import { procRef, signalIfAlive } from '../runtime/proc';
import type { HelperName } from '../runtime/state';
import type { DriverCall, LiveHelper } from './driver';

/** Records a helper this process started: live for a graceful stop, in the state for a fresh process. */
export function recordHelper(call: DriverCall, name: HelperName, pid: number, helper: LiveHelper, extra: { apiSocket?: string } = {}): void {
  call.live.helpers.set(name, helper);
  const ref = procRef(pid);
  if (ref) call.state.helpers[name] = { ...ref, ...extra };
}

/** Stops a helper: gracefully when this process started it, else by signal to the recorded process (if still that one). */
export async function stopHelper(call: DriverCall, name: HelperName): Promise<void> {
  const live = call.live.helpers.get(name);
  call.live.helpers.delete(name);
  if (live) await live.stop();
  else signalIfAlive(call.state.helpers[name]);
}
