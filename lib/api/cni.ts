/** `podnet/cni`: the CNI runtime on its own (libcni + ocicni as Podman used them). */
export { CniRuntime } from '../cni/runtime';
export type { CniRuntimeOptions, PodNetworkAttachment, PodNetworkSpec, PodTeardownSpec, PodTeardownReport, PodNetworkResult } from '../cni/runtime';
export { DEFAULT_NETWORK_NAME } from '../cni/config';
export type { CniNetworkConfig, CniPluginConf, BridgeNetworkOptions } from '../cni/config';
export type { CniResult, CniInterface, CniIPConfig, CniRoute, CniDNS, CniPortMapEntry } from '../cni/types';
