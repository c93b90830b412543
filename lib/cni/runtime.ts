/**
 * The CNI runtime: network lists from a config directory or the embedded
 * default, network create and remove, and the pod operations of pod.ts over
 * the plugin runner of libcni.ts (libcni + ocicni, as Podman used them).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';

import { sweepTemp, writeFileAtomic } from '../atomic';
import { runCommand } from '../command';
import { ErrorCode, PodnetError, errorMessage, invalidArgument } from '../errors';
import { checkName, checkPath } from '../validate';
import { DEFAULT_CACHE_DIR, listCacheByNetwork } from './cache';
import {
  type BridgeNetworkOptions,
  type CniNetworkConfig,
  DEFAULT_CONF_DIR,
  DEFAULT_NETWORK_NAME,
  bridgeOf,
  buildBridgeNetwork,
  defaultNetworkOptions,
  loadConfigDir,
} from './config';
import { DEFAULT_BIN_DIRS } from './exec';
import { PluginRunner } from './libcni';
import { PodNetworks, type PodNetworkResult, type PodNetworkSpec, type PodTeardownReport, type PodTeardownSpec } from './pod';
import { overlaps, subnetsOf } from './subnets';

export type { PodNetworkAttachment, PodNetworkResult, PodNetworkSpec, PodTeardownReport, PodTeardownSpec } from './pod';

export interface CniRuntimeOptions {
  /** Network configuration directory; default /etc/cni/net.d. */
  confDir?: string;
  /** Plugin directories searched first (then $CNI_PATH, /usr/lib/cni, /opt/cni/bin). */
  binDirs?: string[];
  /** libcni cache directory (results go to `<cacheDir>/results`); default /var/lib/cni. */
  cacheDir?: string;
  /** The network used when a pod names none; default `podnet` (embedded unless configured). */
  defaultNetwork?: string;
  /** A plugin running longer is killed (SIGKILL); default 60000. */
  pluginTimeoutMs?: number;
}

export class CniRuntime {
  readonly confDir: string;
  readonly binDirs: string[];
  readonly cacheDir: string;
  readonly defaultNetwork: string;
  readonly pluginTimeoutMs: number;
  readonly #pods: PodNetworks;
  #embedded?: CniNetworkConfig;

  constructor(opts: CniRuntimeOptions = {}) {
    this.confDir = checkPath('confDir', opts.confDir ?? DEFAULT_CONF_DIR);
    this.cacheDir = checkPath('cacheDir', opts.cacheDir ?? DEFAULT_CACHE_DIR);
    if (opts.binDirs !== undefined && (!Array.isArray(opts.binDirs) || opts.binDirs.some((d) => typeof d !== 'string'))) {
      throw invalidArgument('binDirs', 'expected an array of directories');
    }
    const envPath = (process.env.CNI_PATH ?? '').split(':').filter(Boolean);
    this.binDirs = [...new Set([...(opts.binDirs ?? []).map((d) => checkPath('binDirs entry', d)), ...envPath, ...DEFAULT_BIN_DIRS])];
    this.defaultNetwork = opts.defaultNetwork ?? DEFAULT_NETWORK_NAME;
    checkName('defaultNetwork', this.defaultNetwork);
    this.pluginTimeoutMs = opts.pluginTimeoutMs ?? 60000;
    if (!Number.isInteger(this.pluginTimeoutMs) || this.pluginTimeoutMs <= 0) {
      throw invalidArgument('pluginTimeoutMs', `'${String(opts.pluginTimeoutMs)}' is not a positive integer`);
    }
    this.#pods = new PodNetworks({
      runner: new PluginRunner(this.binDirs, this.pluginTimeoutMs),
      cacheDir: this.cacheDir,
      defaultNetwork: this.defaultNetwork,
      networks: () => this.networks(),
      lookup: (name, nets) => this.#lookup(name, nets),
    });
  }

  // ---- networks ----

  #embeddedDefault(): CniNetworkConfig {
    this.#embedded ??= buildBridgeNetwork(defaultNetworkOptions());
    return this.#embedded;
  }

  /** The configured networks (file-name order) and the embedded default unless one of its name is configured. */
  async networks(): Promise<CniNetworkConfig[]> {
    const { networks } = await loadConfigDir(this.confDir);
    return networks.some((n) => n.name === DEFAULT_NETWORK_NAME) ? networks : [...networks, this.#embeddedDefault()];
  }

  /** The files in confDir that could not be loaded, one ERR_CNI_CONFIG each (naming the file and field). */
  async configErrors(): Promise<PodnetError[]> {
    return (await loadConfigDir(this.confDir)).errors;
  }

  /** The network `name`; when a file of that name could not be loaded, its ERR_CNI_CONFIG says why. */
  async #lookup(name: string, nets: CniNetworkConfig[]): Promise<CniNetworkConfig> {
    const found = nets.find((n) => n.name === name);
    if (found) return found;
    const broken = (await this.configErrors()).find((e) => e.path && path.basename(e.path).replace(/\.(conflist|conf|json)$/, '') === name);
    if (broken) throw broken;
    throw new PodnetError(ErrorCode.CNI_NETWORK_NOT_FOUND, `CNI network '${name}' not found in ${this.confDir}`, { details: { network: name } });
  }

  /** Writes `<confDir>/<name>.conflist` for a bridge network; refuses a name, bridge or subnet already in use. */
  async createNetwork(opts: BridgeNetworkOptions): Promise<CniNetworkConfig> {
    const net = buildBridgeNetwork(opts);
    const existing = (await loadConfigDir(this.confDir)).networks;
    const clash = (why: string) =>
      new PodnetError(ErrorCode.CNI_NETWORK_EXISTS, `cannot create CNI network '${net.name}': ${why}`, { details: { network: net.name } });
    if (existing.some((n) => n.name === net.name)) throw clash('a network of that name exists');
    const others = existing.some((n) => n.name === DEFAULT_NETWORK_NAME) ? existing : [...existing, this.#embeddedDefault()];
    for (const o of others) {
      if (bridgeOf(o) === opts.bridge) throw clash(`bridge '${opts.bridge}' is used by network '${o.name}'`);
      const theirs = subnetsOf(o);
      for (const mine of subnetsOf(net)) {
        const hit = theirs.find((t) => overlaps(mine, t));
        if (hit) throw clash(`subnet ${mine} overlaps ${hit} of network '${o.name}'`);
      }
    }
    const file = path.join(this.confDir, `${net.name}.conflist`);
    try {
      writeFileAtomic(file, JSON.stringify(JSON.parse(net.bytes.toString()), null, 2) + '\n', { mode: 0o644, dirMode: 0o755, exclusive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw clash(`'${file}' exists`);
      throw new PodnetError((err as NodeJS.ErrnoException).code ?? 'EIO', `write '${file}': ${errorMessage(err)}`, { path: file, cause: err });
    }
    net.file = file;
    return net;
  }

  /**
   * Removes a configured network: its file, its host-local leases directory and
   * its bridge. Refused while pods are attached (per the cache) unless `force`.
   */
  async removeNetwork(name: string, opts: { force?: boolean } = {}): Promise<void> {
    checkName('network name', name);
    const net = (await loadConfigDir(this.confDir)).networks.find((n) => n.name === name);
    if (!net?.file)
      throw new PodnetError(ErrorCode.CNI_NETWORK_NOT_FOUND, `CNI network '${name}' not found in ${this.confDir}`, { details: { network: name } });
    const users = await listCacheByNetwork(this.cacheDir, name);
    if (users.length && !opts.force) {
      throw new PodnetError(ErrorCode.CNI_NETWORK_IN_USE, `CNI network '${name}' is in use by ${users.map((u) => u.containerId).join(', ')}`, {
        details: { network: name, containers: users.map((u) => u.containerId) },
      });
    }
    await rm(net.file, { force: true });
    for (const p of net.plugins) {
      const ipam = p.ipam as { type?: string; dataDir?: string } | undefined;
      if (ipam?.type === 'host-local') await rm(path.join(ipam.dataDir ?? '/var/lib/cni/networks', name), { recursive: true, force: true });
    }
    const bridge = bridgeOf(net);
    if (bridge && existsSync(`/sys/class/net/${bridge}`)) {
      const r = await runCommand('ip', ['link', 'delete', bridge]).catch((e: Error) => ({ code: -1, stderr: e.message }));
      if (r.code !== 0 && existsSync(`/sys/class/net/${bridge}`)) {
        throw new PodnetError(ErrorCode.CNI_TEARDOWN, `remove bridge '${bridge}' of network '${name}': ${r.stderr.trim()}`, {
          details: { network: name, bridge },
        });
      }
    }
  }

  /** Removes temp files of cache writes that a crash interrupted. */
  sweepTemp(): void {
    sweepTemp(path.join(this.cacheDir, 'results'));
  }

  // ---- pods (pod.ts) ----

  /** Every input of a pod checked (networks, addresses, ports, plugins) without making anything. */
  async validatePod(spec: Omit<PodNetworkSpec, 'netnsPath'>): Promise<void> {
    await this.#pods.validate(spec);
  }

  /** Attaches a pod to its networks in order; on failure everything done is undone. */
  setUpPod(spec: PodNetworkSpec): Promise<PodNetworkResult[]> {
    return this.#pods.setUp(spec);
  }

  /** Detaches a pod (DEL from the cache, reverse order); with `force`, reports instead of throwing. */
  tearDownPod(spec: PodTeardownSpec): Promise<PodTeardownReport> {
    return this.#pods.tearDown(spec);
  }

  /** CHECK for every network of the pod against its cached result. */
  checkPod(spec: PodTeardownSpec): Promise<void> {
    return this.#pods.check(spec);
  }

  /** Every attachment in the cache: container id, network, interface and the namespace it was made in. */
  cachedAttachments(): Promise<{ id: string; network: string; ifname: string; netnsPath: string }[]> {
    return this.#pods.cachedAttachments();
  }
}
