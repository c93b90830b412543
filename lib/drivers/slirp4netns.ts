/**
 * `slirp4netns`: user-mode networking (tap0, 10.0.2.100/24, a route out),
 * as Podman's libpod/networking_linux.go setupSlirp4netns starts it. Ports go
 * through podnet's forwarder (`port_handler=rootlesskit`, the default) or
 * through slirp4netns's API (`port_handler=slirp4netns`); both give the
 * caller the same result.
 */
import { PortForwarder } from '../portfwd/forwarder';
import { invalidArgument } from '../errors';
import { checkHostPorts, checkPortMappings, resolveHostPorts, toPortMappings } from '../ports';
import { Slirp4netns, hostForwardsFromPortMappings, parseSlirpOptions } from '../slirp';
import type { SandboxState } from '../runtime/state';
import type { DriverCall, NetworkDriver } from './driver';
import { UserModeDriver, recordHelper, recordUserMode, stopHelper } from './helpers';

/** slirp4netns's fixed guest address: the forwarder connects here, not to loopback (CVE-2021-20199). */
const SLIRP_GUEST_IP = '10.0.2.100';

export class Slirp4netnsDriver extends UserModeDriver implements NetworkDriver {
  readonly name = 'slirp4netns';

  async validate(state: SandboxState): Promise<void> {
    const options = parseSlirpOptions(state.networkOptions);
    const maps = checkPortMappings(state.portMappings);
    // Neither slirp4netns nor the forwarder carries sctp.
    const sctp = maps.findIndex((m) => m.protocols.includes('sctp'));
    if (sctp >= 0) throw invalidArgument(`portMappings[${sctp}].protocol`, 'slirp4netns forwards tcp and udp only, not sctp');
    await checkHostPorts(maps);
    state.portMappings = toPortMappings(await resolveHostPorts(maps));
    // slirp4netns forwards tcp/udp over IPv4 only: checked before anything starts.
    if (options.portHandler === 'slirp4netns') hostForwardsFromPortMappings(state.portMappings);
  }

  async setUp(call: DriverCall): Promise<void> {
    const { state } = call;
    const options = parseSlirpOptions(state.networkOptions);
    const hostForwards = options.portHandler === 'slirp4netns' ? hostForwardsFromPortMappings(state.portMappings) : [];
    const netns = state.netnsPath!;
    const slirp = await Slirp4netns.start({ netns, userns: state.usernsPath, binary: this.binary, options, hostForwards });
    await recordUserMode(call, 'slirp', 'slirp4netns', slirp, { apiSocket: slirp.apiSocket });
    if (options.portHandler === 'rootlesskit' && state.portMappings.length) {
      const fwd = await PortForwarder.start({
        netnsPath: netns,
        usernsPath: state.usernsPath,
        containerIP: SLIRP_GUEST_IP,
        portMappings: state.portMappings,
        keepClientAddress: options.keepClientAddress,
      });
      recordHelper(call, 'forwarder', fwd);
      await call.save();
    }
  }

  async tearDown(call: DriverCall): Promise<void> {
    await stopHelper(call, 'forwarder');
    await stopHelper(call, 'slirp');
  }
}
