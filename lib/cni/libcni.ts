/**
 * The libcni part of the CNI runtime: one network list run for one
 * attachment. Plugin lookup with the VERSION answer cached per binary, ADD
 * and CHECK in order with prevResult chaining, DEL in reverse, and each
 * plugin's stdin built as the spec says (CNI spec, "Section 3: Execution of
 * Network Configurations").
 */
import { ErrorCode, PodnetError } from '../errors';
import type { CniNetworkConfig, CniPluginConf } from './config';
import { type FoundPlugin, execPlugin, findPlugin, outputError, parseOutput } from './exec';
import { ResultFormatError, compareVersions, convertResult, parseResult } from './result';
import type { CniResult } from './types';

/** One network of one pod as a list run needs it. */
export interface ListAttachment {
  net: CniNetworkConfig;
  ifname: string;
  capabilityArgs: Record<string, unknown>;
  /** The plugin binaries, once resolved (and checked to speak the list's version). */
  bins?: string[];
}

/** libcni's RuntimeConf: what every plugin of the run sees in its environment. */
export interface RuntimeConf {
  containerId: string;
  /** Empty when the namespace is gone (DEL only; the spec allows it). */
  netns: string;
  /** CNI_ARGS, `K=V;K=V`. */
  cniArgs: string;
}

export class PluginRunner {
  /** Plugin path + identity -> supportedVersions (VERSION is asked once per binary). */
  readonly #versions = new Map<string, Promise<string[]>>();

  constructor(
    readonly binDirs: string[],
    readonly timeoutMs: number,
  ) {}

  /** The plugin binaries of a list, each checked to speak the list's version. */
  async plugins(net: CniNetworkConfig): Promise<string[]> {
    return Promise.all(
      net.plugins.map(async (p) => {
        const bin = await findPlugin(p.type, this.binDirs);
        const versions = await this.#supportedVersions(bin, net);
        if (!versions.includes(net.cniVersion)) {
          throw new PodnetError(
            ErrorCode.CNI_VERSION,
            `CNI plugin '${p.type}' of network '${net.name}' does not support version ${net.cniVersion} (supports ${versions.join(', ')})`,
            {
              details: { plugin: p.type, network: net.name, cniVersion: net.cniVersion, supported: versions },
            },
          );
        }
        return bin.path;
      }),
    );
  }

  /** VERSION is asked once per binary (until it is replaced). */
  #supportedVersions(bin: FoundPlugin, net: CniNetworkConfig): Promise<string[]> {
    let p = this.#versions.get(bin.key);
    if (!p) {
      const call = { command: 'VERSION' as const, plugin: bin.path, network: net.name, path: this.binDirs.join(':'), timeoutMs: this.timeoutMs };
      p = execPlugin({ ...call, stdin: JSON.stringify({ cniVersion: net.cniVersion }) }).then((out) => {
        const v = parseOutput(out, call) as { supportedVersions?: unknown };
        if (!Array.isArray(v?.supportedVersions) || v.supportedVersions.some((x) => typeof x !== 'string')) {
          throw outputError(call, 'VERSION output has no supportedVersions array');
        }
        return v.supportedVersions as string[];
      });
      this.#versions.set(bin.key, p);
      p.catch(() => this.#versions.delete(bin.key));
    }
    return p;
  }

  #base(att: ListAttachment, rt: RuntimeConf) {
    return {
      network: att.net.name,
      containerId: rt.containerId,
      netns: rt.netns,
      ifname: att.ifname,
      args: rt.cniArgs,
      path: this.binDirs.join(':'),
      timeoutMs: this.timeoutMs,
    };
  }

  /**
   * ADD over the list in order. `persist` gets each plugin's result before the
   * next plugin runs: libcni caches only after the last plugin (cacheAdd at
   * the end of AddNetworkList), so an owner killed half-way leaves a DEL
   * without prevResult, and the firewall plugin then cannot find its rules.
   */
  async add(att: ListAttachment, rt: RuntimeConf, persist: (r: CniResult) => Promise<void>): Promise<CniResult> {
    const { net } = att;
    const bins = att.bins ?? (await this.plugins(net));
    let result: CniResult | undefined;
    for (let i = 0; i < net.plugins.length; i++) {
      const call = { ...this.#base(att, rt), command: 'ADD' as const, plugin: bins[i], stdin: pluginStdin(net.plugins[i], net, att.capabilityArgs, result) };
      const out = await execPlugin(call);
      try {
        result = parseResult(parseOutput(out, call));
      } catch (e) {
        if (e instanceof ResultFormatError) throw outputError(call, e.message);
        throw e;
      }
      await persist(result);
    }
    return result!;
  }

  /**
   * DEL over the list in reverse, every plugin even after errors (a plugin no
   * longer installed is one error, the others still run). No VERSION call: DEL
   * must work for whatever ADD once ran. Throws the first error.
   */
  async del(att: ListAttachment, rt: RuntimeConf, prevResult?: CniResult): Promise<void> {
    const { net } = att;
    // libcni passes prevResult on DEL from 0.4.0 on; the firewall plugin needs it to find its rules.
    const prev = compareVersions(net.cniVersion, '0.4.0') >= 0 ? prevResult : undefined;
    const errors: unknown[] = [];
    for (let i = net.plugins.length - 1; i >= 0; i--) {
      try {
        const plugin = att.bins?.[i] ?? (await findPlugin(net.plugins[i].type, this.binDirs)).path;
        await execPlugin({ ...this.#base(att, rt), command: 'DEL', plugin, stdin: pluginStdin(net.plugins[i], net, att.capabilityArgs, prev) });
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  }

  /** CHECK over the list in order, each plugin with the cached result. */
  async check(att: ListAttachment, rt: RuntimeConf, prevResult: CniResult): Promise<void> {
    const bins = att.bins ?? (await this.plugins(att.net));
    for (let i = 0; i < att.net.plugins.length; i++) {
      await execPlugin({
        ...this.#base(att, rt),
        command: 'CHECK',
        plugin: bins[i],
        stdin: pluginStdin(att.net.plugins[i], att.net, att.capabilityArgs, prevResult),
      });
    }
  }
}

/** A plugin's stdin: its config without `capabilities`, plus name, cniVersion, runtimeConfig, prevResult. */
export function pluginStdin(plugin: CniPluginConf, net: CniNetworkConfig, capabilityArgs: Record<string, unknown>, prevResult?: CniResult): string {
  const { capabilities, ...conf } = plugin;
  const out: Record<string, unknown> = { ...conf, name: net.name, cniVersion: net.cniVersion };
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {})) {
    if (on && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
  }
  if (Object.keys(rc).length) out.runtimeConfig = { ...(conf.runtimeConfig as object | undefined), ...rc };
  if (prevResult) out.prevResult = convertResult(prevResult, net.cniVersion);
  return JSON.stringify(out);
}
