/**
 * Installing podnet's CNI plugin (the `podnet-cni` executable, csrc/cniplugin) where CNI
 * runtimes look for plugins, and a network configuration list that attaches containers to a
 * podnet native network through it. podman's CNI backend, containerd and nerdctl then run
 * it for every container on that network.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { writeFileAtomic } from '../atomic';
import { DEFAULT_CONF_DIR } from '../cni/config';
import { ErrorCode, PodnetError } from '../errors';
import { DEFAULT_NATIVE_NETWORKS_DIR } from '../native/networks';
import { checkName, checkPath } from '../validate';

/** The plugin's type name: the file name runtimes exec. */
export const PLUGIN_TYPE = 'podnet';
/** Where containerd, nerdctl and podman (its last default) look for CNI plugins. */
export const DEFAULT_PLUGIN_DIR = '/opt/cni/bin';

/** Path of the built plugin executable (built by node-gyp with the addon; a prebuild ships it next to the addon). */
export function cniPluginPath(): string {
  const prebuilt = `../../prebuilds/${process.platform}-${process.arch}/podnet-cni`;
  for (const rel of ['../../build/Release/podnet-cni', '../../build/Debug/podnet-cni', prebuilt]) {
    const p = path.join(__dirname, rel);
    if (existsSync(p)) return p;
  }
  throw new PodnetError(ErrorCode.CNI_PLUGIN_NOT_FOUND, 'podnet-cni is not built (run node-gyp rebuild)');
}

export interface InstallCniPluginOptions {
  /** Plugin directory (default /opt/cni/bin). */
  dir?: string;
  /** A podnet native network: also write `<confDir>/<network>.conflist` naming it. */
  network?: string;
  /** Network configuration directory (default /etc/cni/net.d). */
  confDir?: string;
  /** Where the network definitions live (default /etc/podnet/networks); written into the conflist when not the default. */
  networksDir?: string;
  /** The engine's state directory; written into the conflist when given. */
  stateDir?: string;
  /** cniVersion of the conflist (default 1.0.0: podman 4's libcni speaks up to 1.0.0). */
  cniVersion?: string;
}

export interface InstalledCniPlugin {
  plugin: string;
  conflist?: string;
}

/** The conflist for `network`: one podnet plugin with the capabilities it serves. */
export function pluginConflist(network: string, opts: Pick<InstallCniPluginOptions, 'networksDir' | 'stateDir' | 'cniVersion'> = {}): object {
  const plugin: Record<string, unknown> = { type: PLUGIN_TYPE, network };
  if (opts.networksDir && opts.networksDir !== DEFAULT_NATIVE_NETWORKS_DIR) plugin.networksDir = opts.networksDir;
  if (opts.stateDir) plugin.stateDir = opts.stateDir;
  plugin.capabilities = { portMappings: true, ips: true, mac: true };
  return { cniVersion: opts.cniVersion ?? '1.0.0', name: network, plugins: [plugin] };
}

/**
 * Copies the plugin into the plugin directory (a rename over the old file, so a runtime
 * running the old one meanwhile is not disturbed: no "text file busy") and, for a
 * network, writes its conflist. Everything is checked before anything is written.
 */
export function installCniPlugin(opts: InstallCniPluginOptions = {}): InstalledCniPlugin {
  const dir = checkPath('plugin directory', opts.dir ?? DEFAULT_PLUGIN_DIR);
  const confDir = checkPath('CNI configuration directory', opts.confDir ?? DEFAULT_CONF_DIR);
  const networksDir = checkPath('networks directory', opts.networksDir ?? DEFAULT_NATIVE_NETWORKS_DIR);
  if (opts.stateDir !== undefined) checkPath('state directory', opts.stateDir);
  const src = cniPluginPath();
  if (opts.network !== undefined) {
    const network = checkName('network name', opts.network);
    const def = path.join(networksDir, `${network}.json`);
    if (!existsSync(def)) {
      throw new PodnetError(ErrorCode.NATIVE_NETWORK_NOT_FOUND, `podnet network '${network}' not found (no ${def})`, { path: def, details: { network } });
    }
  }
  const plugin = path.join(dir, PLUGIN_TYPE);
  const tmp = path.join(dir, `.${PLUGIN_TYPE}.${randomBytes(4).toString('hex')}.tmp`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    copyFileSync(src, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, plugin);
  } finally {
    rmSync(tmp, { force: true });
  }
  if (opts.network === undefined) return { plugin };
  const conflist = path.join(confDir, `${opts.network}.conflist`);
  writeFileAtomic(conflist, `${JSON.stringify(pluginConflist(opts.network, { ...opts, networksDir }), null, 2)}\n`, { mode: 0o644, dirMode: 0o755 });
  return { plugin, conflist };
}
