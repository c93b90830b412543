/**
 * One error type crosses podnet's API: `PodnetError`, with a stable `code`
 * (an errno name such as `EEXIST`, or podnet's own `ERR_*`) and whatever of
 * `syscall`, `path` and `errno` applies, plus free-form `details`.
 */
export interface PodnetErrorFields {
  syscall?: string;
  path?: string;
  errno?: number;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class PodnetError extends Error {
  readonly code: string;
  readonly syscall?: string;
  readonly path?: string;
  readonly errno?: number;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, fields: PodnetErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'PodnetError';
    this.code = code;
    if (fields.syscall !== undefined) this.syscall = fields.syscall;
    if (fields.path !== undefined) this.path = fields.path;
    if (fields.errno !== undefined) this.errno = fields.errno;
    if (fields.details !== undefined) this.details = fields.details;
  }
}

/** Podnet's own error codes (errno names are used as they are). */
export const ErrorCode = {
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** The command line of `podnet` (unknown command or flag, a missing or malformed value). */
  USAGE: 'ERR_USAGE',
  NOT_NETNS: 'ERR_NOT_NETNS',
  NOT_ROOT: 'ERR_NOT_ROOT',
  /** No pool of warm sandboxes for that network in this runtime (resizePool, drainPool). */
  NO_SUCH_POOL: 'ERR_NO_SUCH_POOL',
  // helper processes (spawnHelper), slirp4netns and user namespaces
  HELPER_NOT_FOUND: 'ERR_HELPER_NOT_FOUND',
  /** A helper exited: before it was ready (a start fails), or later, unasked (the runtime's 'helperExit' event). */
  HELPER_EXITED: 'ERR_HELPER_EXITED',
  HELPER_TIMEOUT: 'ERR_HELPER_TIMEOUT',
  SLIRP_OPTION: 'ERR_SLIRP_OPTION',
  SLIRP_API: 'ERR_SLIRP_API',
  // pasta (lib/pasta)
  PASTA_NOT_FOUND: 'ERR_PASTA_NOT_FOUND',
  PASTA_OPTION: 'ERR_PASTA_OPTION',
  PASTA_PORT: 'ERR_PASTA_PORT',
  PASTA_EXITED: 'ERR_PASTA_EXITED',
  PASTA_TIMEOUT: 'ERR_PASTA_TIMEOUT',
  USERNS: 'ERR_USERNS',
  // inspect and statistics
  INVALID_CNI_RESULT: 'ERR_INVALID_CNI_RESULT',
  INSPECT_MISMATCH: 'ERR_INSPECT_MISMATCH',
  NETNS_CYCLE: 'ERR_NETNS_CYCLE',
  NO_SUCH_SANDBOX: 'ERR_NO_SUCH_SANDBOX',
  NO_SUCH_INTERFACE: 'ERR_NO_SUCH_INTERFACE',
  NETLINK: 'ERR_NETLINK',
  // CNI runtime (lib/cni)
  CNI_CONFIG: 'ERR_CNI_CONFIG',
  CNI_NETWORK_NOT_FOUND: 'ERR_CNI_NETWORK_NOT_FOUND',
  CNI_NETWORK_EXISTS: 'ERR_CNI_NETWORK_EXISTS',
  CNI_NETWORK_IN_USE: 'ERR_CNI_NETWORK_IN_USE',
  CNI_PLUGIN_NOT_FOUND: 'ERR_CNI_PLUGIN_NOT_FOUND',
  CNI_PLUGIN_FAILED: 'ERR_CNI_PLUGIN_FAILED',
  CNI_PLUGIN_OUTPUT: 'ERR_CNI_PLUGIN_OUTPUT',
  CNI_PLUGIN_TIMEOUT: 'ERR_CNI_PLUGIN_TIMEOUT',
  CNI_VERSION: 'ERR_CNI_VERSION',
  CNI_NOT_SET_UP: 'ERR_CNI_NOT_SET_UP',
  CNI_TEARDOWN: 'ERR_CNI_TEARDOWN',
  CNI_ALREADY_SET_UP: 'ERR_CNI_ALREADY_SET_UP',
  // port forwarder (lib/portfwd)
  PORTFWD_FAILED: 'ERR_PORTFWD_FAILED',
  PORTFWD_TIMEOUT: 'ERR_PORTFWD_TIMEOUT',
  PORTFWD_NO_ADDRESS: 'ERR_PORTFWD_NO_ADDRESS',
  // runtime (lib/runtime)
  NO_NETNS: 'ERR_NO_NETNS',
  TEARDOWN: 'ERR_TEARDOWN',
  GC: 'ERR_GC',
  STATE_DIR: 'ERR_STATE_DIR',
  STATE_CORRUPT: 'ERR_STATE_CORRUPT',
  // native code: a failure without an errno, a process that could not start
  NATIVE: 'ERR_NATIVE',
  SPAWN: 'ERR_SPAWN',
  // native networks (lib/native, csrc/core/native)
  NATIVE_NETWORK_NOT_FOUND: 'ERR_NATIVE_NETWORK_NOT_FOUND',
  NATIVE_NETWORK_EXISTS: 'ERR_NATIVE_NETWORK_EXISTS',
  NATIVE_NETWORK_IN_USE: 'ERR_NATIVE_NETWORK_IN_USE',
  NATIVE_SUBNET_OVERLAP: 'ERR_NATIVE_SUBNET_OVERLAP',
  NATIVE_POOL_EXHAUSTED: 'ERR_NATIVE_POOL_EXHAUSTED',
  NATIVE_ADDRESS_IN_USE: 'ERR_NATIVE_ADDRESS_IN_USE',
  NATIVE_PORT_IN_USE: 'ERR_NATIVE_PORT_IN_USE',
  NATIVE_ALREADY_ATTACHED: 'ERR_NATIVE_ALREADY_ATTACHED',
  NATIVE_NO_LIBRARY: 'ERR_NATIVE_NO_LIBRARY',
  NATIVE_NFTABLES: 'ERR_NATIVE_NFTABLES',
  NATIVE_UNSUPPORTED: 'ERR_NATIVE_UNSUPPORTED',
} as const;

/** One of podnet's own codes; a PodnetError's `code` is this or an errno name. */
export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The message of a thrown value, which need not be an Error. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function invalidArgument(what: string, why: string, details?: Record<string, unknown>): PodnetError {
  return new PodnetError(ErrorCode.INVALID_ARGUMENT, `invalid ${what}: ${why}`, details ? { details } : {});
}

/**
 * Turns an error thrown by the addon or by Node (a plain Error with
 * code/syscall/path/errno) into a PodnetError. `errno` is negative, as in
 * Node's SystemError (`errno: -2, code: 'ENOENT'`).
 */
export function fromNative(err: unknown, operation: string): PodnetError {
  if (err instanceof PodnetError) return err;
  const e = err as { code?: string; syscall?: string; path?: string; errno?: number; message?: string };
  const code = typeof e?.code === 'string' ? e.code : ErrorCode.NATIVE;
  return new PodnetError(code, `${operation}: ${e?.message ?? String(err)}`, {
    syscall: e?.syscall,
    path: e?.path,
    errno: typeof e?.errno === 'number' ? -Math.abs(e.errno) : undefined,
    cause: err,
  });
}
