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
  NOT_NETNS: 'ERR_NOT_NETNS',
  NOT_ROOT: 'ERR_NOT_ROOT',
  // port forwarder (lib/portfwd)
  PORTFWD_FAILED: 'ERR_PORTFWD_FAILED', PORTFWD_TIMEOUT: 'ERR_PORTFWD_TIMEOUT', PORTFWD_NO_ADDRESS: 'ERR_PORTFWD_NO_ADDRESS',
} as const;

export function invalidArgument(what: string, why: string, details?: Record<string, unknown>): PodnetError {
  return new PodnetError(ErrorCode.INVALID_ARGUMENT, `invalid ${what}: ${why}`, details ? { details } : {});
}

/** Turns an error thrown by the addon (a plain Error with code/syscall/path/errno) into a PodnetError. */
export function fromNative(err: unknown, operation: string): PodnetError {
  if (err instanceof PodnetError) return err;
  const e = err as { code?: string; syscall?: string; path?: string; errno?: number; message?: string };
  const code = typeof e?.code === 'string' ? e.code : 'ERR_NATIVE';
  return new PodnetError(code, `${operation}: ${e?.message ?? String(err)}`, {
    syscall: e?.syscall,
    path: e?.path,
    errno: e?.errno,
    cause: err,
  });
}
