/**
 * Debian's podman 4.3 (CNI backend) as a test client, isolated from the host's podman:
 * its own containers.conf (named by CONTAINERS_CONF), storage (--root/--runroot),
 * temporary directory, CNI plugin directory and network configuration directory,
 * all in one temp dir. No image can be pulled here: containers run a root filesystem
 * holding only busybox-static (`--rootfs`). crun refuses this machine's cgroup setup
 * (hybrid mode), so runc; the default ulimits exceed the hard limits here.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand, type RunResult } from '../../lib/command';

export const BUSYBOX = '/bin/busybox';
/** Where Debian's containernetworking-plugins live. */
export const DEBIAN_CNI_PLUGINS = '/usr/lib/cni';

export interface PodmanEnvOptions {
  /** Files copied into the CNI plugin directory, as name -> source path. */
  plugins?: Record<string, string>;
  /** Also search Debian's plugins (bridge, portmap, ...). */
  debianPlugins?: boolean;
}

export class PodmanEnv {
  readonly dir: string;
  readonly rootfs: string;
  readonly pluginDir: string;
  readonly confDir: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(opts: PodmanEnvOptions = {}) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'cnip-podman-'));
    this.rootfs = path.join(this.dir, 'rootfs');
    this.pluginDir = path.join(this.dir, 'plugins');
    this.confDir = path.join(this.dir, 'net.d');
    for (const d of [this.pluginDir, this.confDir, path.join(this.dir, 'tmp')]) mkdirSync(d, { recursive: true });
    makeBusyboxRootfs(this.rootfs);
    for (const [name, src] of Object.entries(opts.plugins ?? {})) copyFileSync(src, path.join(this.pluginDir, name));
    const pluginDirs = [this.pluginDir, ...(opts.debianPlugins ? [DEBIAN_CNI_PLUGINS] : [])];
    const conf = path.join(this.dir, 'containers.conf');
    writeFileSync(
      conf,
      [
        '[containers]',
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "none"',
        `tmp_dir = "${path.join(this.dir, 'tmp')}"`,
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = [${pluginDirs.map((d) => JSON.stringify(d)).join(', ')}]`,
        `network_config_dir = "${this.confDir}"`,
        '',
      ].join('\n'),
    );
    this.env = { ...process.env, CONTAINERS_CONF: conf };
  }

  /** Writes `<confDir>/<name>.conflist`. */
  writeConflist(name: string, plugins: object[], cniVersion = '1.0.0'): void {
    writeFileSync(path.join(this.confDir, `${name}.conflist`), JSON.stringify({ cniVersion, name, plugins }, null, 2));
  }

  /** `podman <args>` against this environment's storage. */
  podman(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return runCommand('podman', [...this.baseArgs, ...args], { env: this.env, timeoutMs });
  }

  /** Storage of our own; vfs, since overlay leaves a bind mount on its directory behind. */
  get baseArgs(): string[] {
    return ['--root', path.join(this.dir, 'root'), '--runroot', path.join(this.dir, 'runroot'), '--storage-driver', 'vfs'];
  }

  /** Like podman() but throws with podman's stderr on a non-zero exit; returns stdout. */
  async podmanOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.podman(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')}: exit ${r.code}${r.signal ?? ''}: ${r.stderr}`);
    return r.stdout.toString();
  }

  /** `podman run -d` of busybox httpd serving /www on port 80; returns the container id. */
  async runHttpd(name: string, network: string, extra: string[] = []): Promise<string> {
    const out = await this.podmanOk([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      network,
      ...extra,
      '--rootfs',
      this.rootfs,
      '/bin/busybox',
      'httpd',
      '-f',
      '-p',
      '80',
      '-h',
      '/www',
    ]);
    return out.trim();
  }

  /**
   * Removes every container (their networks torn down by podman), waits for their conmon
   * processes (whose exit command writes into the run root) to end, unmounts what a killed
   * container left mounted under the directory, and removes it.
   */
  async cleanup(): Promise<void> {
    try {
      await this.podman(['rm', '--all', '--force', '--time', '0']);
      const end = Date.now() + 15_000;
      while (processesUsing(this.dir).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    } finally {
      for (const m of mountsUnder(this.dir).reverse()) await runCommand('umount', ['-l', m]);
      rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  }
}

/** Pids whose command line names `dir` (this environment's podman, conmon and cleanup processes). */
export function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch {
      /* exited */
    }
  }
  return pids;
}

/** Mount points at or under `dir`, in mount order. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m !== undefined && (m === dir || m.startsWith(`${dir}/`)));
}

/** A root filesystem with busybox-static as /bin/busybox and a page in /www. */
export function makeBusyboxRootfs(dir: string, page = 'hello from podman\n'): void {
  for (const d of ['bin', 'www', 'etc', 'tmp']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  writeFileSync(path.join(dir, 'www', 'index.html'), page);
}
