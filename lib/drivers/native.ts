/**
 * `bridge` on native networks: the whole attachment in-process through the
 * native engine (csrc/core/native: routed veth, nftables elements, IPAM on
 * disk), no plugin or firewall process per sandbox. Results are recorded in
 * CNI's shape so inspect (lib/inspect) reads them like a CNI network's.
 */
import ipaddr from 'ipaddr.js';

import type { CniResult } from '../cni/types';
import { ErrorCode, PodnetError, invalidArgument } from '../errors';
import type { NativeAttachment, NativePortMapping } from '../addon';
import type { NativeNetworks } from '../native/networks';
import { checkPortMappings, resolveHostPorts, toPortMappings } from '../ports';
import type { SandboxState } from '../runtime/state';
import type { PortMapping, PortProtocol } from '../types';
import { checkIp } from '../validate';
import type { DriverCall, NetworkDriver } from './driver';

export class NativeDriver implements NetworkDriver {
  readonly name = 'bridge';
  readonly namespace = 'own';
  readonly unprivileged = false;
  readonly accepts = { portMappings: true, staticAddress: true, networkOptions: false };
  readonly #nets: NativeNetworks;
  readonly #idPrefix: string;
  readonly #defaultNetwork: string;

  /**
   * `idPrefix` makes the engine's container ids unique per runtime state dir
   * (and lets gc collect only its own); `defaultNetwork` serves a sandbox that
   * names no network (inspect then reports it at the top level, as Podman does).
   */
  constructor(nets: NativeNetworks, idPrefix: string, defaultNetwork: string) {
    this.#nets = nets;
    this.#idPrefix = idPrefix;
    this.#defaultNetwork = defaultNetwork;
  }

  /** The networks a sandbox is on. */
  networksOf(state: SandboxState): string[] {
    return state.networks.length ? state.networks : [this.#defaultNetwork];
  }

  get idPrefix(): string {
    return this.#idPrefix;
  }

  async validate(state: SandboxState, requested: { ip?: string; mac?: string } = {}): Promise<void> {
    for (const n of this.networksOf(state)) {
      if (!this.#nets.has(n)) throw new PodnetError(ErrorCode.NATIVE_NETWORK_NOT_FOUND, `no native network '${n}'`);
    }
    // A static address must be an address inside a subnet of the first network: refused here, before any namespace exists.
    for (const [what, v] of [
      ['staticIP', state.staticIP],
      ['requestedIP', requested.ip],
    ] as const) {
      if (v === undefined) continue;
      const subnets = this.#nets.get(this.networksOf(state)[0])!.subnets.map((s) => ipaddr.parseCIDR(s.subnet));
      const ip = ipaddr.parse(checkIp(what, v));
      if (!subnets.some(([a, bits]) => a.kind() === ip.kind() && ip.match(a, bits))) {
        throw invalidArgument(what, `${v} is outside the subnets of network '${this.networksOf(state)[0]}'`);
      }
    }
    state.portMappings = toPortMappings(await resolveHostPorts(checkPortMappings(state.portMappings)));
  }

  async setUp(call: DriverCall): Promise<void> {
    const { state, requested } = call;
    state.results = [];
    for (const [i, network] of this.networksOf(state).entries()) {
      const first = i === 0;
      const a = await this.#nets.attach({
        network,
        containerId: this.containerId(state),
        ifname: `eth${i}`,
        netnsPath: state.netnsPath!,
        staticIps: first && requested.ip ? [requested.ip] : [],
        mac: first ? requested.mac : undefined,
        ports: first ? toNativePorts(state.portMappings) : [],
      });
      state.results.push({ network, ifname: a.ifname, result: toCniResult(a, state.netnsPath!), ...(first ? { portMappings: state.portMappings } : {}) });
      await call.save();
    }
  }

  /**
   * A sandbox from a warm entry of the pool of its one network: the
   * attachment exists (made with no ports, under the entry's id, which the
   * state already names, so teardown finds it); only the request's ports are
   * published. The caller writes the results with the 'ready' state.
   */
  async setUpWarm(call: DriverCall, a: NativeAttachment): Promise<void> {
    const { state } = call;
    const ports = toNativePorts(state.portMappings);
    const got = ports.length ? await this.#nets.addPorts(a.network, a.containerId, a.ifname, ports) : a;
    state.results = [{ network: a.network, ifname: a.ifname, result: toCniResult(got, state.netnsPath!), portMappings: state.portMappings }];
  }

  /** The engine's container id of a sandbox's attachments. */
  containerId(state: SandboxState): string {
    return state.nativeContainerId ?? this.#idPrefix + state.id;
  }

  async tearDown({ state }: DriverCall): Promise<void> {
    // The link is deleted here even though the runtime removes the namespace
    // next: any process still holding the namespace (a socket, a stats
    // handle) would keep the pair and its host route alive.
    await this.#detachAll(state, false);
  }

  async #detachAll(state: SandboxState, namespaceGoes: boolean): Promise<void> {
    const errors: Error[] = [];
    for (const [i, network] of this.networksOf(state).entries()) {
      await this.#nets.detach(network, this.containerId(state), `eth${i}`, state.netnsPath, { namespaceGoes }).catch((e: Error) => errors.push(e));
    }
    if (errors.length) throw errors[0];
  }

  async restart(call: DriverCall): Promise<void> {
    await this.#detachAll(call.state, false);
    call.state.results = [];
    await call.save();
    await this.setUp(call);
  }
}

/** One engine mapping per protocol ("tcp,udp" is two). */
export function toNativePorts(maps: PortMapping[]): NativePortMapping[] {
  return maps.flatMap((m) =>
    (m.protocol ?? 'tcp').split(',').map((p) => ({
      protocol: p.trim() as PortProtocol,
      hostIp: m.hostIP ?? '',
      hostPort: m.hostPort,
      containerPort: m.containerPort,
      range: m.range ?? 1,
    })),
  );
}

/** An attachment as a CNI 1.0.0 result: the host end, then the sandbox's interface; addresses on the latter. */
export function toCniResult(a: NativeAttachment, netnsPath: string): CniResult {
  return {
    cniVersion: '1.0.0',
    interfaces: [
      { name: a.hostIfname, mac: a.hostMac },
      { name: a.ifname, mac: a.mac, sandbox: netnsPath },
    ],
    ips: a.ips.map((ip) => ({ address: ip.address, gateway: ip.gateway, interface: 1 })),
    routes: a.routes.map((r) => ({ dst: r.dst, gw: r.gw })),
  };
}
