import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { errorMessage } from '../errors.js';
import type { Request, ShareReply, StatusReport, SyncProgress } from './protocol.js';
import type { ShareInfo, ShareRequest } from '../share/service.js';

export interface ControlHandlers {
  status(): StatusReport;
  /** Pending uploads right now. */
  pending(): { entries: number; bytes: number };
  /** Resolves once everything is in the store (true) or the store stopped taking uploads (false). */
  sync(): Promise<boolean>;
  shares: {
    create(request: ShareRequest): Promise<ShareInfo>;
    list(): Promise<ShareInfo[]>;
    revoke(target: string): Promise<string[]>;
  };
}

const PROGRESS_EVERY_MS = 500;

/** Serves the control socket of one mount until close(). */
export async function startControlServer(socketPath: string, handlers: ControlHandlers, log: (m: string) => void): Promise<Server> {
  await rm(socketPath, { force: true });
  const server = createServer((socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > 4096) socket.destroy();
        return;
      }
      socket.removeAllListeners('data');
      serve(socket, buffered.slice(0, newline), handlers).catch((err) => log(`control socket: ${errorMessage(err)}`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o600);
  server.unref();
  return server;
}

async function serve(socket: Socket, line: string, handlers: ControlHandlers): Promise<void> {
  const send = (value: unknown) => socket.write(`${JSON.stringify(value)}\n`);
  let request: Request;
  try {
    request = JSON.parse(line) as Request;
  } catch {
    send({ error: 'not a JSON request' });
    socket.end();
    return;
  }
  if (request.command === 'status') {
    send(handlers.status());
    socket.end();
    return;
  }
  if (request.command === 'sync') {
    const progress = (): SyncProgress => {
      const { entries, bytes } = handlers.pending();
      return { pendingObjects: entries, pendingBytes: bytes };
    };
    const timer = setInterval(() => send(progress()), PROGRESS_EVERY_MS);
    try {
      const stored = await handlers.sync();
      send({ ...progress(), done: true, stored });
    } catch (err) {
      send({ ...progress(), done: true, stored: false, error: errorMessage(err) });
    } finally {
      clearInterval(timer);
      socket.end();
    }
    return;
  }
  if (request.command === 'share' || request.command === 'shares' || request.command === 'unshare') {
    let reply: ShareReply;
    try {
      if (request.command === 'share') reply = { share: await handlers.shares.create(request.request) };
      else if (request.command === 'shares') reply = { shares: await handlers.shares.list() };
      else reply = { revoked: await handlers.shares.revoke(request.target) };
    } catch (err) {
      reply = { error: errorMessage(err) };
    }
    send(reply);
    socket.end();
    return;
  }
  send({ error: `unknown command ${JSON.stringify((request as { command?: unknown }).command)}` });
  socket.end();
}
