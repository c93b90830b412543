export { PodnetError, ErrorCode } from './errors';
export type { PodnetErrorFields } from './errors';
export { NetNS, DEFAULT_NETNS_DIR, randomNetnsName } from './netns';
export type { NetNSCreateOptions, NetNSExecOptions, NetNSExecResult } from './netns';
export { CniRuntime } from './cni/runtime';
export type { CniRuntimeOptions, PodNetworkAttachment, PodNetworkSpec, PodTeardownSpec, PodNetworkResult } from './cni/runtime';
export { DEFAULT_NETWORK_NAME } from './cni/config';
export type { CniNetworkConfig, CniPluginConf, BridgeNetworkOptions } from './cni/config';
export type { CniResult, CniInterface, CniIPConfig, CniRoute, CniDNS, PortMapping, PortProtocol, CniPortMapEntry } from './cni/types';
