/** The drivers, one per network mode, and how the runtime picks one. */
import type { CniRuntime } from '../cni/runtime';
import type { NativeNetworks } from '../native/networks';
import type { NetworkMode } from '../runtime/state';
import { BridgeDriver } from './bridge';
import { CniDriver } from './cni';
import type { NetworkDriver } from './driver';
import { hostDriver } from './host';
import { containerDriver, nsPathDriver } from './joined';
import { NativeDriver } from './native';
import { noneDriver } from './none';
import { PastaDriver } from './pasta';
import { Slirp4netnsDriver } from './slirp4netns';

export type { NetworkDriver, DriverCall, LiveHandles, LiveHelper } from './driver';

export interface DriverOptions {
  cni: CniRuntime;
  native: NativeNetworks;
  /** Prefix of the native engine's container ids: unique per runtime state dir. */
  nativeIdPrefix: string;
  slirpBinary?: string;
  pastaBinary?: string;
  /** Where pasta's readiness FIFOs are made (gc sweeps those of killed owners). */
  pastaTmpDir?: string;
}

export class Drivers {
  readonly bridge: BridgeDriver;
  readonly native: NativeDriver;
  readonly #slirp: Slirp4netnsDriver;
  readonly #pasta: PastaDriver;

  constructor(opts: DriverOptions) {
    this.native = new NativeDriver(opts.native, opts.nativeIdPrefix, opts.cni.defaultNetwork);
    this.bridge = new BridgeDriver(new CniDriver(opts.cni), this.native, opts.cni, opts.native);
    this.#slirp = new Slirp4netnsDriver(opts.slirpBinary);
    this.#pasta = new PastaDriver(opts.pastaBinary, opts.pastaTmpDir);
  }

  /** The driver of a (checked) network mode. */
  forMode(mode: NetworkMode): NetworkDriver {
    if (mode === 'bridge') return this.bridge;
    if (mode === 'slirp4netns') return this.#slirp;
    if (mode === 'pasta') return this.#pasta;
    if (mode === 'none') return noneDriver;
    if (mode === 'host') return hostDriver;
    return mode.startsWith('ns:') ? nsPathDriver : containerDriver;
  }
}
