/**
 * The native addon, loaded once (a prebuilt binary from prebuilds/, else the
 * local build), and the one typed contract of what it exports: every export's
 * signature is here, and NATIVE_EXPORTS lists them for the test that checks
 * this contract against what the addon really exports.
 */
import path from 'node:path';

export interface NsHandleInfo {
  fd: number;
  dev: number;
  ino: number;
}

export interface NativeSpawnOptions {
  file: string;
  argv: string[];
  env?: string[];
  stdin?: number;
  stdout?: number;
  stderr?: number;
  fds?: Array<[number, number]>;
  userns?: number;
  netns?: number;
  unshare?: number;
  mountPrivate?: boolean;
  loopbackUp?: boolean;
  setpgid?: boolean;
  cwd?: string;
}

export interface NativePidfdWatch {
  close(): void;
  ref(): void;
  unref(): void;
}

/** statsRead's answer: [errors per entry, links per entry, link names, 24 counters per link in lib/stats COUNTERS order]. */
export type NativeBatch = [Array<unknown>, Int32Array, string[], Float64Array];

export interface NativeAddon {
  netnsCreate(dir: string, name: string): Promise<NsHandleInfo>;
  netnsFromPid(pid: number, dir: string, name: string): Promise<NsHandleInfo>;
  /** A new namespace with lo up, held only by the returned fd (no bind mount). */
  netnsUnshare(): Promise<NsHandleInfo>;
  /** Bind-mounts the namespace `nsfd` holds at a new `dir/name` (EEXIST if it exists), synchronously; the fd stays open. */
  netnsBind(nsfd: number, dir: string, name: string): void;
  netnsOpen(path: string): Promise<NsHandleInfo>;
  netnsRemove(path: string): Promise<void>;
  netnsLoopbackUp(nsfd: number): Promise<void>;
  netnsSysctl(path: string, key: string, value: string): Promise<void>;
  closeFd(fd: number): void;
  /** An exclusive flock on `path` (created if missing), held until the fd is closed. */
  lockFile(path: string): Promise<number>;
  spawnHelper(opts: NativeSpawnOptions): { pid: number; pidfd: number };
  pipe(): [number, number];
  memfd(name: string): number;
  /** A named pipe at `path` (mode before umask); e.g. the pid file a helper writes once ready. */
  mkfifo(path: string, mode: number): void;
  pidfdSignal(pidfd: number, signo: number): void;
  PidfdWatch: new (pidfd: number, cb: (code: number | null, signal: number | null) => void) => NativePidfdWatch;
  statsRead(entries: Array<[string, string | null]>): Promise<NativeBatch>;
  statsRelease(netnsPath: string | null): Promise<number>;
  statsCacheInfo(): Promise<{ sockets: number; paths: number }>;
  // native networks (csrc/native_net.cc over csrc/core/native/engine.h)
  nativeAttach(config: NativeEngineConfig, request: NativeAttachRequest): Promise<NativeAttachment>;
  nativeDetach(config: NativeEngineConfig, network: string, containerId: string, ifname: string, netnsPath?: string, keepLink?: boolean): Promise<void>;
  /** Publishes more ports for an existing attachment (same checks and errors as nativeAttach's); Detach removes them too. */
  nativeAddPorts(config: NativeEngineConfig, network: string, containerId: string, ifname: string, ports: NativePortMapping[]): Promise<NativeAttachment>;
  /** Every owner holding a lease or an attachment record on the network. */
  nativeOwners(config: NativeEngineConfig, network: string): Promise<{ containerId: string; ifname: string }[]>;
  nativeCheck(config: NativeEngineConfig, network: string, containerId: string, ifname: string, netnsPath?: string): Promise<void>;
  nativeEnsureNetwork(config: NativeEngineConfig, name: string): Promise<void>;
  nativeRemoveNetwork(config: NativeEngineConfig, name: string): Promise<void>;
  nativeAttachments(config: NativeEngineConfig, network: string): Promise<NativeAttachment[]>;
  nativeGc(
    config: NativeEngineConfig,
    network: string,
    live: { containerId: string; ifname: string }[],
    onlyPrefix?: string,
  ): Promise<{ leases: number; elements: number; links: number }>;
  nativeStatus(): Promise<void>;
  nativeHostIfname(network: string, containerId: string, ifname: string): string;
}

/** Where the native engine finds network definitions and keeps its IPAM state. */
export interface NativeEngineConfig {
  networksDir: string;
  stateDir: string;
}

export interface NativePortMapping {
  protocol: 'tcp' | 'udp' | 'sctp';
  /** '' = every host address of the sandbox's address families. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  range: number;
}

export interface NativeAttachRequest {
  network: string;
  containerId: string;
  ifname: string;
  netnsPath: string;
  staticIps?: string[];
  mac?: string;
  ports?: NativePortMapping[];
}

export interface NativeAttachment {
  network: string;
  containerId: string;
  ifname: string;
  hostIfname: string;
  mac: string;
  hostMac: string;
  mtu: number;
  /** address is CIDR with the subnet's prefix. */
  ips: { address: string; gateway: string }[];
  routes: { dst: string; gw: string }[];
  ports: NativePortMapping[];
}

/** Every name the addon exports; the type check below makes it list each NativeAddon member exactly. */
export const NATIVE_EXPORTS = [
  'netnsCreate',
  'netnsFromPid',
  'netnsUnshare',
  'netnsBind',
  'netnsOpen',
  'netnsRemove',
  'netnsLoopbackUp',
  'netnsSysctl',
  'closeFd',
  'lockFile',
  'spawnHelper',
  'pipe',
  'memfd',
  'mkfifo',
  'pidfdSignal',
  'PidfdWatch',
  'statsRead',
  'statsRelease',
  'statsCacheInfo',
  'nativeAttach',
  'nativeDetach',
  'nativeAddPorts',
  'nativeOwners',
  'nativeCheck',
  'nativeEnsureNetwork',
  'nativeRemoveNetwork',
  'nativeAttachments',
  'nativeGc',
  'nativeStatus',
  'nativeHostIfname',
] as const satisfies readonly (keyof NativeAddon)[];
type Missing = Exclude<keyof NativeAddon, (typeof NATIVE_EXPORTS)[number]>;
const everyExportListed: [Missing] extends [never] ? true : Missing = true;
void everyExportListed;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;

export const native = load(path.join(__dirname, '..')) as NativeAddon;
