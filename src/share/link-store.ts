import got, { HTTPError, RequestError } from 'got';
import { packIdOfKey } from '../format/names.js';
import { NotFoundError, StoreError, TransientStoreError, type ByteRange, type ObjectInfo, type ObjectStore } from '../store/types.js';
import type { ShareLink } from './link.js';

/**
 * The packs of one share, read through its gateway: an ObjectStore, so a
 * share mounts on the same block cache and data layer as a vault. It can
 * only read what the share exposes; a whole pack comes back with the
 * exposed ranges in place and zeros elsewhere (nothing reads those).
 */
export class LinkStore implements ObjectStore {
  readonly location: string;
  private readonly http;

  constructor(private readonly link: ShareLink, private readonly ranges: Record<string, [number, number][]>, timeoutMs = 30_000) {
    this.location = `${link.gateway}/s/${link.id}`;
    this.http = got.extend({ timeout: { request: timeoutMs }, retry: { limit: 3, methods: ['GET'] } });
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const pack = packIdOfKey(key);
    const exposed = pack && this.ranges[pack];
    if (!pack || !exposed) throw new NotFoundError(key);
    if (range) return this.fetch(key, pack, range.offset, range.length);
    const size = Math.max(...exposed.map(([offset, length]) => offset + length));
    const whole = Buffer.alloc(size);
    await Promise.all(exposed.map(async ([offset, length]) => (await this.fetch(key, pack, offset, length)).copy(whole, offset)));
    return whole;
  }

  private async fetch(key: string, pack: string, offset: number, length: number): Promise<Buffer> {
    try {
      const bytes = (await this.http.get(`${this.link.gateway}/api/s/${this.link.id}/p/${pack}`, { headers: { range: `bytes=${offset}-${offset + length - 1}` }, responseType: 'buffer' })).body;
      if (bytes.length !== length) throw new TransientStoreError(`the gateway returned ${bytes.length} of ${length} bytes`, key);
      return bytes;
    } catch (err) {
      if (err instanceof HTTPError) {
        const status = err.response.statusCode;
        if (status === 404) throw new NotFoundError(key);
        if (status === 410) throw new StoreError('the share was revoked or has expired', key);
        throw new StoreError(`the gateway answered ${status}`, key);
      }
      if (err instanceof RequestError) throw new TransientStoreError(`the gateway is unreachable: ${err.message}`, key);
      throw err;
    }
  }

  put(key: string): Promise<void> {
    return Promise.reject(new StoreError('a share link is read-only', key));
  }

  delete(key: string): Promise<void> {
    return Promise.reject(new StoreError('a share link is read-only', key));
  }

  async list(): Promise<ObjectInfo[]> {
    return [];
  }

  async stat(): Promise<{ size: number } | undefined> {
    return undefined;
  }
}
