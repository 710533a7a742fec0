import { StoreError, TransientStoreError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from './types.js';
import { WrappingStore } from './wrapping.js';

export interface RetryPolicy {
  /** Attempts per operation, the first included. */
  attempts: number;
  /** Bound on one operation, retries and waits included; then it fails. */
  deadlineMs: number;
  /** First backoff; it doubles per attempt (full jitter), up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, deadlineMs: 30_000, baseDelayMs: 100, maxDelayMs: 5_000 };

/** An operation that ran into its deadline: the store did not answer in time. */
export class StoreTimeoutError extends TransientStoreError {
  constructor(what: string, ms: number, key?: string) {
    super(`${what}: no answer within ${Math.round(ms / 1000)} s`, key);
    this.name = 'StoreTimeoutError';
  }
}

/**
 * Retries transient failures (TransientStoreError) with jittered
 * exponential backoff, and bounds every operation by a deadline even when
 * the store never answers, so no caller waits forever. Other errors (not
 * found, conflicts, denied) pass through at once.
 */
export class RetryingStore extends WrappingStore {

  constructor(
    inner: ObjectStore,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly log: (message: string) => void = () => {},
  ) {
    super(inner);
  }

  private async run<T>(what: string, key: string | undefined, op: () => Promise<T>): Promise<T> {
    const started = Date.now();
    let last: TransientStoreError | undefined;
    for (let attempt = 1; attempt <= this.policy.attempts; attempt++) {
      const left = this.policy.deadlineMs - (Date.now() - started);
      if (left <= 0) break;
      try {
        return await withDeadline(op(), left, () => new StoreTimeoutError(`${what} ${key ?? ''}`.trim(), this.policy.deadlineMs, key));
      } catch (err) {
        if (!(err instanceof TransientStoreError)) throw err;
        last = err;
        if (attempt === this.policy.attempts) break;
        const backoff = Math.random() * Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (attempt - 1));
        if (Date.now() - started + backoff >= this.policy.deadlineMs) break;
        this.log(`${what} ${key ?? ''}: ${err.message}; retrying (attempt ${attempt + 1} of ${this.policy.attempts})`);
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    // Still transient: a caller with its own patience (the journal) may try again later.
    throw new TransientStoreError(`${this.location}: ${what} ${key ?? ''} failed after retries: ${last?.message ?? 'deadline passed'}`, key);
  }

  get(key: string, range?: ByteRange): Promise<Buffer> {
    return this.run('GET', key, () => this.inner.get(key, range));
  }

  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return this.run('PUT', key, () => this.inner.put(key, data, options));
  }

  delete(key: string): Promise<void> {
    return this.run('DELETE', key, () => this.inner.delete(key));
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.run('LIST', prefix, () => this.inner.list(prefix));
  }

  stat(key: string): Promise<{ size: number } | undefined> {
    return this.run('HEAD', key, () => this.inner.stat(key));
  }
}

function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => StoreError): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
