/**
 * The page's service worker: a small file server inside the browser. The
 * page hands it a shared file's key and segment list; it answers requests
 * for `/v/<share>/<n>/<name>` by fetching only the segments that cover the
 * asked range, authenticating each before a byte of it is passed on. So a
 * video seeks by decrypting only what plays, and a download streams to disk
 * whatever its size. Nothing is cached and nothing is written anywhere.
 */
import { fetchRuns, holeBytes, openRun, segmentPlaces, SHARE_SEGMENT_SIZE, type FetchRun, type SegmentPlace, type SharedFile } from '../share/manifest.js';

interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  request: Request;
  respondWith(response: Promise<Response> | Response): void;
}
interface MessageEventWithPorts extends MessageEvent {
  ports: readonly MessagePort[];
}
interface Scope {
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void>; matchAll(): Promise<{ postMessage(m: unknown): void }[]> };
  addEventListener(type: 'install' | 'activate', listener: (e: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', listener: (e: FetchEvent) => void): void;
  addEventListener(type: 'message', listener: (e: MessageEventWithPorts) => void): void;
}
const scope = self as unknown as Scope;

export interface Registration {
  share: string;
  n: number;
  file: SharedFile;
  mime: string;
}

/** A registration with its segment map, built once: a seeking player sends many Range requests. */
const files = new Map<string, Registration & { places: Map<number, SegmentPlace> }>();

scope.addEventListener('install', (e) => e.waitUntil(scope.skipWaiting()));
scope.addEventListener('activate', (e) => e.waitUntil(scope.clients.claim()));
scope.addEventListener('message', (e) => {
  const message = e.data as { type: string; registration?: Registration };
  if (message.type === 'register' && message.registration) {
    const r = message.registration;
    files.set(`${r.share}/${r.n}`, { ...r, places: segmentPlaces(r.file) });
  }
  e.ports[0]?.postMessage({ ok: true });
});

scope.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  const m = /^\/v\/([0-9a-f]{32})\/(\d+)\//.exec(url.pathname);
  if (!m || url.origin !== location.origin) return;
  const registration = files.get(`${m[1]}/${m[2]}`);
  if (!registration) {
    e.respondWith(new Response('This page was idle too long: reload it.', { status: 409, headers: { 'content-type': 'text/plain' } }));
    return;
  }
  e.respondWith(serve(e.request, registration, url.searchParams.has('download')));
});

async function broadcast(message: unknown): Promise<void> {
  for (const client of await scope.clients.matchAll()) client.postMessage(message);
}

function parseRange(header: string | null, size: number): [number, number] | undefined | 'bad' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  if (m[1] === '') {
    const suffix = Math.min(Number(m[2]), size);
    return suffix === 0 ? 'bad' : [size - suffix, size - 1];
  }
  const first = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return first >= size || last < first ? 'bad' : [first, last];
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

async function serve(request: Request, r: Registration & { places: Map<number, SegmentPlace> }, download: boolean): Promise<Response> {
  const { file } = r;
  const range = parseRange(request.headers.get('range'), file.size);
  if (range === 'bad') return new Response(null, { status: 416, headers: { 'content-range': `bytes */${file.size}` } });
  const [first, last] = range ?? [0, file.size - 1];
  const headers: Record<string, string> = {
    'content-type': r.mime, 'accept-ranges': 'bytes', 'content-length': String(Math.max(0, last - first + 1)), 'cache-control': 'no-store',
  };
  if (range) headers['content-range'] = `bytes ${first}-${last}/${file.size}`;
  if (download) headers['content-disposition'] = contentDisposition(file.name);
  if (file.size === 0) return new Response(new Uint8Array(0), { status: 200, headers });
  return new Response(decryptedStream(r, first, last, download), { status: range ? 206 : 200, headers });
}

/** A busy gateway (429), a failing one (5xx) or a dropped connection: a few more tries, further apart. */
async function fetchRetrying(url: string, range: string, signal: AbortSignal): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(url, { headers: { range }, signal });
      if ((response.status !== 429 && response.status < 500) || attempt === 4) return response;
    } catch (err) {
      if (signal.aborted || attempt === 4) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
  }
}

const AHEAD = 4;

/** Plaintext bytes [first, last] of a file, a few fetch runs ahead of the reader. */
function decryptedStream(r: Registration & { places: Map<number, SegmentPlace> }, first: number, last: number, download: boolean): ReadableStream<Uint8Array> {
  const { file } = r;
  const runs = fetchRuns(r.places, Math.floor(first / SHARE_SEGMENT_SIZE), Math.floor(last / SHARE_SEGMENT_SIZE));
  let next = 0;
  let done = 0;
  let lastReport = 0;
  const total = last - first + 1;
  const aborter = new AbortController();
  const fetchPlain = async (run: FetchRun | { hole: number }): Promise<{ index: number; bytes: Uint8Array }[]> => {
    if ('hole' in run) return [{ index: run.hole, bytes: holeBytes(file, run.hole) }];
    const response = await fetchRetrying(`/api/s/${r.share}/p/${run.pack}`, `bytes=${run.offset}-${run.offset + run.length - 1}`, aborter.signal);
    if (response.status === 410 || response.status === 404) throw new Error('this link was revoked or changed meanwhile');
    if (response.status !== 206) throw new Error(`the server answered ${response.status}`);
    const sealed = new Uint8Array(await response.arrayBuffer());
    // Throws before any byte of a segment that does not authenticate is handed on.
    return openRun(file, run, sealed).map((bytes, i) => ({ index: run.segments[i].index, bytes }));
  };
  // Up to AHEAD runs in flight, consumed in order: round trips overlap with decryption.
  const ahead: Promise<{ index: number; bytes: Uint8Array }[]>[] = [];
  const fill = () => {
    while (ahead.length < AHEAD && next < runs.length) {
      const p = fetchPlain(runs[next++]);
      p.catch(() => {});
      ahead.push(p);
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        fill();
        const current = ahead.shift();
        if (!current) {
          controller.close();
          return;
        }
        const pieces = await current;
        fill();
        for (const { index, bytes } of pieces) {
          const start = index * SHARE_SEGMENT_SIZE;
          const from = Math.max(first - start, 0);
          const to = Math.min(last - start + 1, bytes.length);
          if (to > from) {
            controller.enqueue(bytes.slice(from, to));
            done += to - from;
          }
        }
        if (download && (Date.now() - lastReport > 200 || done === total)) {
          lastReport = Date.now();
          void broadcast({ type: 'progress', share: r.share, n: r.n, done, total });
        }
        if (next >= runs.length && !ahead.length) controller.close();
      } catch (err) {
        aborter.abort();
        void broadcast({ type: 'error', share: r.share, n: r.n, message: (err as Error).message });
        controller.error(err);
      }
    },
    cancel() {
      aborter.abort();
    },
  }, { highWaterMark: 1 });
}
