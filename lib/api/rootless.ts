/** `podnet/rootless`: a network namespace inside a user namespace, held by a small process, for unprivileged callers. */
export * from '../rootless';
