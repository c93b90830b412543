export { NativeNetworks, DEFAULT_NATIVE_NETWORKS_DIR, DEFAULT_NATIVE_STATE_DIR, defaultNativeNetworkOptions } from './networks';
export { buildNativeNetwork, checkNoOverlap } from './network';
export type { NativeNetworkOptions, NativeNetworkDef } from './network';
