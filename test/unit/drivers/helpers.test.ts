/** recordHelper/stopHelper: a helper's exit while recorded is a death to report; one stopped first is not. */
import type { DriverCall, LiveHandles, LiveHelper } from '../../../lib/drivers';
import { recordHelper, stopHelper } from '../../../lib/drivers/helpers';
import type { SandboxState } from '../../../lib/runtime/state';
import type { HelperExit } from '../../../lib/spawn';

function fakeHelper(): LiveHelper & { die(e: HelperExit): void } {
  let die!: (e: HelperExit) => void;
  const exited = new Promise<HelperExit>((r) => (die = r));
  return { pid: process.pid, exited, output: () => 'bye', stop: async () => die({ code: 0, signal: null }), die };
}

function fakeCall(reports: Array<[string, HelperExit]>): DriverCall {
  const live: LiveHandles = { helpers: new Map(), onHelperExit: (name, _h, e) => reports.push([name, e]) };
  return { state: { helpers: {} } as SandboxState, live, requested: {}, save: async () => {} };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('recordHelper', () => {
  test('an exit while recorded is reported once, with the exit status; the state names the process', async () => {
    const reports: Array<[string, HelperExit]> = [];
    const call = fakeCall(reports);
    const h = fakeHelper();
    recordHelper(call, 'pasta', h);
    expect(call.state.helpers.pasta?.pid).toBe(process.pid);
    h.die({ code: null, signal: 'SIGKILL' });
    await settle();
    expect(reports).toEqual([['pasta', { code: null, signal: 'SIGKILL' }]]);
  });

  test('a helper stopped by stopHelper, or one replaced, is not reported; nothing once the reporter is removed', async () => {
    const reports: Array<[string, HelperExit]> = [];
    const call = fakeCall(reports);
    const stopped = fakeHelper();
    recordHelper(call, 'slirp', stopped);
    await stopHelper(call, 'slirp');
    const replaced = fakeHelper();
    recordHelper(call, 'forwarder', replaced);
    recordHelper(call, 'forwarder', fakeHelper());
    replaced.die({ code: 1, signal: null });
    const released = fakeHelper();
    recordHelper(call, 'holder', released);
    call.live.onHelperExit = undefined;
    released.die({ code: 1, signal: null });
    await settle();
    expect(reports).toEqual([]);
  });
});
