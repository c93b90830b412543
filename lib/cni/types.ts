/**
 * CNI data types (spec 1.0, and the 0.3.x/0.4.0 results plugins may return,
 * normalized to this shape). Shared by the CNI runtime and inspect.
 */
import type { PortProtocol } from '../types';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** Absent for host-side interfaces, the netns path for the container's. */
  sandbox?: string;
}

export interface CniIPConfig {
  /** CIDR, e.g. "10.89.0.5/24" or "fd00::5/64". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
  /** Only in 0.3.x/0.4.0 results: "4" or "6". Absent in 1.0 (family from the address). */
  version?: '4' | '6';
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A plugin's (or a whole list's) ADD result. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: CniDNS;
}

/** The `portMappings` capability entry a plugin receives (one port, one protocol). */
export interface CniPortMapEntry {
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
  hostIP?: string;
}
