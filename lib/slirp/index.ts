export { Slirp4netns, slirpArgs } from './slirp4netns';
export type { Slirp4netnsStartOptions } from './slirp4netns';
export { slirpFeatures, parseSlirpHelp } from './features';
export type { SlirpFeatures } from './features';
export { parseSlirpOptions, DEFAULT_SLIRP_MTU } from './options';
export type { SlirpOptions, PortHandler } from './options';
export { slirpApiRequest, addHostForward, listHostForwards, removeHostForward, hostForwardsFromPortMappings } from './api';
export type { HostForward, HostForwardEntry } from './api';
