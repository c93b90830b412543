export { PodnetError, ErrorCode } from './errors';
export type { PodnetErrorFields } from './errors';
export { NetNS, DEFAULT_NETNS_DIR, randomNetnsName } from './netns';
export type { NetNSCreateOptions, NetNSExecOptions, NetNSExecResult } from './netns';
// helper processes, slirp4netns, unprivileged namespaces (issue 4)
export { spawnHelper, HelperProcess, resolveCommand, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET } from './spawn';
export type { SpawnHelperOptions, HelperExit } from './spawn';
export * from './slirp';
export * from './rootless';
