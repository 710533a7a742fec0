/**
 * What a share record and its manifest hold (FORMAT.md, "Shares"), and how
 * a reader turns a byte range of a shared file into pack ranges. Runs in
 * the browser too: no Node APIs.
 */
import { fromBase64, openShareSegment, ShareFormatError, type SharePasswordParams } from './crypto.js';

export const SHARE_SEGMENT_SIZE = 64 * 1024;

/** `[index, count, pack, offset, length, version]`, as in the vault's records. */
export type ShareRun = [number, number, string, number, number, number];

export interface SharedFile {
  type: 'file';
  name: string;
  size: number;
  mtime: number;
  fileId: string;
  key: string; // base64
  segs: ShareRun[];
}

export interface SharedDir {
  type: 'dir';
  name: string;
  mtime: number;
  entries: SharedNode[];
}

export type SharedNode = SharedFile | SharedDir;

export interface Manifest {
  id: string;
  seq: number;
  created: number;
  expires: number | null;
  snapshot: boolean;
  root: SharedNode;
}

/** The clear part of a share record: what the gateway reads. */
export interface ShareRecord {
  format: 'veilfs-share';
  version: 1;
  id: string;
  seq: number;
  created: number;
  expires?: number | null;
  revoked?: number;
  password?: SharePasswordParams | null;
  ranges?: Record<string, [number, number][]>;
  manifest?: string;
  owner?: string;
}

export const SHARE_ID = /^[0-9a-f]{32}$/;
export const PACK_ID = /^[0-9a-f]{32}$/;

/** Checks the shape of a record read from the store or the gateway. */
export function parseRecord(json: unknown, id?: string): ShareRecord {
  const r = json as ShareRecord;
  const ok = typeof r === 'object' && r !== null && r.format === 'veilfs-share' && r.version === 1
    && typeof r.id === 'string' && SHARE_ID.test(r.id) && (id === undefined || r.id === id)
    && Number.isSafeInteger(r.seq) && r.seq >= 0 && Number.isFinite(r.created);
  if (!ok) throw new ShareFormatError('not a veilfs share record');
  if (r.revoked !== undefined) return r;
  const ranges = r.ranges;
  const rangesOk = typeof ranges === 'object' && ranges !== null
    && Object.entries(ranges).every(([pack, list]) => PACK_ID.test(pack) && Array.isArray(list)
      && list.every((x) => Array.isArray(x) && x.length === 2 && Number.isSafeInteger(x[0]) && Number.isSafeInteger(x[1]) && x[0] >= 0 && x[1] > 0));
  if (!rangesOk || typeof r.manifest !== 'string' || !(r.expires === null || r.expires === undefined || Number.isFinite(r.expires))) {
    throw new ShareFormatError('malformed share record');
  }
  return r;
}

export type ShareState = 'live' | 'revoked' | 'expired';

export function shareState(r: ShareRecord, now = Date.now()): ShareState {
  if (r.revoked !== undefined) return 'revoked';
  if (r.expires != null && r.expires <= now) return 'expired';
  return 'live';
}

/** Checks a decrypted manifest's shape, so a reader never indexes into garbage. */
export function parseManifest(json: unknown, record: ShareRecord): Manifest {
  const m = json as Manifest;
  if (typeof m !== 'object' || m === null || m.id !== record.id || m.seq !== record.seq) throw new ShareFormatError('the manifest belongs to another share');
  checkNode(m.root, 0);
  return m;
}

function checkNode(node: SharedNode, depth: number): void {
  if (depth > 256 || typeof node !== 'object' || node === null || typeof node.name !== 'string' || !validName(node.name, depth)) {
    throw new ShareFormatError('malformed manifest');
  }
  if (node.type === 'dir') {
    if (!Array.isArray(node.entries)) throw new ShareFormatError('malformed manifest');
    for (const child of node.entries) checkNode(child, depth + 1);
    return;
  }
  const okFile = node.type === 'file' && Number.isSafeInteger(node.size) && node.size >= 0 && /^[0-9a-f]{32}$/.test(node.fileId)
    && fromBase64(node.key).length === 32 && Array.isArray(node.segs)
    && node.segs.every((run) => Array.isArray(run) && run.length === 6 && PACK_ID.test(String(run[2]))
      && [run[0], run[1], run[3], run[4], run[5]].every((n) => Number.isSafeInteger(n) && (n as number) >= 0));
  if (!okFile) throw new ShareFormatError('malformed manifest');
}

/** A name a recipient can write to disk: the root may be anything the owner named it, children are plain names. */
function validName(name: string, depth: number): boolean {
  if (name.length === 0 || name.length > 255) return false;
  return depth === 0 || (name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0'));
}

/** Where one segment of a shared file is stored; undefined for a hole (reads as zeros). */
export interface SegmentPlace {
  index: number;
  pack: string;
  offset: number;
  length: number;
  version: number;
}

export function segmentPlaces(file: SharedFile): Map<number, SegmentPlace> {
  const places = new Map<number, SegmentPlace>();
  for (const [index, count, pack, offset, length, version] of file.segs) {
    for (let i = 0; i < count; i++) places.set(index + i, { index: index + i, pack, offset: offset + i * length, length, version: version + i });
  }
  return places;
}

/** Segments stored back to back in one pack: fetched with one ranged request. */
export interface FetchRun {
  pack: string;
  offset: number;
  /** Sealed bytes of all its segments. */
  length: number;
  segments: SegmentPlace[];
}

/**
 * The requests that cover segments [first, last] of a file: consecutive
 * segments stored back to back in one pack go together, up to maxBytes.
 * Holes come back as runs without a pack.
 */
export function fetchRuns(places: Map<number, SegmentPlace>, first: number, last: number, maxBytes = 2 ** 20): (FetchRun | { hole: number })[] {
  const out: (FetchRun | { hole: number })[] = [];
  let run: FetchRun | undefined;
  for (let index = first; index <= last; index++) {
    const place = places.get(index);
    if (!place) {
      run = undefined;
      out.push({ hole: index });
      continue;
    }
    if (run && run.pack === place.pack && run.offset + run.length === place.offset && run.length + place.length <= maxBytes) {
      run.segments.push(place);
      run.length += place.length;
    } else {
      run = { pack: place.pack, offset: place.offset, length: place.length, segments: [place] };
      out.push(run);
    }
  }
  return out;
}

/** Opens one sealed segment (throws if it does not authenticate). */
export type SegmentOpener = (fileKey: Uint8Array, fileId: string, index: number, version: number, sealed: Uint8Array) => Uint8Array;

/**
 * Opens the sealed bytes of one fetch run: the plaintext of each segment,
 * cut to the file's size. Node passes its native opener (about 20 times
 * faster than the portable one the browser uses).
 */
export function openRun(file: SharedFile, run: FetchRun, sealed: Uint8Array, openSegment: SegmentOpener = openShareSegment): Uint8Array[] {
  const key = fromBase64(file.key);
  let at = 0;
  return run.segments.map((s) => {
    if (at + s.length > sealed.length) throw new ShareFormatError('a pack range came back short');
    const plain = openSegment(key, file.fileId, s.index, s.version, sealed.subarray(at, at + s.length));
    at += s.length;
    return plain.subarray(0, Math.max(0, Math.min(SHARE_SEGMENT_SIZE, file.size - s.index * SHARE_SEGMENT_SIZE)));
  });
}

/** A hole's plaintext: zeros up to the file's size. */
export function holeBytes(file: SharedFile, index: number): Uint8Array {
  return new Uint8Array(Math.max(0, Math.min(SHARE_SEGMENT_SIZE, file.size - index * SHARE_SEGMENT_SIZE)));
}

/** Every file and folder under a shared folder, with paths relative to it ('/'-separated), parents first. */
export function* walk(dir: SharedDir, prefix = ''): Generator<{ path: string; node: SharedNode }> {
  for (const child of dir.entries) {
    const path = prefix + child.name;
    yield { path, node: child };
    if (child.type === 'dir') yield* walk(child, `${path}/`);
  }
}
