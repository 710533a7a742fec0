import { connect } from 'node:net';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { Request } from './protocol.js';

/**
 * Sends one request to a mount's control socket; calls onLine for every
 * JSON line back and resolves with the last one.
 */
export function control<T>(socketPath: string, request: Request, onLine: (value: T) => void = () => {}, timeoutMs?: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    // A daemon that stopped running JavaScript still accepts connections: never wait on it forever.
    if (timeoutMs) {
      socket.setTimeout(timeoutMs, () => {
        socket.destroy();
        reject(new UserError(`the daemon did not answer within ${timeoutMs / 1000} s`));
      });
    }
    let buffered = '';
    let last: T | undefined;
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        last = JSON.parse(buffered.slice(0, newline)) as T;
        buffered = buffered.slice(newline + 1);
        onLine(last);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EACCES' || err.code === 'EPERM') reject(new UserError('this drive was mounted by another user: only that user (or root) can ask its daemon', EXIT.NO_PERMISSION));
      else if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new UserError('the daemon of this drive does not answer (not mounted, or mounted by an older veilfs)'));
      else reject(err);
    });
    socket.on('end', () => {
      if (last === undefined) reject(new UserError('the daemon closed the control socket without answering'));
      else resolve(last);
    });
  });
}
