/**
 * Rootless networking for a sandbox (the seed's setupRootlessNetNS and its
 * two port handlers): slirp4netns gives the namespace tap0 and a route out;
 * ports are published either by podnet's forwarder (port_handler=rootlesskit,
 * the default) or through slirp4netns's API (port_handler=slirp4netns). For
 * an unprivileged caller the namespace itself lives in a user namespace held
 * by a UserNetns holder. Both handlers give the caller the same result.
 */
import { PortForwarder } from '../portfwd/forwarder';
import { UserNetns } from '../rootless';
import { Slirp4netns, hostForwardsFromPortMappings, parseSlirpOptions } from '../slirp';
import { debug } from '../debug';
import type { SandboxState } from './state';

/** slirp4netns's fixed guest address: the forwarder connects here, not to loopback. */
const SLIRP_GUEST_IP = '10.0.2.100';

export interface RootlessHandles {
  netnsPath: string;
  usernsPath?: string;
  holderPid?: number;
  slirpPid?: number;
  apiSocket?: string;
  forwarderPid?: number;
  stop(): Promise<void>;
}

export interface RootlessOptions {
  binary?: string;
  /** The namespace exists already (root: podnet's bind mount). */
  netnsPath?: string;
  /** Post-configure mode for an unprivileged caller: the process owns its user and network namespaces. */
  pid?: number;
  /** false for network mode 'none': only the namespace (with lo up), no slirp4netns. */
  slirp: boolean;
}

/**
 * Starts what `state` needs: for an unprivileged caller a UserNetns holder
 * (or the given process's namespaces), then slirp4netns and the forwarder as
 * asked. Undone on failure.
 */
export async function startRootless(state: SandboxState, opts: RootlessOptions): Promise<RootlessHandles> {
  const options = parseSlirpOptions(state.networkOptions);
  // Checked before anything starts: slirp4netns forwards tcp/udp over IPv4 only.
  const hostForwards = opts.slirp && options.portHandler === 'slirp4netns' ? hostForwardsFromPortMappings(state.portMappings) : [];
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    stops.length = 0;
  };
  try {
    let netnsPath = opts.netnsPath;
    let usernsPath: string | undefined;
    let holder: UserNetns | undefined;
    if (!netnsPath && opts.pid !== undefined) {
      netnsPath = `/proc/${opts.pid}/ns/net`;
      usernsPath = `/proc/${opts.pid}/ns/user`;
    } else if (!netnsPath) {
      holder = await UserNetns.start();
      stops.push(() => holder!.stop());
      netnsPath = holder.netnsPath;
      usernsPath = holder.usernsPath;
    }
    const handles: RootlessHandles = { netnsPath, usernsPath, holderPid: holder?.pid, stop };
    if (!opts.slirp) return handles;
    const slirp = await Slirp4netns.start({ netns: netnsPath, userns: usernsPath, binary: opts.binary, options, hostForwards });
    debug('sandbox %s: slirp4netns %d: %s', state.id, slirp.pid, slirp.args.join(' '));
    stops.push(async () => {
      await slirp.stop();
      debug('sandbox %s: slirp4netns output: %s', state.id, slirp.output());
    });
    handles.slirpPid = slirp.pid;
    handles.apiSocket = slirp.apiSocket;
    if (options.portHandler === 'rootlesskit' && state.portMappings.length) {
      const forwarder = await PortForwarder.start({ netnsPath, usernsPath, containerIP: SLIRP_GUEST_IP, portMappings: state.portMappings });
      stops.push(() => forwarder.stop());
      handles.forwarderPid = forwarder.pid;
    }
    return handles;
  } catch (err) {
    await stop();
    throw err;
  }
}
