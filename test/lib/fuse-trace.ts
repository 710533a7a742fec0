import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const TRACING = '/sys/kernel/tracing';

/**
 * Counts the requests the kernel sends one FUSE mount, by opcode name
 * (LOOKUP, READDIRPLUS...), through the kernel's fuse tracepoints (Linux
 * 6.15 and later) in a trace instance of its own, so tests running side by
 * side do not see each other's. undefined where tracing is unavailable
 * (no tracefs, not root, an older kernel).
 */
export function fuseRequests(mountpoint: string): {
  count(run: () => Promise<unknown>): Promise<Map<string, number>>;
  /** Every request while run runs, in order: its opcode name and its length in bytes (header, arguments, data). */
  list(run: () => Promise<unknown>): Promise<{ op: string; len: number }[]>;
} | undefined {
  const events = path.join(TRACING, 'events/fuse/fuse_request_send');
  let connection: number;
  try {
    readFileSync(path.join(events, 'format'));
    // The connection a request names is the mount's device (0:N).
    connection = Number(execFileSync('mountpoint', ['-d', mountpoint], { encoding: 'utf8' }).trim().split(':')[1]);
  } catch {
    return undefined;
  }
  const list = async (run: () => Promise<unknown>) => {
    const instance = path.join(TRACING, 'instances', `veilfs-test-${process.pid}-${Date.now()}`);
    mkdirSync(instance);
    try {
      const event = path.join(instance, 'events/fuse/fuse_request_send');
      writeFileSync(path.join(event, 'filter'), `connection == ${connection}`);
      writeFileSync(path.join(event, 'enable'), '1');
      await run();
      writeFileSync(path.join(event, 'enable'), '0');
      const text = readFileSync(path.join(instance, 'trace'), 'utf8');
      return [...text.matchAll(/opcode \d+ \(FUSE_(\w+)\) len (\d+)/g)].map(([, op, len]) => ({ op, len: Number(len) }));
    } finally {
      rmdirSync(instance);
    }
  };
  return {
    list,
    async count(run) {
      const counts = new Map<string, number>();
      for (const { op } of await list(run)) counts.set(op, (counts.get(op) ?? 0) + 1);
      return counts;
    },
  };
}
