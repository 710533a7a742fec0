import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ProxyFault = 'status' | 'reset' | 'hang';

/**
 * An HTTP proxy in front of the real S3 server that misbehaves on demand,
 * at the network level the S3 client really sees: error statuses, dropped
 * connections, requests that never get an answer.
 */
export class FaultProxy {
  requests = 0;
  private fault?: { kind: ProxyFault; left: number; status: number };
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: URL) {}

  /** The next `count` requests (Infinity: all) get this fault. */
  inject(kind: ProxyFault, count = 1, status = 503): void {
    this.fault = { kind, left: count, status };
  }

  clear(): void {
    this.fault = undefined;
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    const fault = this.fault && this.fault.left > 0 ? this.fault : undefined;
    if (fault) {
      fault.left--;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'hang') return;
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0"?><Error><Code>${fault.status === 503 ? 'SlowDown' : 'InjectedFault'}</Code></Error>`);
      return;
    }
    // Forward as is: the signature covers the host, so keep it.
    const upstream = http.request({
      host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers,
    }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
