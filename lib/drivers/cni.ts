/**
 * `bridge` on CNI networks: the network lists in the CNI config directory (or
 * the embedded default), run plugin by plugin as libcni does, through the
 * CNI runtime (lib/cni). Ports go through the portmap plugin.
 */
import type { CniRuntime } from '../cni/runtime';
import type { SandboxState } from '../runtime/state';
import type { DriverCall, NetworkDriver } from './driver';

export class CniDriver implements NetworkDriver {
  readonly name = 'bridge';
  readonly namespace = 'own';
  readonly unprivileged = false;
  readonly accepts = { portMappings: true, staticAddress: true, networkOptions: false };
  readonly #cni: CniRuntime;

  constructor(cni: CniRuntime) {
    this.#cni = cni;
  }

  /** Networks, plugins, addresses, MACs and ports, all checked before the runtime makes anything. */
  async validate(state: SandboxState, requested: { ip?: string; mac?: string }): Promise<void> {
    const { netnsPath: _, ...spec } = pod(state);
    await this.#cni.validatePod({ ...spec, portMappings: state.portMappings, ip: requested.ip, mac: requested.mac });
    // The static ones apply again at the next restart: they must be good too.
    if (requested.ip !== state.staticIP || requested.mac !== state.staticMAC)
      await this.#cni.validatePod({ ...spec, ip: state.staticIP, mac: state.staticMAC });
  }

  async setUp({ state, requested, save }: DriverCall): Promise<void> {
    state.results = await this.#cni.setUpPod({ ...pod(state), portMappings: state.portMappings, ip: requested.ip, mac: requested.mac });
    // hostPort 0 became a real port: CNI reports the mappings back on the first network.
    state.portMappings = state.results[0]?.portMappings ?? state.portMappings;
    await save();
  }

  async tearDown({ state, forced }: DriverCall): Promise<void> {
    if (!state.netnsPath) return;
    const report = await this.#cni.tearDownPod({ ...pod(state), force: forced !== undefined });
    forced?.notUndone.push(...report.notUndone);
  }

  async restart(call: DriverCall): Promise<void> {
    await this.#cni.tearDownPod(pod(call.state));
    call.state.results = [];
    await call.save(); // if set-up fails, the state says no network rather than stale results
    await this.setUp(call);
  }
}

/** The pod as CNI sees it: the same name at setup and teardown (Podman's teardown passed another; see lib/runtime/state). */
function pod(state: SandboxState) {
  return { id: state.id, name: state.cniPodName, netnsPath: state.netnsPath!, networks: state.networks.length ? state.networks : undefined };
}
