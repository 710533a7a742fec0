import type { ByteRange, ObjectInfo, ObjectStore, PutOptions } from '../../src/store/types.js';

/**
 * Wraps a store to count calls and optionally hold puts until released,
 * to observe in-flight sharing and dirty pinning.
 */
export class CountingStore implements ObjectStore {
  gets = 0;
  puts = 0;
  /** Gets under way right now, and the most there were at once. */
  inFlight = 0;
  maxInFlight = 0;
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  getDelayMs = 0;

  constructor(private readonly inner: ObjectStore) {}

  get location(): string {
    return this.inner.location;
  }

  holdPuts(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  releasePuts(): void {
    this.openGate?.();
    this.gate = null;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.getDelayMs) await new Promise((r) => setTimeout(r, this.getDelayMs));
      return await this.inner.get(key, range);
    } finally {
      this.inFlight--;
    }
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    if (this.gate && key.startsWith('d/')) await this.gate;
    this.puts++;
    return this.inner.put(key, data, options);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix);
  }

  stat(key: string): Promise<{ size: number } | undefined> {
    return this.inner.stat(key);
  }
}
