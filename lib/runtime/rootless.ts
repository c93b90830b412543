/**
 * Rootless networking for a sandbox (the seed's setupRootlessNetNS and its
 * two port handlers): slirp4netns gives the namespace tap0 and a route out;
 * ports are published either by podnet's forwarder (port_handler=rootlesskit,
 * the default) or through slirp4netns's API (port_handler=slirp4netns). For
 * an unprivileged caller the namespace itself lives in a user namespace held
 * by a UserNetns holder. Both handlers give the caller the same result.
 */
import { PortForwarder, type PortForwarderHandle } from '../portfwd/forwarder';
import { UserNetns } from '../rootless';
import { Slirp4netns, hostForwardsFromPortMappings, parseSlirpOptions } from '../slirp';
import type { SandboxState } from './state';

/** slirp4netns's fixed guest address: the forwarder connects here, not to loopback. */
const SLIRP_GUEST_IP = '10.0.2.100';

export interface RootlessHandles {
  netnsPath: string;
  usernsPath?: string;
  holderPid?: number;
  slirpPid: number;
  apiSocket?: string;
  forwarderPid?: number;
  stop(): Promise<void>;
}

/**
 * Starts slirp4netns (and the holder and forwarder as needed) for `state`;
 * with `netnsPath` the namespace already exists (root). Undone on failure.
 */
export async function startRootless(state: SandboxState, opts: { binary?: string; netnsPath?: string }): Promise<RootlessHandles> {
  const options = parseSlirpOptions(state.networkOptions);
  // Checked before anything starts: slirp4netns forwards tcp/udp over IPv4 only.
  const hostForwards = options.portHandler === 'slirp4netns' ? hostForwardsFromPortMappings(state.portMappings) : [];
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    stops.length = 0;
  };
  try {
    let netnsPath = opts.netnsPath;
    let holder: UserNetns | undefined;
    if (!netnsPath) {
      holder = await UserNetns.start();
      stops.push(() => holder!.stop());
      netnsPath = holder.netnsPath;
    }
    const slirp = await Slirp4netns.start({
      netns: netnsPath,
      userns: holder?.usernsPath,
      binary: opts.binary,
      options,
      hostForwards,
    });
    stops.push(() => slirp.stop());
    let forwarder: PortForwarderHandle | undefined;
    if (options.portHandler === 'rootlesskit' && state.portMappings.length) {
      forwarder = await PortForwarder.start({ netnsPath, usernsPath: holder?.usernsPath, containerIP: SLIRP_GUEST_IP, portMappings: state.portMappings });
      stops.push(() => forwarder!.stop());
    }
    return {
      netnsPath,
      usernsPath: holder?.usernsPath,
      holderPid: holder?.pid,
      slirpPid: slirp.pid,
      apiSocket: slirp.apiSocket,
      forwarderPid: forwarder?.pid,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
