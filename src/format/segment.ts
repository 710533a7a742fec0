import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../errors.js';
import { open, OVERHEAD, seal } from '../crypto/xchacha.js';
import { paddedPlaintext } from './block.js';

/**
 * Format 2 seals files in 64 KiB segments. The AAD binds a segment to its
 * file, its index and its version, but not to where it is stored: repacking
 * moves sealed bytes without reopening them.
 */
export const SEGMENT_SIZE = 64 * 1024;
export const SEGMENT_OVERHEAD = OVERHEAD;
const AAD_LABEL = Buffer.from('veilfs v2 segment\0');

/** Where one sealed segment lives, and which version of it the metadata expects. */
export interface SegmentRef {
  pack: string; // 32 hex
  offset: number;
  length: number;
  version: number;
}

const INDEX_AT = AAD_LABEL.length + 16;
const VERSION_AT = INDEX_AT + 8;
/** The label and file id part of the AAD, by file id: every segment of a sequential read shares it. */
let lastPrefix: { fileId: string; aad: Buffer } | undefined;

function segmentAad(fileId: string, index: number, version: number): Buffer {
  if (lastPrefix?.fileId !== fileId) {
    const prefix = Buffer.alloc(VERSION_AT + 8);
    AAD_LABEL.copy(prefix, 0);
    prefix.write(fileId, AAD_LABEL.length, 16, 'hex');
    lastPrefix = { fileId, aad: prefix };
  }
  const aad = Buffer.from(lastPrefix.aad);
  // Big-endian u64s; both numbers are below 2^53, so two 32-bit halves hold them exactly.
  aad.writeUInt32BE(Math.floor(index / 2 ** 32), INDEX_AT);
  aad.writeUInt32BE(index >>> 0, INDEX_AT + 4);
  aad.writeUInt32BE(Math.floor(version / 2 ** 32), VERSION_AT);
  aad.writeUInt32BE(version >>> 0, VERSION_AT + 4);
  return aad;
}

export function sealSegment(fileKey: Uint8Array, fileId: string, index: number, version: number, plain: Uint8Array, used: number): Buffer {
  return seal(fileKey, paddedPlaintext(plain, used, SEGMENT_SIZE), segmentAad(fileId, index, version));
}

export function openSegment(fileKey: Uint8Array, fileId: string, index: number, version: number, sealed: Uint8Array): Buffer {
  const plain = open(fileKey, sealed, segmentAad(fileId, index, version));
  if (plain.length > SEGMENT_SIZE) throw new IntegrityError('segment larger than the segment size');
  return plain;
}

/** A random start for this process's versions: never the same twice, even across crashes. */
export function versionCounter(): () => number {
  let next = randomBytes(6).readUIntBE(0, 6);
  return () => next++;
}

// ---- references: a compact string in memory, runs in records ----

export function formatRef(r: SegmentRef): string {
  return `${r.pack}.${r.offset}.${r.length}.${r.version}`;
}

export function parseRef(ref: string): SegmentRef {
  const [pack, offset, length, version] = ref.split('.');
  return { pack, offset: Number(offset), length: Number(length), version: Number(version) };
}

/** `[index, count, pack, offset, length, version]`: `count` segments stored back to back. */
export type SegmentRun = [number, number, string, number, number, number];

/** Collapses references into runs (segments sealed one after another into one pack form one run). */
export function toRuns(entries: Iterable<[number, string]>): SegmentRun[] {
  const sorted = [...entries].sort((a, b) => a[0] - b[0]);
  const runs: SegmentRun[] = [];
  let run: SegmentRun | undefined;
  for (const [index, ref] of sorted) {
    const r = parseRef(ref);
    if (run && run[0] + run[1] === index && run[2] === r.pack && run[3] + run[1] * run[4] === r.offset && run[4] === r.length && run[5] + run[1] === r.version) {
      run[1]++;
      continue;
    }
    run = [index, 1, r.pack, r.offset, r.length, r.version];
    runs.push(run);
  }
  return runs;
}

export function fromRuns(runs: SegmentRun[]): [number, string][] {
  const out: [number, string][] = [];
  for (const [index, count, pack, offset, length, version] of runs) {
    if (!/^[0-9a-f]{32}$/.test(pack) || ![index, count, offset, length, version].every(Number.isSafeInteger)) {
      throw new IntegrityError('malformed segment run');
    }
    for (let i = 0; i < count; i++) out.push([index + i, formatRef({ pack, offset: offset + i * length, length, version: version + i })]);
  }
  return out;
}
