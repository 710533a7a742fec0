import { promises as fs } from 'node:fs';

export type LogLevel = 'error' | 'warn' | 'info';
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2 };
export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];
let threshold: LogLevel = 'info';

export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

/**
 * Daemon log lines go to stderr (the log file of a --daemon mount) with a
 * timestamp. Nothing secret is ever passed here: no passphrase, key or
 * credential reaches a message (test/s3-config.test.ts, privacy tests).
 */
export function daemonLog(message: string, level: LogLevel = 'info'): void {
  if (RANK[level] > RANK[threshold]) return;
  process.stderr.write(`${new Date().toISOString()} veilfs: ${level === 'info' ? '' : `${level}: `}${message}\n`);
}

const ROTATE_BYTES = 10 * 2 ** 20;
const KEPT = 3;

/** Before a daemon appends to its log: past 10 MiB it becomes .1 (and .1 .2, .2 .3; .3 goes). */
export async function rotateLog(file: string): Promise<void> {
  const size = await fs.stat(file).then((s) => s.size, () => 0);
  if (size < ROTATE_BYTES) return;
  for (let i = KEPT - 1; i >= 1; i--) await fs.rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {});
  await fs.rename(file, `${file}.1`);
}
