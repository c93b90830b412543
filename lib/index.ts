export { PodnetError, ErrorCode } from './errors';
export type { PodnetErrorFields } from './errors';
export { NetNS, DEFAULT_NETNS_DIR, randomNetnsName } from './netns';
export type { NetNSCreateOptions, NetNSExecOptions, NetNSExecResult } from './netns';
// helper processes, slirp4netns, unprivileged namespaces (issue 4)
export { spawnHelper, HelperProcess, resolveCommand, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET } from './spawn';
export type { SpawnHelperOptions, HelperExit } from './spawn';
export * from './slirp';
export * from './rootless';
export { toNetworkSettings, resultToBasicNetworkConfig, resolveNetnsPath, portBindings } from './inspect';
export type { NetworkSettings, NetworkSettingsInput, BasicNetworkConfig, AdditionalNetwork, InspectHostPort, NetnsRef } from './inspect';
export { linkStats, linkStatsMany, releaseStats, statsCacheInfo } from './stats';
export type { LinkStats, LinkStatsByName, LinkStatsEntry, LinkStatsOutcome } from './stats';
export { CniRuntime } from './cni/runtime';
export type { CniRuntimeOptions, PodNetworkAttachment, PodNetworkSpec, PodTeardownSpec, PodNetworkResult } from './cni/runtime';
export { DEFAULT_NETWORK_NAME } from './cni/config';
export type { CniNetworkConfig, CniPluginConf, BridgeNetworkOptions } from './cni/config';
export type { CniResult, CniInterface, CniIPConfig, CniRoute, CniDNS, PortMapping, PortProtocol, CniPortMapEntry } from './cni/types';
// the runtime: a sandbox's whole network life, with state on disk (issue 5)
export { Runtime } from './runtime/runtime';
export type { RuntimeOptions, CreateSandboxOptions, SandboxInfo } from './runtime/runtime';
export type { SandboxState, NetworkMode } from './runtime/state';
export { PortForwarder } from './portfwd/forwarder';
export type { PortForwarderOptions, PortForwarderHandle } from './portfwd/forwarder';
