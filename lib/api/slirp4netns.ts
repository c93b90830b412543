/** `podnet/slirp4netns`: starting slirp4netns and its API on their own. */
export * from '../slirp';
