/**
 * The namespace of a sandbox whose driver wants one of its own. Root: a bind
 * mount under the netns dir (`ip netns` sees it), named for the state dir so
 * gc never touches another runtime's. Unprivileged: no bind mount is possible,
 * so the namespace lives in a user namespace held by a small holder process
 * (what Podman's rootless mode keeps in its pause process), or it is the given
 * process's own (post-configure mode).
 */
import { NetNS } from '../netns';
import { UserNetns } from '../rootless';
import type { DriverCall } from '../drivers/driver';
import { recordHelper, stopHelper } from '../drivers/helpers';
import { isRoot } from './options';

export async function makeSandboxNetns(call: DriverCall, opts: { dir?: string; name: string; pid?: number }): Promise<void> {
  const { state, live } = call;
  if (isRoot()) {
    live.netns =
      opts.pid !== undefined ? await NetNS.fromPid(opts.pid, { dir: opts.dir, name: opts.name }) : await NetNS.create({ dir: opts.dir, name: opts.name });
    state.ownsNetns = true;
    state.netnsPath = live.netns.path;
    await call.save();
    await live.netns.setLoopbackUp();
  } else if (opts.pid !== undefined) {
    state.netnsPath = `/proc/${opts.pid}/ns/net`;
    state.usernsPath = `/proc/${opts.pid}/ns/user`;
  } else {
    const holder = await UserNetns.start(); // its forked child sets lo up before exec
    recordHelper(call, 'holder', { pid: holder.pid, exited: holder.holder.exited, output: () => holder.holder.output(), stop: () => holder.stop() });
    state.netnsPath = holder.netnsPath;
    state.usernsPath = holder.usernsPath;
    await call.save();
  }
}

/** Undoes makeSandboxNetns: the holder goes, the bind mount is removed. */
export async function removeSandboxNetns(call: DriverCall): Promise<void> {
  const { state, live } = call;
  await stopHelper(call, 'holder');
  live.netns?.close();
  live.netns = undefined;
  if (state.ownsNetns && state.netnsPath) await NetNS.removePath(state.netnsPath);
}
