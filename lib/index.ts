/**
 * podnet's public API: the runtime (a sandbox's whole network life), the
 * error type, network namespaces, inspect and statistics. Lower-level pieces
 * that are worth using on their own have subpath exports (see package.json
 * "exports" and README): `podnet/cni`, `podnet/slirp4netns`, `podnet/rootless`,
 * `podnet/pasta`, `podnet/portfwd`, `podnet/inspect`.
 */
export { PodnetError, ErrorCode } from './errors';
export type { PodnetErrorFields, ErrorCodeName } from './errors';
export type { PortMapping, PortProtocol } from './types';
export { Runtime } from './runtime/runtime';
export type { RuntimeOptions, CreateSandboxOptions, SandboxInfo, HelperExitEvent, RuntimeEvents } from './runtime/runtime';
export type { ProcessPools } from './runtime/pool-status';
export type { PoolOptions, PoolStatus } from './runtime/pool';
export type { SandboxState, NetworkMode, HelperName, HelperExitNote } from './runtime/state';
export { NetNS } from './netns';
export type { NetNSCreateOptions, NetNSExecOptions, NetNSExecResult } from './netns';
export { toNetworkSettings } from './inspect';
export type { NetworkSettings, NetworkSettingsInput } from './inspect';
export { linkStats, linkStatsMany } from './stats';
export type { LinkStats, LinkStatsByName, LinkStatsEntry, LinkStatsOutcome } from './stats';
// native networks: routed veths and nftables in-process (csrc/core/native)
export { NativeNetworks, buildNativeNetwork } from './native/index';
export type { NativeNetworkOptions, NativeNetworkDef } from './native/index';
export type { NativeAttachment, NativeAttachRequest, NativePortMapping, NativeEngineConfig } from './addon';
