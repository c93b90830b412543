/**
 * Client for the slirp4netns API socket (`--api-socket`). One connection per
 * request: write the JSON, shut down writes (slirp4netns reads to EOF), read
 * the reply to EOF, close on every path. An `error` in the reply is a typed
 * ERR_SLIRP_API naming the request.
 */
import { connect } from 'node:net';
import ipaddr from 'ipaddr.js';

import type { PortMapping } from '../types';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import { checkPortMappings, toCapabilityEntries } from '../ports';
import { checkPort } from '../validate';

export interface HostForward {
  proto?: 'tcp' | 'udp';
  /** Host address to listen on; default 0.0.0.0. */
  hostAddr?: string;
  hostPort: number;
  /** Address in the namespace; default slirp4netns's guest (10.0.2.100 for the default cidr). */
  guestAddr?: string;
  guestPort: number;
}

export interface HostForwardEntry {
  id: number;
  proto: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number;
  guestAddr: string;
  guestPort: number;
}

type Reply = { return?: unknown; error?: { desc?: string } | string; entries?: unknown };

/** Sends one request and returns the parsed reply. */
export function slirpApiRequest(socketPath: string, request: object, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(socketPath);
    const fail = (e: PodnetError) => {
      sock.destroy();
      reject(e);
    };
    sock.setTimeout(timeoutMs, () =>
      fail(new PodnetError(ErrorCode.SLIRP_API, `slirp4netns API '${socketPath}': no reply after ${timeoutMs} ms`, { path: socketPath })),
    );
    sock.on('connect', () => sock.end(JSON.stringify(request)));
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('error', (err: NodeJS.ErrnoException) =>
      fail(
        new PodnetError(err.code ?? ErrorCode.SLIRP_API, `slirp4netns API '${socketPath}': ${err.message}`, {
          path: socketPath,
          syscall: err.syscall,
          errno: err.errno,
          cause: err,
        }),
      ),
    );
    sock.on('end', () => {
      sock.destroy();
      const text = Buffer.concat(chunks).toString();
      try {
        resolve(JSON.parse(text) as Reply);
      } catch {
        reject(new PodnetError(ErrorCode.SLIRP_API, `slirp4netns API '${socketPath}': reply is not JSON: ${text.slice(0, 200)}`, { path: socketPath }));
      }
    });
  });
}

function check(reply: Reply, what: string, socketPath: string): Reply {
  if (reply.error !== undefined) {
    const desc = typeof reply.error === 'string' ? reply.error : (reply.error.desc ?? JSON.stringify(reply.error));
    throw new PodnetError(ErrorCode.SLIRP_API, `slirp4netns ${what}: ${desc}`, { path: socketPath, details: { reply } });
  }
  return reply;
}

function checkV4(what: string, a: unknown): string {
  if (typeof a !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(a)) throw invalidArgument(what, `'${String(a)}' is not an IPv4 address`);
  return a;
}

function describeForward(f: HostForward): string {
  return `${f.proto ?? 'tcp'} ${f.hostAddr ?? '0.0.0.0'}:${f.hostPort} -> ${f.guestAddr ?? ''}:${f.guestPort}`;
}

/** add_hostfwd; returns the forward's id. Inputs are checked before the request. */
export async function addHostForward(socketPath: string, f: HostForward): Promise<number> {
  const proto = f.proto ?? 'tcp';
  if (proto !== 'tcp' && proto !== 'udp') throw invalidArgument('host forward protocol', `'${String(proto)}' is not tcp or udp`);
  const args: Record<string, unknown> = {
    proto,
    host_addr: checkV4('host forward host address', f.hostAddr ?? '0.0.0.0'),
    host_port: checkPort('host forward host port', f.hostPort),
    guest_port: checkPort('host forward guest port', f.guestPort),
  };
  if (f.guestAddr !== undefined) args.guest_addr = checkV4('host forward guest address', f.guestAddr);
  const what = `add_hostfwd ${describeForward(f)}`;
  const r = check(await slirpApiRequest(socketPath, { execute: 'add_hostfwd', arguments: args }), what, socketPath);
  const id = (r.return as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'number') throw new PodnetError(ErrorCode.SLIRP_API, `slirp4netns ${what}: reply has no id`, { path: socketPath, details: { reply: r } });
  return id;
}

/** list_hostfwd (slirp4netns 1.x replies {entries} without a `return` wrapper; both are accepted). */
export async function listHostForwards(socketPath: string): Promise<HostForwardEntry[]> {
  const r = check(await slirpApiRequest(socketPath, { execute: 'list_hostfwd' }), 'list_hostfwd', socketPath);
  const entries = (r.entries ?? (r.return as { entries?: unknown } | undefined)?.entries ?? []) as Array<Record<string, unknown>>;
  return entries.map((e) => ({
    id: Number(e.id),
    proto: e.proto as 'tcp' | 'udp',
    hostAddr: String(e.host_addr),
    hostPort: Number(e.host_port),
    guestAddr: String(e.guest_addr),
    guestPort: Number(e.guest_port),
  }));
}

/** remove_hostfwd by id. */
export async function removeHostForward(socketPath: string, id: number): Promise<void> {
  if (!Number.isInteger(id) || id < 0) throw invalidArgument('host forward id', `'${String(id)}' is not an id`);
  check(await slirpApiRequest(socketPath, { execute: 'remove_hostfwd', arguments: { id } }), `remove_hostfwd id ${id}`, socketPath);
}

/**
 * Host forwards for Podman-style port mappings (Podman 2.x's
 * setupRootlessPortMappingViaSlirp): `range` ports one to one, each protocol
 * of "tcp,udp", host address default 0.0.0.0. slirp4netns forwards IPv4 TCP
 * and UDP only: sctp or an IPv6 host address is refused, naming the mapping.
 */
export function hostForwardsFromPortMappings(mappings: readonly PortMapping[]): HostForward[] {
  return toCapabilityEntries(checkPortMappings(mappings)).map((e) => {
    const what = `port mapping ${e.hostIP ? `${e.hostIP}:` : ''}${e.hostPort}:${e.containerPort}/${e.protocol}`;
    if (e.hostPort === 0) throw invalidArgument(what, 'host port 0 (any free port) must be resolved before forwarding');
    if (e.protocol === 'sctp') throw invalidArgument(what, `protocol 'sctp' cannot be forwarded by slirp4netns (tcp or udp)`);
    const hostAddr = e.hostIP ? checkV4(`${what} host address (slirp4netns forwards IPv4 only)`, e.hostIP) : '0.0.0.0';
    return { proto: e.protocol, hostAddr, hostPort: e.hostPort, guestPort: e.containerPort };
  });
}
