import { fromRuns, toRuns } from '../format/segment.js';
import type { InodeRecord } from './inode.js';

/** [index, reference] of every stored block or segment of a file record, whatever its format. */
export function refsOf(r: InodeRecord): [number, string][] {
  return r.segs ? fromRuns(r.segs) : r.blocks ?? [];
}

/** Replaces a record's references, in its format's form. */
export function setRefs(r: InodeRecord, refs: [number, string][], packed: boolean): void {
  delete r.blocks;
  delete r.segs;
  if (packed) r.segs = toRuns(refs);
  else r.blocks = refs;
}

/** The store objects a record's data lives in: block objects (format 1) or packs (format 2). */
export function objectsOf(r: InodeRecord): string[] {
  if (r.segs) return [...new Set(r.segs.map((run) => run[2]))];
  return (r.blocks ?? []).map(([, id]) => id);
}

/** Format 2 and 3: how many segments of a record sit in each pack. */
export function packSegmentCounts(r: InodeRecord): Map<string, number> {
  const counts = new Map<string, number>();
  for (const run of r.segs ?? []) counts.set(run[2], (counts.get(run[2]) ?? 0) + run[1]);
  return counts;
}
