import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { FaultStore, type FaultConfig } from './fault.js';
import { LocalStore } from './local.js';
import { DEFAULT_RETRY, RetryingStore } from './retry.js';
import { resolveS3Config, type S3Flags } from './s3-config.js';
import { S3Store } from './s3.js';
import type { ObjectStore } from './types.js';

/** The embedded default: $XDG_DATA_HOME/veilfs/default (~/.local/share/veilfs/default). */
export function defaultStorePath(): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'veilfs', 'default');
}

export interface OpenStoreOptions extends S3Flags {
  /** Bound on one store operation, retries included (then EIO). */
  timeoutMs?: number;
  log?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** The store a URL names, without retries or fault injection. */
function baseStore(url: string | undefined, opts: OpenStoreOptions): ObjectStore {
  if (!url) return new LocalStore(defaultStorePath());
  if (url.startsWith('file://')) return new LocalStore(fileURLToPath(url));
  if (url.startsWith('s3://')) {
    return new S3Store(resolveS3Config(url, opts, opts.env), {
      log: opts.log,
      requestTimeoutMs: Math.min(20_000, opts.timeoutMs ?? DEFAULT_RETRY.deadlineMs),
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const scheme = url.slice(0, url.indexOf(':'));
    throw new UserError(`unsupported store "${scheme}://" (use a directory, file:///path or s3://BUCKET/PREFIX)`);
  }
  return new LocalStore(url);
}

/**
 * VEILFS_FAULTS turns on fault injection for testing how veilfs (or a
 * setup) copes with a bad store: either a JSON FaultConfig, or "@FILE" to
 * read it from a control file that may change while mounted.
 */
function faultsFromEnv(env: NodeJS.ProcessEnv): FaultConfig | { controlFile: string } | undefined {
  const text = env.VEILFS_FAULTS;
  if (!text) return undefined;
  if (text.startsWith('@')) return { controlFile: text.slice(1) };
  try {
    return JSON.parse(text) as FaultConfig;
  } catch {
    throw new UserError('VEILFS_FAULTS is neither JSON nor @FILE');
  }
}

/** Turns --store (a path, file:// URL or s3:// URL) into a store with retries and deadlines. */
export function openStore(url: string | undefined, opts: OpenStoreOptions = {}): ObjectStore {
  const env = opts.env ?? process.env;
  let store = baseStore(url, { ...opts, env });
  const faults = faultsFromEnv(env);
  if (faults) {
    opts.log?.('fault injection is on (VEILFS_FAULTS): this store misbehaves on purpose');
    store = new FaultStore(store, faults);
  }
  return new RetryingStore(store, { ...DEFAULT_RETRY, deadlineMs: opts.timeoutMs ?? DEFAULT_RETRY.deadlineMs }, opts.log);
}
