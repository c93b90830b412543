/**
 * slirp4netns network options as Podman accepts them (`--network
 * slirp4netns:opt=value,...`). Podman 2.x split on '=' and indexed parts[1], so
 * an option without '=' crashed it; here every malformed or unknown option is
 * a typed ERR_SLIRP_OPTION listing the valid ones, raised before any spawn.
 */
import ipaddr from 'ipaddr.js';

import { ErrorCode, PodnetError } from '../errors';

export type PortHandler = 'rootlesskit' | 'slirp4netns';

export interface SlirpOptions {
  /** Who forwards published ports: rootlesskit's port driver (default) or slirp4netns's API. */
  portHandler: PortHandler;
  /** With port_handler=rootlesskit: TCP connections reach the container from the client's address (default true, as rootlesskit's --source-ip-transparent). */
  keepClientAddress: boolean;
  /** Let the namespace reach the host's 127.0.0.1 as 10.0.2.2 (default false). */
  allowHostLoopback: boolean;
  /** tap0's MTU (default 65520, as Podman 2.x). */
  mtu: number;
  /** Network of tap0 (default slirp4netns's 10.0.2.0/24). */
  cidr?: string;
  enableIPv6: boolean;
  /** Host address outbound connections are bound to (IPv4, or IPv6 for --outbound-addr6). */
  outboundAddr?: string;
}

export const DEFAULT_SLIRP_MTU = 65520;

const VALID =
  'port_handler=slirp4netns|rootlesskit, keep_client_address=true|false, allow_host_loopback=true|false, mtu=N (68-65521), cidr=A.B.C.D/N, enable_ipv6=true|false, outbound_addr=IP';

function bad(opt: string, why: string): PodnetError {
  return new PodnetError(ErrorCode.SLIRP_OPTION, `invalid slirp4netns option '${opt}': ${why} (valid: ${VALID})`, {
    details: { option: opt },
  });
}

function bool(opt: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw bad(opt, "expected 'true' or 'false'");
}

/** Parses options such as `['port_handler=slirp4netns', 'mtu=1500']`; a later option overrides an earlier one. */
export function parseSlirpOptions(list: readonly string[] = []): SlirpOptions {
  if (!Array.isArray(list)) throw bad(String(list), 'expected an array of key=value strings');
  const o: SlirpOptions = { portHandler: 'rootlesskit', keepClientAddress: true, allowHostLoopback: false, mtu: DEFAULT_SLIRP_MTU, enableIPv6: false };
  for (const opt of list) {
    if (typeof opt !== 'string') throw bad(String(opt), 'expected a key=value string');
    const eq = opt.indexOf('=');
    if (eq <= 0) throw bad(opt, 'expected key=value');
    const key = opt.slice(0, eq);
    const value = opt.slice(eq + 1);
    switch (key) {
      case 'port_handler':
        if (value !== 'rootlesskit' && value !== 'slirp4netns') throw bad(opt, "expected 'slirp4netns' or 'rootlesskit'");
        o.portHandler = value;
        break;
      case 'keep_client_address':
        o.keepClientAddress = bool(opt, value);
        break;
      case 'allow_host_loopback':
        o.allowHostLoopback = bool(opt, value);
        break;
      case 'enable_ipv6':
        o.enableIPv6 = bool(opt, value);
        break;
      case 'mtu': {
        const n = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
        if (!(n >= 68 && n <= 65521)) throw bad(opt, 'expected an integer from 68 to 65521');
        o.mtu = n;
        break;
      }
      case 'cidr': {
        if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(value)) throw bad(opt, 'expected an IPv4 network such as 10.0.2.0/24');
        const [, len] = ipaddr.IPv4.parseCIDR(value);
        // slirp4netns puts the guest at network + 100, so it accepts /1 to /25.
        if (len < 1 || len > 25) throw bad(opt, 'prefix length must be 1-25');
        const net = ipaddr.IPv4.networkAddressFromCIDR(value).toString();
        if (net !== value.split('/')[0]) throw bad(opt, `not a network address (did you mean ${net}/${len}?)`);
        o.cidr = value;
        break;
      }
      case 'outbound_addr':
        if (!ipaddr.IPv4.isValidFourPartDecimal(value) && !ipaddr.IPv6.isValid(value)) throw bad(opt, 'expected an IP address');
        o.outboundAddr = value;
        break;
      default:
        throw bad(opt, `unknown option '${key}'`);
    }
  }
  return o;
}
