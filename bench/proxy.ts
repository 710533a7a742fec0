import * as net from 'node:net';

/*
 * A TCP proxy in front of the S3 server: adds a round-trip time (half on
 * the way in, half on the way out, order kept) and counts the HTTP
 * requests that pass, by method. Every S3 client in a benchmark goes
 * through the same proxy, so added latency and request counts are
 * measured alike for all of them.
 */
export class S3Proxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  readonly counts = new Map<string, number>();
  rttMs = 0;

  constructor(private readonly upstream: URL) {}

  async start(): Promise<string> {
    this.server = net.createServer((client) => this.connect(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as net.AddressInfo).port}`;
  }

  private connect(client: net.Socket): void {
    const server = net.connect(Number(this.upstream.port), this.upstream.hostname);
    // Forwarded as it comes: with Nagle's algorithm on (net's default), a small write waiting for the ACK of the
    // last one met the peer's delayed ACK, and requests through the proxy at "+0 ms" took 17 ms, not 4.
    client.setNoDelay(true);
    server.setNoDelay(true);
    this.sockets.add(client).add(server);
    let carry = '';
    this.pipe(client, server, (chunk) => {
      // Request lines may span chunks: keep the tail of the last one.
      const text = carry + chunk.toString('latin1');
      for (const m of text.matchAll(/(?:^|\r\n)(GET|PUT|HEAD|DELETE|POST) \S+ HTTP\/1\.1\r\n/g)) this.counts.set(m[1], (this.counts.get(m[1]) ?? 0) + 1);
      carry = text.slice(-64);
    });
    this.pipe(server, client);
    const close = () => {
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    client.on('error', close).on('close', close);
    server.on('error', close).on('close', close);
  }

  /**
   * Forwards chunks after half the round trip, strictly in order: one
   * queue and one timer per direction (timers of different lengths that
   * come due together may fire in any order, which reorders a stream).
   */
  private pipe(from: net.Socket, to: net.Socket, inspect?: (chunk: Buffer) => void): void {
    const queue: { due: number; chunk: Buffer | null }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      while (queue.length && queue[0].due <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (chunk === null) to.end();
        else if (to.writable) to.write(chunk);
      }
      if (queue.length) timer = setTimeout(flush, queue[0].due - Date.now());
    };
    const send = (chunk: Buffer | null) => {
      if (this.rttMs === 0 && queue.length === 0) {
        if (chunk === null) to.end();
        else to.write(chunk);
        return;
      }
      queue.push({ due: Date.now() + this.rttMs / 2, chunk });
      timer ??= setTimeout(flush, this.rttMs / 2);
    };
    from.on('data', (chunk: Buffer) => {
      inspect?.(chunk);
      send(chunk);
    });
    from.on('end', () => send(null));
  }

  /** Requests by method since the last reset. */
  take(): Record<string, number> {
    const out = Object.fromEntries(this.counts);
    this.counts.clear();
    return out;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
