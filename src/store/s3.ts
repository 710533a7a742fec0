import type * as http from 'node:http';
import type * as https from 'node:https';
import type { Got } from 'got';
import { Limiter } from '../util/limiter.js';
import type { S3Config } from './s3-config.js';
import { checkKey, ConflictError, NotFoundError, StoreError, TransientStoreError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from './types.js';

export interface S3Options {
  /** Requests in flight at once. */
  concurrency?: number;
  /** Bound on one request; a slower answer is a (retryable) timeout. */
  requestTimeoutMs?: number;
  log?: (message: string) => void;
}

interface Reply {
  status: number;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

interface RequestOptions {
  query?: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * An S3-compatible object store over got, signed with aws4 (SigV4). One
 * call is one request: 5xx, throttling, resets and timeouts become
 * TransientStoreError for the retry layer (RetryingStore) to handle; any
 * other 4xx is final. Messages name the operation and key, never
 * credentials or signed URLs.
 */
export class S3Store implements ObjectStore {
  readonly location: string;
  readonly concurrency: number;
  /** got, aws4 and node:https are loaded with the first request (about 0.1 s): a command that never reaches S3 does not pay for them. */
  private http?: Promise<{ client: Got; RequestError: typeof import('got').RequestError; sign: typeof import('aws4').sign }>;
  private readonly limiter: Limiter;
  private readonly requestTimeoutMs: number;
  private readonly log: (message: string) => void;
  private agents?: { http: http.Agent; https: https.Agent };
  /** Servers without If-None-Match fall back to HEAD + PUT (single writer only). */
  private conditionalPut: 'yes' | 'no' | 'unknown' = 'unknown';

  constructor(private readonly config: S3Config, opts: S3Options = {}) {
    this.location = `s3://${config.bucket}/${config.prefix}`;
    this.concurrency = opts.concurrency ?? 16;
    this.limiter = new Limiter(this.concurrency);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 20_000;
    this.log = opts.log ?? (() => {});
  }

  private loadHttp() {
    return (this.http ??= Promise.all([import('got'), import('aws4'), import('node:http'), import('node:https')]).then(([{ default: got, RequestError }, { default: aws4 }, http, https]) => {
      const agentOptions = { keepAlive: true, maxSockets: this.concurrency };
      this.agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
      return {
        client: got.extend({
          agent: this.agents,
          retry: { limit: 0 },
          throwHttpErrors: false,
          decompress: false,
          followRedirect: false,
          responseType: 'buffer',
        }),
        RequestError,
        sign: aws4.sign,
      };
    }));
  }

  private request(method: string, key: string | undefined, opts: RequestOptions = {}): Promise<Reply> {
    return this.limiter.run(() => this.send(method, key, opts));
  }

  private async send(method: string, key: string | undefined, opts: RequestOptions): Promise<Reply> {
    const { host, path, url } = requestTarget(this.config, key, opts.query);
    const headers: Record<string, string> = { ...opts.headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    if (opts.body) headers['content-length'] = String(opts.body.length);
    const { accessKeyId, secretAccessKey, sessionToken } = this.config.credentials;
    const { client, RequestError, sign } = await this.loadHttp();
    const signed = sign({ host, path, method, headers, service: 's3', region: this.config.region }, { accessKeyId, secretAccessKey, sessionToken });
    const what = `S3 ${method} ${key ?? '(bucket)'}`;
    let res;
    try {
      res = await client(url, {
        method: method as 'GET',
        headers: signed.headers as Record<string, string>,
        body: opts.body ? Buffer.from(opts.body.buffer, opts.body.byteOffset, opts.body.byteLength) : undefined,
        timeout: { request: this.requestTimeoutMs },
      });
    } catch (err) {
      if (err instanceof RequestError) {
        throw new TransientStoreError(`${what}: ${err.code ?? err.name}: ${err.message.replace(/https?:\/\/\S+/g, '<url>')}`, key);
      }
      throw err;
    }
    if (RETRY_STATUS.has(res.statusCode)) throw new TransientStoreError(`${what}: HTTP ${res.statusCode}${s3Code(res.rawBody)}`, key);
    return { status: res.statusCode, body: res.rawBody, headers: res.headers };
  }

  /** The reply said no: a missing bucket and refused credentials get their own words and fix. */
  private fail(reply: Reply, what: string, key?: string): never {
    const code = s3Code(reply.body).trim();
    if (code === 'NoSuchBucket') throw new StoreError(`S3 bucket ${this.config.bucket} does not exist (create it, or check the bucket name and the endpoint)`, key);
    // A HEAD's 403 has no body to name the reason.
    if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken'].includes(code) || (reply.status === 403 && !code)) {
      throw new StoreError(`S3 refused the credentials (${code || 'HTTP 403'}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile, and that they may use bucket ${this.config.bucket}`, key);
    }
    throw new StoreError(`S3 ${what} ${key ?? ''}: HTTP ${reply.status}${code ? ` ${code}` : ''}`.replace(/\s+:/, ':'), key);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    checkKey(key);
    if (range && range.length <= 0) return Buffer.alloc(0);
    const headers: Record<string, string> = range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
    const reply = await this.request('GET', key, { headers });
    if (reply.status === 404 && s3Code(reply.body).trim() !== 'NoSuchBucket') throw new NotFoundError(key);
    if (reply.status === 416) return Buffer.alloc(0);
    if (reply.status !== 200 && reply.status !== 206) this.fail(reply, 'GET', key);
    if (range && reply.status === 200) return reply.body.subarray(range.offset, range.offset + range.length);
    return reply.body;
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    if (options.ifAbsent && this.conditionalPut === 'no') {
      if (await this.stat(key)) throw new ConflictError(key);
      return this.put(key, data);
    }
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (options.ifAbsent) headers['if-none-match'] = '*';
    const reply = await this.request('PUT', key, { headers, body: data });
    if (reply.status === 200 || reply.status === 201) {
      if (options.ifAbsent) this.conditionalPut = 'yes';
      return;
    }
    if (options.ifAbsent && (reply.status === 412 || reply.status === 409)) throw new ConflictError(key);
    if (options.ifAbsent && reply.status === 501 && this.conditionalPut !== 'yes') {
      this.conditionalPut = 'no';
      this.log('this S3 server does not support conditional PUT (If-None-Match); falling back to HEAD + PUT, which is safe only with one writer');
      return this.put(key, data, options);
    }
    this.fail(reply, 'PUT', key);
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const reply = await this.request('DELETE', key);
    if (reply.status !== 204 && reply.status !== 200 && reply.status !== 404) this.fail(reply, 'DELETE', key);
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    checkKey(key);
    const reply = await this.request('HEAD', key);
    if (reply.status === 404) return undefined;
    if (reply.status !== 200) this.fail(reply, 'HEAD', key);
    return { size: Number(reply.headers['content-length'] ?? 0) };
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    const full = this.config.prefix + prefix;
    do {
      const query = ['list-type=2', 'max-keys=1000', `prefix=${encodeRfc3986(full)}`];
      if (token) query.push(`continuation-token=${encodeRfc3986(token)}`);
      // SigV4 wants query parameters sorted.
      const reply = await this.request('GET', undefined, { query: query.sort().join('&') });
      if (reply.status === 404) throw new StoreError(`S3 bucket ${this.config.bucket} does not exist`);
      if (reply.status !== 200) this.fail(reply, 'LIST', prefix);
      const xml = reply.body.toString('utf8');
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = unescapeXml(tag(m[1], 'Key') ?? '');
        if (!key.startsWith(this.config.prefix)) continue;
        out.push({ key: key.slice(this.config.prefix.length), size: Number(tag(m[1], 'Size') ?? 0), mtime: Date.parse(tag(m[1], 'LastModified') ?? '') || 0 });
      }
      token = tag(xml, 'IsTruncated') === 'true' ? unescapeXml(tag(xml, 'NextContinuationToken') ?? '') || undefined : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async close(): Promise<void> {
    // keep-alive sockets would hold the process open
    this.agents?.http.destroy();
    this.agents?.https.destroy();
  }
}

/** Host, path and URL of a request, path-style (host/bucket/key) or virtual-hosted (bucket.host/key). */
export function requestTarget(config: Pick<S3Config, 'endpoint' | 'bucket' | 'pathStyle' | 'prefix'>, key?: string, query?: string): { host: string; path: string; url: string } {
  const { endpoint, bucket, pathStyle } = config;
  const host = pathStyle ? endpoint.host : `${bucket}.${endpoint.host}`;
  const base = endpoint.pathname.replace(/\/+$/, '');
  const bucketPath = pathStyle ? `/${bucket}` : '';
  const objectPath = key === undefined ? (pathStyle ? '' : '/') : `/${encodeKey(config.prefix + key)}`;
  const path = `${base}${bucketPath}${objectPath}` || '/';
  const full = query ? `${path}?${query}` : path;
  return { host, path: full, url: `${endpoint.protocol}//${host}${full}` };
}

/** SigV4 canonical encoding: encodeURIComponent leaves !'()* as they are. */
function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function encodeKey(key: string): string {
  return key.split('/').map(encodeRfc3986).join('/');
}

function tag(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-f]+);/gi, (_, e: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
    if (named[e.toLowerCase()]) return named[e.toLowerCase()];
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

/** The S3 error code from an XML error body, for messages. */
function s3Code(body: Buffer | undefined): string {
  const m = body && /<Code>([^<]+)<\/Code>/.exec(body.subarray(0, 2048).toString('utf8'));
  return m ? ` ${m[1]}` : '';
}
