/** The drivers, one per network mode, and how the runtime picks one. */
import type { CniRuntime } from '../cni/runtime';
import type { NetworkMode } from '../runtime/state';
import { CniDriver } from './cni';
import type { NetworkDriver } from './driver';
import { hostDriver } from './host';
import { containerDriver, nsPathDriver } from './joined';
import { noneDriver } from './none';
import { PastaDriver } from './pasta';
import { Slirp4netnsDriver } from './slirp4netns';

export type { NetworkDriver, DriverCall, LiveHandles, LiveHelper } from './driver';

export interface DriverOptions {
  cni: CniRuntime;
  slirpBinary?: string;
  pastaBinary?: string;
}

export class Drivers {
  readonly #cni: CniDriver;
  readonly #slirp: Slirp4netnsDriver;
  readonly #pasta: PastaDriver;

  constructor(opts: DriverOptions) {
    this.#cni = new CniDriver(opts.cni);
    this.#slirp = new Slirp4netnsDriver(opts.slirpBinary);
    this.#pasta = new PastaDriver(opts.pastaBinary);
  }

  /** The driver of a (checked) network mode. */
  forMode(mode: NetworkMode): NetworkDriver {
    if (mode === 'bridge') return this.#cni;
    if (mode === 'slirp4netns') return this.#slirp;
    if (mode === 'pasta') return this.#pasta;
    if (mode === 'none') return noneDriver;
    if (mode === 'host') return hostDriver;
    return mode.startsWith('ns:') ? nsPathDriver : containerDriver;
  }
}
