export { PodnetError, ErrorCode } from './errors';
export type { PodnetErrorFields } from './errors';
export { NetNS, DEFAULT_NETNS_DIR, randomNetnsName } from './netns';
export type { NetNSCreateOptions, NetNSExecOptions, NetNSExecResult } from './netns';
export { PortForwarder } from './portfwd/forwarder';
export type { PortForwarderOptions, PortForwarderHandle } from './portfwd/forwarder';
