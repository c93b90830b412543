/** `podnet/inspect`: Podman-compatible inspect conversions of CNI results. */
export { toNetworkSettings, resultToBasicNetworkConfig, resolveNetnsPath, portBindings } from '../inspect';
export type { NetworkSettings, NetworkSettingsInput, BasicNetworkConfig, AdditionalNetwork, InspectHostPort, NetnsRef } from '../inspect';
