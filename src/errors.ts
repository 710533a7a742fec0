/**
 * Filesystem errors carry a POSIX error name; the FUSE adapter is the only
 * place that turns the name into a number. Everything else that can go wrong
 * for a user (bad passphrase, missing vault, ...) is a UserError: the CLI
 * prints its message on one line, without a stack trace.
 */
export type Errno =
  | 'EPERM' | 'ENOENT' | 'EIO' | 'EBADF' | 'EACCES' | 'EEXIST' | 'EXDEV'
  | 'ENOTDIR' | 'EISDIR' | 'EINVAL' | 'EFBIG' | 'ENOSPC' | 'EROFS' | 'EMLINK'
  | 'ENAMETOOLONG' | 'ENOTEMPTY' | 'ENOSYS' | 'ENODATA' | 'ENOTSUP' | 'ELOOP'
  | 'ERANGE' | 'EBUSY' | 'ENXIO' | 'E2BIG' | 'EOPNOTSUPP';

export class FsError extends Error {
  constructor(readonly code: Errno, message?: string) {
    // An expected answer (ENOENT for every lookup of a name to be created), not a bug: no stack trace to capture.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ? `${code}: ${message}` : code);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
  }
}

export class UserError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'UserError';
  }
}

/** Data or metadata failed authentication: never hand such bytes out. */
export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntegrityError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
