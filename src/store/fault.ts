import { readFileSync, statSync } from 'node:fs';
import { TransientStoreError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from './types.js';
import { WrappingStore } from './wrapping.js';

/**
 * What can go wrong, per call. Rates are probabilities in [0, 1]. These are
 * the faults a real server will not produce on demand.
 */
export interface FaultConfig {
  /** Added to every call (each way of a round trip, so RTT grows by twice this). */
  latencyMs?: number;
  /** Extra random latency, uniform in [0, jitterMs). */
  jitterMs?: number;
  /** Rare long stalls: probability and length. */
  spikeRate?: number;
  spikeMs?: number;
  /** A 503-like transient failure before the call reaches the store. */
  errorRate?: number;
  /** The connection drops after the store did the work (a put may have happened). */
  resetRate?: number;
  /** A read returns a prefix of the bytes. */
  truncateRate?: number;
  /** A read returns the bytes with one bit flipped. */
  flipRate?: number;
  /** A put reports success but stores nothing. */
  lostWriteRate?: number;
  /** Every call fails, as if the store were unreachable. */
  down?: boolean;
  /** Seed for the fault dice (default: random). */
  seed?: number;
}

/** xorshift-style PRNG: reproducible fault sequences for a seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Wraps a store and injects faults. The configuration is either fixed or
 * read from a JSON control file that tests rewrite while a mount is running
 * (e.g. to take the store "down" and bring it back).
 */
export class FaultStore extends WrappingStore {
  private config: FaultConfig;
  private random: () => number;
  private controlMtime = 0;
  private controlCheckedAt = 0;
  private readonly controlFile?: string;
  /** Calls that failed or were corrupted on purpose, for test assertions. */
  injected = 0;

  constructor(inner: ObjectStore, config: FaultConfig | { controlFile: string }) {
    super(inner);
    if ('controlFile' in config) {
      this.controlFile = config.controlFile;
      this.config = {};
      this.reloadControl(true);
    } else {
      this.config = config;
    }
    this.random = rng(this.config.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  setConfig(config: FaultConfig): void {
    this.config = config;
    if (config.seed !== undefined) this.random = rng(config.seed);
  }

  private reloadControl(force = false): void {
    if (!this.controlFile) return;
    const now = Date.now();
    if (!force && now - this.controlCheckedAt < 100) return;
    this.controlCheckedAt = now;
    try {
      const mtime = statSync(this.controlFile).mtimeMs;
      if (!force && mtime === this.controlMtime) return;
      this.controlMtime = mtime;
      this.setConfig(JSON.parse(readFileSync(this.controlFile, 'utf8')) as FaultConfig);
    } catch {
      // A half-written control file: keep the previous configuration.
    }
  }

  private roll(rate: number | undefined): boolean {
    return !!rate && this.random() < rate;
  }

  private async before(what: string, key: string): Promise<void> {
    this.reloadControl();
    const c = this.config;
    let delay = (c.latencyMs ?? 0) + (c.jitterMs ? this.random() * c.jitterMs : 0);
    if (this.roll(c.spikeRate)) delay += c.spikeMs ?? 5000;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (c.down) {
      this.injected++;
      throw new TransientStoreError(`${what} ${key}: injected fault: store unreachable`, key);
    }
    if (this.roll(c.errorRate)) {
      this.injected++;
      throw new TransientStoreError(`${what} ${key}: injected fault: HTTP 503`, key);
    }
  }

  private async after(what: string, key: string): Promise<void> {
    const c = this.config;
    if (c.latencyMs) await new Promise((r) => setTimeout(r, c.latencyMs));
    if (this.roll(c.resetRate)) {
      this.injected++;
      throw new TransientStoreError(`${what} ${key}: injected fault: connection reset`, key);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    await this.before('GET', key);
    let data = await this.inner.get(key, range);
    await this.after('GET', key);
    if (data.length > 0 && this.roll(this.config.truncateRate)) {
      this.injected++;
      data = data.subarray(0, Math.floor(this.random() * data.length));
    } else if (data.length > 0 && this.roll(this.config.flipRate)) {
      this.injected++;
      data = Buffer.from(data);
      data[Math.floor(this.random() * data.length)] ^= 1 << Math.floor(this.random() * 8);
    }
    return data;
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    await this.before('PUT', key);
    if (this.roll(this.config.lostWriteRate)) {
      this.injected++;
    } else {
      await this.inner.put(key, data, options);
    }
    await this.after('PUT', key);
  }

  async delete(key: string): Promise<void> {
    await this.before('DELETE', key);
    await this.inner.delete(key);
    await this.after('DELETE', key);
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    await this.before('LIST', prefix);
    const out = await this.inner.list(prefix);
    await this.after('LIST', prefix);
    return out;
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    await this.before('HEAD', key);
    const out = await this.inner.stat(key);
    await this.after('HEAD', key);
    return out;
  }
}
