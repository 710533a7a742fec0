import { WrappingStore } from './wrapping.js';
import { NotFoundError, type ByteRange, type ObjectInfo, type PutOptions } from './types.js';
import { errorMessage } from '../errors.js';

export interface StoreMeter {
  /** Smoothed duration of one store operation (retries included), ms. */
  latencyMs: number | undefined;
  operations: number;
  failures: number;
  /** The latest failures, newest last. */
  recentErrors: { at: string; message: string }[];
}

const KEPT_ERRORS = 5;
const SMOOTHING = 0.2;

/** Times every operation and keeps the last failures, for `veilfs status`. */
export class MeteredStore extends WrappingStore {
  readonly meter: StoreMeter = { latencyMs: undefined, operations: 0, failures: 0, recentErrors: [] };

  private async timed<T>(run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } catch (err) {
      // A missing object is an answer, not a failure of the store.
      if (!(err instanceof NotFoundError)) {
        this.meter.failures++;
        this.meter.recentErrors.push({ at: new Date().toISOString(), message: errorMessage(err) });
        if (this.meter.recentErrors.length > KEPT_ERRORS) this.meter.recentErrors.shift();
      }
      throw err;
    } finally {
      const took = performance.now() - started;
      this.meter.operations++;
      this.meter.latencyMs = this.meter.latencyMs === undefined ? took : this.meter.latencyMs + SMOOTHING * (took - this.meter.latencyMs);
    }
  }

  get(key: string, range?: ByteRange): Promise<Buffer> {
    return this.timed(() => this.inner.get(key, range));
  }

  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    return this.timed(() => this.inner.put(key, data, options));
  }

  delete(key: string): Promise<void> {
    return this.timed(() => this.inner.delete(key));
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.timed(() => this.inner.list(prefix));
  }

  stat(key: string): Promise<{ size: number } | undefined> {
    return this.timed(() => this.inner.stat(key));
  }
}
