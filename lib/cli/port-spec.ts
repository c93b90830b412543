/** Parses `-p [hostIP:]hostPort[-end]:containerPort[-end][/proto]` as podman run does. */
import { invalidArgument } from '../errors';
import { isIp } from '../validate';
import type { PortMapping } from '../types';

const RANGE = /^(\d+)(?:-(\d+))?$/;

function parseRange(what: string, text: string, spec: string): { start: number; count: number } {
  const m = RANGE.exec(text);
  if (!m) throw invalidArgument('port mapping', `'${spec}': ${what} '${text}' is not a port or range`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 0 || end > 65535 || end < start) throw invalidArgument('port mapping', `'${spec}': ${what} '${text}' is out of 0-65535`);
  return { start, count: end - start + 1 };
}

export function parsePortSpec(spec: string): PortMapping {
  let rest = spec;
  let protocol: string | undefined;
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    protocol = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
    if (!/^(tcp|udp|sctp)(,(tcp|udp|sctp))*$/.test(protocol))
      throw invalidArgument('port mapping', `'${spec}': protocol '${protocol}' is not tcp, udp or sctp`);
  }
  let hostIP: string | undefined;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6) {
    hostIP = v6[1];
    rest = v6[2];
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIP = parts.shift();
  if (parts.length !== 2) throw invalidArgument('port mapping', `'${spec}' is not [hostIP:]hostPort:containerPort[/proto]`);
  if (hostIP !== undefined && !isIp(hostIP)) throw invalidArgument('port mapping', `'${spec}': host IP '${hostIP}' is not an IP address`);
  const host = parseRange('host port', parts[0], spec);
  const ctr = parseRange('container port', parts[1], spec);
  if (ctr.start === 0) throw invalidArgument('port mapping', `'${spec}': container port 0`);
  if (host.count !== ctr.count) throw invalidArgument('port mapping', `'${spec}': host and container ranges differ in length`);
  return {
    ...(hostIP ? { hostIP } : {}),
    hostPort: host.start,
    containerPort: ctr.start,
    ...(protocol ? { protocol } : {}),
    ...(host.count > 1 ? { range: host.count } : {}),
  };
}
