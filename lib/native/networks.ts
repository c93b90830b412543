/**
 * Native networks on disk and in the kernel: create (validated, checked for
 * overlap with every other network, written atomically, base rules ensured),
 * remove, list, and a sandbox's attach/detach/check through the engine.
 */
import { readFileSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { ErrorCode, PodnetError, fromNative } from '../errors';
import { writeFileAtomic } from '../atomic';
import { native, type NativeAttachRequest, type NativeAttachment, type NativeEngineConfig, type NativePortMapping } from '../addon';
import { checkName } from '../validate';
import { buildNativeNetwork, checkNoOverlap, type NativeNetworkDef, type NativeNetworkOptions } from './network';

export const DEFAULT_NATIVE_NETWORKS_DIR = '/etc/podnet/networks';
export const DEFAULT_NATIVE_STATE_DIR = '/var/lib/podnet';

/** The embedded default network: 10.89.16.0/20 holds 4093 sandboxes and stays clear of 10.89.0.0/24 (the old CNI default). */
export function defaultNativeNetworkOptions(name: string): NativeNetworkOptions {
  return { name, subnet: '10.89.16.0/20', gateway: '10.89.16.1' };
}

export class NativeNetworks {
  readonly config: NativeEngineConfig;

  constructor(config: Partial<NativeEngineConfig> = {}) {
    this.config = {
      networksDir: config.networksDir ?? DEFAULT_NATIVE_NETWORKS_DIR,
      stateDir: config.stateDir ?? DEFAULT_NATIVE_STATE_DIR,
    };
  }

  private file(name: string): string {
    return path.join(this.config.networksDir, `${name}.json`);
  }

  /** Every native network definition (unreadable files are skipped). */
  list(): NativeNetworkDef[] {
    let names: string[];
    try {
      names = readdirSync(this.config.networksDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: NativeNetworkDef[] = [];
    for (const f of names.sort()) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      try {
        out.push(JSON.parse(readFileSync(path.join(this.config.networksDir, f), 'utf8')) as NativeNetworkDef);
      } catch {
        /* a half-written or foreign file: not a network */
      }
    }
    return out;
  }

  get(name: string): NativeNetworkDef | undefined {
    checkName('network name', name);
    try {
      return JSON.parse(readFileSync(this.file(name), 'utf8')) as NativeNetworkDef;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PodnetError(ErrorCode.STATE_CORRUPT, `cannot read native network '${name}': ${(e as Error).message}`, { cause: e });
    }
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /**
   * Creates a network. `others` are other drivers' networks (name -> subnets)
   * that must not share a name or overlap. Everything is checked before the
   * file is written; if the base rules cannot be written the file goes again.
   */
  async create(opts: NativeNetworkOptions, others: Map<string, string[]> = new Map()): Promise<NativeNetworkDef> {
    const def = buildNativeNetwork(opts);
    if (others.has(def.name) || this.has(def.name)) {
      throw new PodnetError(ErrorCode.NATIVE_NETWORK_EXISTS, `network '${def.name}' already exists`);
    }
    const taken = new Map(others);
    for (const n of this.list())
      taken.set(
        n.name,
        n.subnets.map((s) => s.subnet),
      );
    checkNoOverlap(def, taken);
    try {
      writeFileAtomic(this.file(def.name), JSON.stringify(def, null, 2) + '\n', { mode: 0o644, dirMode: 0o755, exclusive: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PodnetError(ErrorCode.NATIVE_NETWORK_EXISTS, `network '${def.name}' already exists`);
      throw fromNative(e, `create network '${def.name}'`);
    }
    try {
      await native.nativeEnsureNetwork(this.config, def.name);
    } catch (e) {
      unlinkSync(this.file(def.name));
      throw fromNative(e, `create network '${def.name}'`);
    }
    return def;
  }

  /** Removes a network; ERR_NATIVE_NETWORK_IN_USE while sandboxes are attached unless `force`. */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    if (!this.has(name)) throw new PodnetError(ErrorCode.NATIVE_NETWORK_NOT_FOUND, `no native network '${name}'`);
    const attached = await this.attachments(name);
    if (attached.length > 0 && !opts.force) {
      throw new PodnetError(ErrorCode.NATIVE_NETWORK_IN_USE, `network '${name}' is used by ${attached.map((a) => a.containerId).join(', ')}`);
    }
    for (const a of attached) await this.detach(name, a.containerId, a.ifname);
    try {
      await native.nativeRemoveNetwork(this.config, name);
    } catch (e) {
      throw fromNative(e, `remove network '${name}'`);
    }
    unlinkSync(this.file(name));
  }

  /** Creates the embedded default network if `name` is it and no definition exists yet (another process may win the race). */
  async ensureDefault(name: string): Promise<void> {
    if (this.has(name)) return;
    try {
      await this.create(defaultNativeNetworkOptions(name));
    } catch (e) {
      if ((e as PodnetError).code !== ErrorCode.NATIVE_NETWORK_EXISTS) throw e;
    }
  }

  async attach(req: NativeAttachRequest): Promise<NativeAttachment> {
    try {
      return await native.nativeAttach(this.config, req);
    } catch (e) {
      throw fromNative(e, `attach ${req.containerId} to network '${req.network}'`);
    }
  }

  /** Publishes more ports for an existing attachment (ERR_NATIVE_PORT_IN_USE as attach); detach removes them with the rest. */
  async addPorts(network: string, containerId: string, ifname: string, ports: NativePortMapping[]): Promise<NativeAttachment> {
    try {
      return await native.nativeAddPorts(this.config, network, containerId, ifname, ports);
    } catch (e) {
      throw fromNative(e, `publish ports of ${containerId} on network '${network}'`);
    }
  }

  /** Every owner holding an address or an attachment record on `network`. */
  async owners(network: string): Promise<{ containerId: string; ifname: string }[]> {
    try {
      return await native.nativeOwners(this.config, network);
    } catch (e) {
      throw fromNative(e, `list owners on network '${network}'`);
    }
  }

  /** `opts.namespaceGoes`: the caller removes the namespace next, and the veth goes with it (no wait for the link deletion). */
  async detach(network: string, containerId: string, ifname: string, netnsPath?: string, opts: { namespaceGoes?: boolean } = {}): Promise<void> {
    try {
      await native.nativeDetach(this.config, network, containerId, ifname, netnsPath, opts.namespaceGoes === true);
    } catch (e) {
      throw fromNative(e, `detach ${containerId} from network '${network}'`);
    }
  }

  async check(network: string, containerId: string, ifname: string, netnsPath?: string): Promise<void> {
    try {
      await native.nativeCheck(this.config, network, containerId, ifname, netnsPath);
    } catch (e) {
      throw fromNative(e, `check ${containerId} on network '${network}'`);
    }
  }

  async attachments(network: string): Promise<NativeAttachment[]> {
    try {
      return await native.nativeAttachments(this.config, network);
    } catch (e) {
      throw fromNative(e, `list attachments of network '${network}'`);
    }
  }

  /** Releases what owners not in `live` hold on `network` (only owners whose id starts with `onlyPrefix`, when given). */
  async gc(
    network: string,
    live: { containerId: string; ifname: string }[],
    onlyPrefix?: string,
  ): Promise<{ leases: number; elements: number; links: number }> {
    try {
      return await native.nativeGc(this.config, network, live, onlyPrefix);
    } catch (e) {
      throw fromNative(e, `gc network '${network}'`);
    }
  }
}
