/** `podnet/pasta`: starting pasta (passt project) for a network namespace on its own. */
export * from '../pasta';
