/**
 * `bridge` mode: each network name is either native (a definition in the
 * native networks directory) or CNI (a list in the CNI config directory); the
 * embedded default network is native unless a CNI list of its name exists.
 * The choice is made once, in validate, and kept in the state, so teardown
 * from a fresh process takes the same path whatever changed since.
 */
import { loadConfigDir } from '../cni/config';
import type { CniRuntime } from '../cni/runtime';
import { invalidArgument } from '../errors';
import type { NativeAttachment } from '../addon';
import type { NativeNetworks } from '../native/networks';
import type { SandboxState } from '../runtime/state';
import type { CniDriver } from './cni';
import type { DriverCall, NetworkDriver } from './driver';
import type { NativeDriver } from './native';

export class BridgeDriver implements NetworkDriver {
  readonly name = 'bridge';
  readonly namespace = 'own';
  readonly unprivileged = false;
  readonly accepts = { portMappings: true, staticAddress: true, networkOptions: false };
  readonly #cni: CniDriver;
  readonly #native: NativeDriver;
  readonly #cniRuntime: CniRuntime;
  readonly #nets: NativeNetworks;

  constructor(cni: CniDriver, native: NativeDriver, cniRuntime: CniRuntime, nets: NativeNetworks) {
    this.#cni = cni;
    this.#native = native;
    this.#cniRuntime = cniRuntime;
    this.#nets = nets;
  }

  /** 'native' or 'cni' for a network name. */
  async kindOf(name: string): Promise<'native' | 'cni'> {
    if (this.#nets.has(name)) return 'native';
    const { networks } = await loadConfigDir(this.#cniRuntime.confDir);
    if (networks.some((n) => n.name === name)) return 'cni';
    return name === this.#cniRuntime.defaultNetwork ? 'native' : 'cni';
  }

  async validate(state: SandboxState, requested: { ip?: string; mac?: string }): Promise<void> {
    const names = state.networks.length ? state.networks : [this.#cniRuntime.defaultNetwork];
    const kinds = await Promise.all(names.map((n) => this.kindOf(n)));
    if (new Set(kinds).size > 1) {
      throw invalidArgument('networks', `${names.join(', ')} mix native and CNI networks; a sandbox joins networks of one kind`);
    }
    state.driver = kinds[0];
    if (state.driver === 'native') {
      for (const n of names) if (n === this.#cniRuntime.defaultNetwork) await this.#nets.ensureDefault(n);
    }
    await this.#pick(state).validate(state, requested);
  }

  setUp(call: DriverCall): Promise<void> {
    return this.#pick(call.state).setUp(call);
  }

  setUpWarm(call: DriverCall, attachment: NativeAttachment): Promise<void> {
    return this.#native.setUpWarm(call, attachment);
  }

  tearDown(call: DriverCall): Promise<void> {
    return this.#pick(call.state).tearDown(call);
  }

  restart(call: DriverCall): Promise<void> {
    return this.#pick(call.state).restart!(call);
  }

  #pick(state: SandboxState): NetworkDriver {
    return state.driver === 'native' ? this.#native : this.#cni;
  }
}
