/**
 * Port mappings as callers give them (Podman's PortMapping: ranges, "tcp,udp")
 * expanded to the forwarder's listeners, one per host address, port and
 * protocol. Pure, so bad input is refused before any process starts.
 */
import { invalidArgument } from '../errors';
import { checkPortMappings, toCapabilityEntries } from '../ports';

export interface Listener {
  proto: 'tcp' | 'udp';
  /** Host address to bind, canonical form. */
  ip: string;
  port: number;
  /** Port inside the container. */
  cport: number;
}

export function expandPortMappings(mappings: unknown): Listener[] {
  if (!Array.isArray(mappings) || mappings.length === 0) {
    throw invalidArgument('portMappings', 'expected a non-empty array');
  }
  return toCapabilityEntries(checkPortMappings(mappings)).map((e) => {
    if (e.hostPort === 0) throw invalidArgument('portMappings', `hostPort 0 (any free port) must be resolved before the forwarder starts`);
    if (e.protocol === 'sctp') throw invalidArgument('portMappings', `protocol 'sctp' of host port ${e.hostPort} cannot be forwarded (tcp, udp)`);
    return { proto: e.protocol, ip: e.hostIP ?? '0.0.0.0', port: e.hostPort, cport: e.containerPort };
  });
}
