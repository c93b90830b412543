/**
 * A helper that dies while its sandbox is up is reported by the runtime's
 * 'helperExit' event and noted in the sandbox's state; a stop by teardown
 * (here or from another process's runtime) or after close() is not. Root:
 * pasta, slirp4netns and the port forwarder (slirp4netns's rootlesskit port
 * handler) are SIGKILLed under running sandboxes; teardown afterwards still
 * leaves nothing. Unprivileged (test user pnpasta2, running podnet from
 * dist/): pasta and the user-namespace holder. Ports 46400-46409, sandbox ids hx-*.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { ErrorCode, Runtime, type HelperExitEvent, type HelperName, type SandboxState } from '../../lib';
import { createTestUser, grantTun, revokeTun, type TestUser } from '../helpers/rootless';
import { describeRoot, uniqueName } from '../helpers/system';

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readSafe(`/proc/${pid}/status`));
function readSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** The next 'helperExit' of `rt`, or a rejection after `ms`. */
function nextHelperExit(rt: Runtime, ms = 10_000): Promise<HelperExitEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      rt.off('helperExit', on);
      reject(new Error(`no helperExit within ${ms} ms`));
    }, ms);
    const on = (e: HelperExitEvent) => {
      clearTimeout(timer);
      resolve(e);
    };
    rt.once('helperExit', on);
  });
}

/** Polls `probe` until it gives something truthy, or fails after `ms`. */
async function waitFor<T>(probe: () => Promise<T | undefined | false | 0>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Whether this process can listen on 127.0.0.1:port (no forwarder or pasta holds it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describeRoot("runtime 'helperExit': a helper that dies unasked (root)", () => {
  let dir = '';
  let rt: Runtime;
  const events: HelperExitEvent[] = [];
  const record = (e: HelperExitEvent) => events.push(e);
  const opts = () => ({ stateDir: path.join(dir, 'state') });
  const ownNamespaces = () => readdirSync('/run/netns').filter((n) => n.startsWith(rt.netnsPrefix));

  /**
   * Everything a torn-down sandbox had is gone: its state, namespace, helpers and published port.
   * The runtime has had its chance to report (a report takes the store lock, then emits).
   */
  async function expectNothingLeft(sb: SandboxState, port?: number): Promise<void> {
    await rt.state.locked(async () => {});
    await new Promise((r) => setImmediate(r));
    expect(await rt.get(sb.id)).toBeUndefined();
    expect(existsSync(sb.netnsPath!)).toBe(false);
    for (const h of Object.values(sb.helpers)) expect(await waitGone(h!.pid, 0)).toBe(true); // teardown waited for each to be reaped
    if (port !== undefined) expect(await portFree(port)).toBe(true);
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'helper-exit-'));
    rt = new Runtime(opts());
    rt.on('helperExit', record);
  });
  beforeEach(() => {
    events.length = 0;
  });
  afterAll(async () => {
    rt?.off('helperExit', record);
    for (const s of (await rt?.list()) ?? []) await rt.teardown(s.id).catch(() => {});
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('pasta SIGKILLed: one event with the sandbox, the helper and ERR_HELPER_EXITED; list shows it; teardown leaves nothing', async () => {
    const id = uniqueName('hx-pasta');
    const sb = await rt.createSandbox({ id, network: 'pasta', portMappings: [{ hostIP: '127.0.0.1', hostPort: 46400, containerPort: 8000 }] });
    try {
      const pid = sb.helpers.pasta!.pid;
      const got = nextHelperExit(rt);
      process.kill(pid, 'SIGKILL');
      const e = await got;
      expect(e.sandboxId).toBe(id);
      expect(e.helper).toBe('pasta');
      expect(e.error.code).toBe(ErrorCode.HELPER_EXITED);
      expect(e.error.message).toBe(`sandbox '${id}': pasta (pid ${pid}) was killed by SIGKILL while the sandbox was up; it wrote nothing`);
      expect(e.error.details).toEqual({ sandboxId: id, helper: 'pasta', pid, code: null, signal: 'SIGKILL', output: '' }); // --quiet: pasta says nothing
      // The state says so moments later.
      const entry = await waitFor(async () => (await rt.list()).find((s) => s.id === id && s.helperExits));
      expect(entry.status).toBe('ready');
      expect(entry.helperExits).toEqual([{ helper: 'pasta', pid, code: null, signal: 'SIGKILL', at: expect.any(String), message: e.error.message }]);
      expect((await rt.get(id))!.helperExits).toEqual(entry.helperExits);
    } finally {
      await rt.teardown(id);
    }
    await expectNothingLeft(sb, 46400);
    expect(events.map((e) => e.helper)).toEqual(['pasta']); // once, and nothing from the teardown
    expect(ownNamespaces()).toEqual([]);
  });

  test('slirp4netns and its port forwarder SIGKILLed one after the other: an event each, with their output', async () => {
    const id = uniqueName('hx-slirp');
    const sb = await rt.createSandbox({
      id,
      network: 'slirp4netns',
      networkOptions: ['port_handler=rootlesskit'],
      portMappings: [{ hostIP: '127.0.0.1', hostPort: 46401, containerPort: 8000 }],
    });
    try {
      const kill = async (name: HelperName) => {
        const pid = sb.helpers[name]!.pid;
        const got = nextHelperExit(rt);
        process.kill(pid, 'SIGKILL');
        const e = await got;
        expect([e.sandboxId, e.helper, e.error.code]).toEqual([id, name, ErrorCode.HELPER_EXITED]);
        expect(e.error.details).toMatchObject({ sandboxId: id, helper: name, pid, code: null, signal: 'SIGKILL' });
        return e;
      };
      const fwd = await kill('forwarder');
      expect(fwd.error.message).toBe(
        `sandbox '${id}': port forwarder (podnet-portfwd) (pid ${sb.helpers.forwarder!.pid}) was killed by SIGKILL while the sandbox was up; it wrote nothing`,
      );
      expect(await portFree(46401)).toBe(true); // the published port is gone with it
      const slirp = await kill('slirp');
      // slirp4netns reports the tap fd it sent and received at start: that output comes with the error.
      const output = String(slirp.error.details!.output);
      expect(output).toMatch(/^sent tapfd=\d+ for tap0$/m);
      expect(slirp.error.message).toMatch(
        new RegExp(
          `^sandbox '${id}': slirp4netns \\(pid ${sb.helpers.slirp!.pid}\\) was killed by SIGKILL while the sandbox was up; its last output: .*received tapfd=\\d+$`,
        ),
      );
      const noted = await waitFor(async () => (await rt.get(id))!.helperExits?.filter((n) => n.helper === 'slirp').length && (await rt.get(id)));
      expect(noted.helperExits!.map((n) => n.helper)).toEqual(['forwarder', 'slirp']);
    } finally {
      await rt.teardown(id);
    }
    await expectNothingLeft(sb, 46401);
    expect(events.map((e) => e.helper)).toEqual(['forwarder', 'slirp']);
  });

  test('a teardown, here or by another runtime, and a death after close() emit nothing', async () => {
    const ids = [uniqueName('hx-here'), uniqueName('hx-other'), uniqueName('hx-closed')];
    const sbs = await Promise.all(
      ids.map((id, i) => rt.createSandbox({ id, network: 'pasta', portMappings: [{ hostIP: '127.0.0.1', hostPort: 46402 + i, containerPort: 80 }] })),
    );
    try {
      await rt.teardown(ids[0]);
      await new Runtime(opts()).teardown(ids[1]); // no handles of its own: stops pasta by signal, as another process would
      await rt.close(ids[2]);
      process.kill(sbs[2].helpers.pasta!.pid, 'SIGKILL');
      expect(await waitGone(sbs[2].helpers.pasta!.pid)).toBe(true);
      expect((await rt.get(ids[2]))!.helperExits).toBeUndefined();
      await rt.teardown(ids[2]);
    } finally {
      for (const id of ids) await rt.teardown(id).catch(() => {});
    }
    for (const [i, sb] of sbs.entries()) await expectNothingLeft(sb, 46402 + i);
    expect(events).toEqual([]);
  });
});

// Runs as the user: a pasta sandbox (pasta in the holder's namespaces); SIGKILL pasta, then the holder; an event each; teardown.
const UNPRIVILEGED = `
const { Runtime } = require(process.env.PODNET_DIST + '/index.js');
(async () => {
  const rt = new Runtime({ stateDir: require('os').homedir() + '/state' });
  const events = [];
  rt.on('helperExit', (e) => events.push({ sandboxId: e.sandboxId, helper: e.helper, code: e.error.code, message: e.error.message, details: e.error.details }));
  const next = (n) => new Promise((res, rej) => {
    const end = Date.now() + 10000;
    const t = setInterval(() => { if (events.length >= n) { clearInterval(t); res(); } else if (Date.now() > end) { clearInterval(t); rej(new Error('no event')); } }, 5);
  });
  const sb = await rt.createSandbox({ id: 'hx-user', network: 'pasta', portMappings: [{ hostIP: '127.0.0.1', hostPort: 46405, containerPort: 80 }] });
  const r = { pasta: sb.helpers.pasta.pid, holder: sb.helpers.holder.pid };
  try {
    process.kill(r.pasta, 'SIGKILL');
    await next(1);
    process.kill(r.holder, 'SIGKILL');
    await next(2);
  } finally {
    await rt.teardown('hx-user');
  }
  r.events = events;
  r.after = await rt.list();
  console.log(JSON.stringify(r));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describeRoot("runtime 'helperExit' for an unprivileged caller (test user pnpasta2)", () => {
  let user: TestUser | undefined;
  let granted = false;

  beforeAll(() => {
    user = createTestUser('pnpasta2');
  }, 120000);
  afterAll(() => {
    if (user && granted) revokeTun(user.name);
    user?.remove();
  });

  test('pasta, then the user-namespace holder, SIGKILLed: an event each; teardown leaves no process', async () => {
    granted ||= grantTun(user!.name); // pasta opens /dev/net/tun as the caller (0600 here: no udev)
    const { stdout } = await user!.run(process.execPath, ['-e', UNPRIVILEGED], { timeout: 60000, env: { PODNET_DIST: path.join(user!.pkg, 'dist') } });
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(r.events).toEqual([
      {
        sandboxId: 'hx-user',
        helper: 'pasta',
        code: ErrorCode.HELPER_EXITED,
        message: `sandbox 'hx-user': pasta (pid ${r.pasta}) was killed by SIGKILL while the sandbox was up; it wrote nothing`,
        details: { sandboxId: 'hx-user', helper: 'pasta', pid: r.pasta, code: null, signal: 'SIGKILL', output: '' },
      },
      {
        sandboxId: 'hx-user',
        helper: 'holder',
        code: ErrorCode.HELPER_EXITED,
        message: `sandbox 'hx-user': user namespace holder (pid ${r.holder}) was killed by SIGKILL while the sandbox was up; it wrote nothing`,
        details: { sandboxId: 'hx-user', helper: 'holder', pid: r.holder, code: null, signal: 'SIGKILL', output: '' },
      },
    ]);
    expect(r.after).toEqual([]);
    for (const pid of [r.pasta, r.holder]) expect(await waitGone(pid, 0)).toBe(true);
    expect(await portFree(46405)).toBe(true);
  });
});
