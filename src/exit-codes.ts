/**
 * Every exit status of the veilfs command, in one place (README: "Exit
 * codes"). sysexits(3) values where one fits; fsck keeps fsck(8)'s.
 */
export const EXIT = {
  OK: 0,
  /** A failure with its own message: a bad mountpoint, a missing vault, … */
  FAILURE: 1,
  /** fsck: the vault was damaged and is repaired now. */
  FSCK_REPAIRED: 1,
  /** Wrong passphrase (or a tampered vault header). */
  WRONG_PASSPHRASE: 2,
  /** fsck: the vault is damaged (run fsck --repair). */
  FSCK_DAMAGED: 4,
  /** Data that failed authentication (veilfs get: a tampered or swapped object). */
  DAMAGED: 65,
  /** Bad command line. */
  USAGE: 64,
  /** Something this machine lacks: /dev/fuse, libfuse, the FUSE binding, the cipher. */
  UNAVAILABLE: 69,
  /** A bug: the message says what happened; VEILFS_DEBUG=1 shows the stack. */
  INTERNAL: 70,
  /** Local disk full or not writable (journal, cache, logs). */
  CANT_CREATE: 73,
  /** The store failed or is unreachable (network, credentials, bucket). */
  STORE: 75,
  /** Permission denied (the control socket of another user's mount, …). */
  NO_PERMISSION: 77,
  /** Cancelled at a prompt (Ctrl-C). */
  CANCELLED: 130,
} as const;
