import cliProgress from 'cli-progress';
import { humanBytes, humanDuration } from '../util/human.js';

interface Line {
  update(done: number, total: number, payload?: Record<string, string>): void;
  /** A line of its own above the live one (the live line comes back at the next update). */
  log(text: string): void;
  stop(): void;
}

/** A live line on a terminal; nothing at all when stderr is not a terminal (scripts, logs). */
function liveLine(format: string): Line {
  if (!process.stderr.isTTY) return { update: () => {}, log: (text) => process.stderr.write(`${text}\n`), stop: () => {} };
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done, total, payload = {}) {
      if (!started) {
        bar.start(total, done, payload);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, payload);
    },
    log(text) {
      if (started) bar.stop();
      started = false;
      process.stderr.write(`${text}\n`);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Work that counts up to a known total (blocks checked, objects deleted). */
export function counter(label: string, unit: string): { update(done: number, total: number): void; stop(): void } {
  const line = liveLine(`${label} [{bar}] {value}/{total} ${unit}, ETA {eta_formatted}`);
  return { update: (done, total) => line.update(done, total), stop: () => line.stop() };
}

/** Something that counts down (uploads left): the total is the most ever seen left. */
export function countdown(label: string): { update(left: number, bytesLeft: number): void; log(text: string): void; stop(): void } {
  const line = liveLine(`${label} [{bar}] {value}/{total} objects, {bytesLeft} left{eta}`);
  let total = 0;
  let first: { at: number; bytes: number } | undefined;
  return {
    update(left, bytesLeft) {
      total = Math.max(total, left);
      // By bytes, not objects: a few big uploads can take longer than many small ones.
      first ??= { at: Date.now(), bytes: bytesLeft };
      const rate = (first.bytes - bytesLeft) / Math.max(1, Date.now() - first.at);
      const eta = rate > 0 && bytesLeft > 0 ? `, about ${humanDuration(bytesLeft / rate / 1000)}` : '';
      line.update(total - left, total, { bytesLeft: humanBytes(bytesLeft), eta });
    },
    log: (text) => line.log(text),
    stop: () => line.stop(),
  };
}

/** Bytes processed out of a known total. */
export function transfer(label: string): { update(done: number, total: number): void; stop(): void } {
  const line = liveLine(`${label} [{bar}] {doneBytes} of {totalBytes}, ETA {eta_formatted}`);
  return { update: (done, total) => line.update(done, total, { doneBytes: humanBytes(done), totalBytes: humanBytes(total) }), stop: () => line.stop() };
}

/** fsck: blocks checked of those found so far, and metadata keys read (format 3 reads both at once). */
export function checkProgress(): { blocks(done: number, total: number): void; keys(read: number): void; stop(): void } {
  const line = liveLine('checking [{bar}] {value}/{total} blocks, {keys} metadata keys read');
  let blocks = { done: 0, total: 0 };
  let keys = 0;
  const show = () => line.update(blocks.done, blocks.total, { keys: String(keys) });
  return {
    blocks: (done, total) => {
      blocks = { done, total };
      show();
    },
    keys: (read) => {
      keys = read;
      show();
    },
    stop: () => line.stop(),
  };
}
