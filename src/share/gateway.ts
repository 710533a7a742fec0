import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { errorMessage } from '../errors.js';
import { packKey } from '../format/names.js';
import type { ObjectStore } from '../store/types.js';
import { PACK_ID, SHARE_ID, shareState, type ShareRecord } from './manifest.js';
import { readNewestRecord } from './records.js';

/**
 * `veilfs serve`: hands out share records and exactly the pack ranges a
 * live share exposes, plus the page that decrypts them in the browser. It
 * holds the store's credentials only: it can read no name and no byte of
 * any file. Everything else is a 404.
 */
export interface GatewayOptions {
  store: ObjectStore;
  /** The bundled page (dist/web). */
  webDir?: string;
  log?: (line: string) => void;
  /** Store reads at once; more wait, and past `queueLimit` waiting get 429. */
  concurrency?: number;
  queueLimit?: number;
  /** How long a record read from the store is reused (a revocation shows within this). */
  recordTtlMs?: number;
}

/** One ranged read at most: a reader asks for a few segments at a time. */
export const MAX_RANGE_BYTES = 8 * 2 ** 20;
const IMMUTABLE = 'public, max-age=31536000, immutable';

export const DEFAULT_WEB_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');

const STATIC: Record<string, string> = {
  '/app.js': 'text/javascript; charset=utf-8',
  '/sw.js': 'text/javascript; charset=utf-8',
  '/app.css': 'text/css; charset=utf-8',
};

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export function startGateway(opts: GatewayOptions, listen: { host: string; port: number }): Promise<Server> {
  const handler = gatewayHandler(opts);
  const server = createServer((req, res) => void handler(req, res));
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}

export function gatewayHandler(opts: GatewayOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const webDir = opts.webDir ?? DEFAULT_WEB_DIR;
  const log = opts.log ?? (() => {});
  const ttl = opts.recordTtlMs ?? 2000;
  // (lru-cache reads a ttl of 0 as "forever": no cache at all then.)
  const records = ttl > 0 ? new LRUCache<string, { record?: ShareRecord }>({ max: 10_000, ttl }) : undefined;
  const concurrency = opts.concurrency ?? 16;
  const queueLimit = opts.queueLimit ?? 256;
  let active = 0;
  const waiting: (() => void)[] = [];
  const withStore = async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= concurrency) {
      if (waiting.length >= queueLimit) throw new HttpError(429, 'too many requests at once, try again', { 'retry-after': '1' });
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else active++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
  const statics = new Map<string, Promise<Buffer>>();
  const asset = (name: string) => {
    let bytes = statics.get(name);
    if (!bytes) {
      bytes = readFile(path.join(webDir, name));
      bytes.catch(() => statics.delete(name));
      statics.set(name, bytes);
    }
    return bytes;
  };

  const newestRecord = async (id: string): Promise<ShareRecord | undefined> => {
    const cached = records?.get(id);
    if (cached) return cached.record;
    const record = await withStore(() => readNewestRecord(opts.store, id));
    records?.set(id, { record });
    return record;
  };

  /** The share's record if it is live; a 404 or 410 otherwise. */
  const liveRecord = async (id: string): Promise<ShareRecord> => {
    const record = SHARE_ID.test(id) ? await newestRecord(id) : undefined;
    if (!record) throw new HttpError(404, 'unknown');
    const state = shareState(record);
    if (state !== 'live') throw new HttpError(410, state);
    return record;
  };

  const servePack = async (req: IncomingMessage, res: ServerResponse, id: string, pack: string) => {
    if (!PACK_ID.test(pack)) throw new HttpError(404, 'unknown');
    const record = await liveRecord(id);
    const allowed = record.ranges?.[pack];
    if (!allowed) throw new HttpError(404, 'unknown');
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) throw new HttpError(416, 'one byte range (Range: bytes=FIRST-LAST) is required');
    const first = Number(m[1]);
    const last = Number(m[2]);
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first || last - first + 1 > MAX_RANGE_BYTES) {
      throw new HttpError(416, `a range of 1 to ${MAX_RANGE_BYTES} bytes is required`);
    }
    // Inside one of the share's ranges (they are merged, so a run of segments lies within one).
    if (!allowed.some(([offset, length]) => first >= offset && last < offset + length)) throw new HttpError(404, 'unknown');
    const bytes = await withStore(() => opts.store.get(packKey(pack), { offset: first, length: last - first + 1 }));
    if (bytes.length !== last - first + 1) throw new HttpError(502, 'the store returned a short range');
    head(res, 206, {
      'content-type': 'application/octet-stream', 'content-length': String(bytes.length),
      'content-range': `bytes ${first}-${last}/*`, 'accept-ranges': 'bytes',
      etag: `"${pack}"`, 'cache-control': IMMUTABLE, 'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  };

  const serveRecord = async (res: ServerResponse, id: string) => {
    const record = await liveRecord(id);
    const { owner: _owner, ...visible } = record;
    sendJson(res, 200, visible, { 'cache-control': 'no-cache' });
  };

  const servePage = async (res: ServerResponse) => {
    head(res, 200, {
      'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'referrer-policy': 'no-referrer', 'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; frame-src 'self' blob:; object-src 'self' blob:; style-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'",
    });
    res.end(await asset('index.html'));
  };

  return async (req, res) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://gateway');
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'only GET', { allow: 'GET, HEAD' });
      let m: RegExpExecArray | null;
      if ((m = /^\/api\/s\/([^/]+)\/p\/([^/]+)$/.exec(url.pathname))) await servePack(req, res, m[1], m[2]);
      else if ((m = /^\/api\/s\/([^/]+)$/.exec(url.pathname))) await serveRecord(res, m[1]);
      else if (/^\/s\/[0-9a-f]{32}$/.test(url.pathname)) await servePage(res);
      else if (STATIC[url.pathname]) {
        const bytes = await asset(url.pathname.slice(1));
        head(res, 200, { 'content-type': STATIC[url.pathname], 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', ...(url.pathname === '/sw.js' ? { 'service-worker-allowed': '/' } : {}) });
        res.end(req.method === 'HEAD' ? undefined : bytes);
      } else if (url.pathname === '/') {
        head(res, 200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('veilfs share gateway: open a share link (/s/<id>#<key>)\n');
      } else throw new HttpError(404, 'unknown');
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 502;
      if (!(err instanceof HttpError)) log(`store error on ${url.pathname}: ${errorMessage(err)}`);
      if (!res.headersSent) sendJson(res, status, { error: err instanceof HttpError ? err.message : 'the store failed' }, err instanceof HttpError ? err.headers : {});
      else res.destroy();
    }
    // The path holds no key (the fragment never reaches a server); the query is dropped.
    log(`${req.socket.remoteAddress ?? '-'} ${req.method} ${url.pathname} ${res.statusCode} ${res.getHeader('content-length') ?? 0}B ${Date.now() - started}ms`);
  };
}

/** Headers set one by one (not through writeHead) so the request log can read the length back. */
function head(res: ServerResponse, status: number, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.writeHead(status);
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  head(res, status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store', ...headers });
  res.end(body);
}
