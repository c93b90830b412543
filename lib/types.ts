/** Types shared by every network mode, as a caller writes them. */

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/**
 * A port mapping as callers give it (Podman's PortMapping): `range` ports
 * starting at hostPort/containerPort map one to one; `protocol` may list
 * several, comma separated ("tcp,udp").
 */
export interface PortMapping {
  hostIP?: string;
  hostPort: number;
  containerPort: number;
  protocol?: string;
  range?: number;
}
