/**
 * The native addon, loaded once (a prebuilt binary from prebuilds/, else the
 * local build), with the types of what it exports. Feature modules add their
 * functions' signatures here.
 */
import path from 'node:path';

export interface NsHandleInfo {
  fd: number;
  dev: number;
  ino: number;
}

export interface NativeAddon {
  netnsCreate(dir: string, name: string): Promise<NsHandleInfo>;
  netnsFromPid(pid: number, dir: string, name: string): Promise<NsHandleInfo>;
  netnsOpen(path: string): Promise<NsHandleInfo>;
  netnsRemove(path: string): Promise<void>;
  netnsLoopbackUp(nsfd: number): Promise<void>;
  netnsSysctl(path: string, key: string, value: string): Promise<void>;
  closeFd(fd: number): void;
  /** An exclusive flock on `path` (created if missing), held until the fd is closed. */
  lockFile(path: string): Promise<number>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;

export const native = load(path.join(__dirname, '..')) as NativeAddon;
