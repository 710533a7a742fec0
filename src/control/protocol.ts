/**
 * The local control socket of a mounted drive: one JSON request line from
 * `veilfs status` / `veilfs sync` / `veilfs unmount`, JSON lines back. The
 * socket lives in a directory only the mounting user can enter and is
 * itself mode 0600: nobody else can connect.
 */
import type { ShareInfo, ShareRequest } from '../share/service.js';

export type Request =
  | { command: 'status' }
  | { command: 'sync' }
  | { command: 'share'; request: ShareRequest }
  | { command: 'shares' }
  | { command: 'unshare'; target: string };

/** The answer to share, shares and unshare: one line. */
export interface ShareReply {
  error?: string;
  share?: ShareInfo;
  shares?: ShareInfo[];
  revoked?: string[];
}

export interface StatusReport {
  mountpoint: string;
  store: string;
  pid: number;
  mountedSince: string;
  readOnly: boolean;
  logFile: string;
  cache: { size: number; used: number; dirtyBytes: number; hitRate: number | null };
  upload: { pendingObjects: number; pendingBytes: number; bytesPerSecond: number; etaSeconds: number | null };
  lastCommit: string | null;
  storeLatencyMs: number | null;
  storeErrors: { at: string; message: string }[];
  journalBytes: number;
  /** The daemon's resident memory, and the files the kernel holds through it (and their bound; null: none). */
  memory?: { residentBytes: number; kernelInodes: number; kernelInodeLimit: number | null };
}

/** Sent while `sync` waits; the last line has done set. */
export interface SyncProgress {
  pendingObjects: number;
  pendingBytes: number;
  done?: boolean;
  stored?: boolean;
  error?: string;
}
