import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, truncate, utimes } from 'node:fs/promises';
import * as path from 'node:path';
import got, { HTTPError, RequestError } from 'got';
import { IntegrityError, UserError } from '../errors.js';
import { openSegment } from '../format/segment.js';
import { EXIT } from '../exit-codes.js';
import { fromBase64, openManifest, ShareIntegrityError, ShareKeyError, shareKey } from './crypto.js';
import type { ShareLink } from './link.js';
import { scryptNode } from './native-scrypt.js';
import {
  fetchRuns, holeBytes, openRun, parseManifest, parseRecord, segmentPlaces, SHARE_SEGMENT_SIZE, walk,
  type FetchRun, type Manifest, type ShareRecord, type SharedFile,
} from './manifest.js';

const http = got.extend({ timeout: { request: 60_000 }, retry: { limit: 4, methods: ['GET'] } });

async function fetchRecord(link: ShareLink): Promise<ShareRecord> {
  try {
    return parseRecord(await http.get(`${link.gateway}/api/s/${link.id}`).json(), link.id);
  } catch (err) {
    if (err instanceof HTTPError) {
      if (err.response.statusCode === 404) throw new UserError('this link does not exist (or never did): ask its owner for a new one');
      if (err.response.statusCode === 410) {
        const reason = (JSON.parse(String(err.response.body)) as { error?: string }).error;
        throw new UserError(reason === 'expired' ? 'this link has expired: ask its owner for a new one' : 'this link was revoked by its owner');
      }
      throw new UserError(`the gateway answered ${err.response.statusCode}`, EXIT.STORE);
    }
    if (err instanceof RequestError) throw new UserError(`cannot reach the gateway ${link.gateway}: ${err.message}`, EXIT.STORE);
    throw err;
  }
}

/** Reads a link's record and opens its manifest; asks for the password only if the share has one. */
export async function openLink(link: ShareLink, password: () => Promise<string>): Promise<{ manifest: Manifest; record: ShareRecord }> {
  const record = await fetchRecord(link);
  const params = record.password ?? undefined;
  const key = await shareKey(link.linkKey, params ? { password: await password(), params } : undefined, scryptNode);
  try {
    return { manifest: parseManifest(openManifest(key, link.id, record.seq, fromBase64(record.manifest!)), record), record };
  } catch (err) {
    if (err instanceof ShareKeyError) throw new UserError(params ? 'wrong password (or a damaged link)' : 'the link\'s key does not open this share: the link is damaged or was altered');
    throw err;
  }
}

async function fetchRun(link: ShareLink, run: FetchRun): Promise<Buffer> {
  try {
    // responseType buffer: else got also decodes every body as text (most of the CPU of a download).
    return (await http.get(`${link.gateway}/api/s/${link.id}/p/${run.pack}`, { headers: { range: `bytes=${run.offset}-${run.offset + run.length - 1}` }, responseType: 'buffer' })).body;
  } catch (err) {
    if (err instanceof HTTPError && err.response.statusCode === 410) throw new UserError('the link was revoked or expired during the download');
    if (err instanceof HTTPError && err.response.statusCode === 404) throw new UserError('the gateway no longer has part of this share (changed or revoked meanwhile): run the same command again to resume', EXIT.STORE);
    throw new UserError(`downloading failed: ${(err as Error).message} (run the same command again to resume)`, EXIT.STORE);
  }
}

export interface GetProgress {
  (doneBytes: number, totalBytes: number): void;
}

/** The mount's own segment opener (native ChaCha20-Poly1305), with the share's error. */
function openNative(fileKey: Uint8Array, fileId: string, index: number, version: number, sealed: Uint8Array): Uint8Array {
  try {
    return openSegment(fileKey, fileId, index, version, sealed);
  } catch (err) {
    if (err instanceof IntegrityError) throw new ShareIntegrityError(`segment ${index} failed authentication`);
    throw err;
  }
}

const PART_SUFFIX = '.veilfs-part';
const IN_FLIGHT = 6;

/**
 * Downloads one shared file to `target`, verifying every segment. A
 * `.veilfs-part` file left by an interrupted run is resumed from its last
 * whole segment (everything in it was verified when written).
 */
async function downloadFile(link: ShareLink, file: SharedFile, target: string, progress: (bytes: number) => void): Promise<void> {
  const done = await stat(target).catch(() => undefined);
  if (done?.isFile() && done.size === file.size && Math.abs(done.mtimeMs - file.mtime) < 1) {
    progress(file.size);
    return;
  }
  const part = target + PART_SUFFIX;
  const partial = await stat(part).catch(() => undefined);
  const segments = Math.ceil(file.size / SHARE_SEGMENT_SIZE);
  const first = partial ? Math.min(Math.floor(partial.size / SHARE_SEGMENT_SIZE), segments) : 0;
  if (partial) await truncate(part, first * SHARE_SEGMENT_SIZE);
  progress(first * SHARE_SEGMENT_SIZE);
  const out = createWriteStream(part, { flags: partial ? 'a' : 'w' });
  const written = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  try {
    const runs = segments > first ? fetchRuns(segmentPlaces(file), first, segments - 1) : [];
    // Fetch a few runs ahead, write them in order.
    const pending: Promise<Uint8Array[]>[] = [];
    let next = 0;
    const launch = () => {
      while (pending.length < IN_FLIGHT && next < runs.length) {
        const run = runs[next++];
        const piece = 'hole' in run ? Promise.resolve([holeBytes(file, run.hole)]) : fetchRun(link, run).then((sealed) => openRun(file, run, sealed, openNative));
        // Awaited in order below; one failing while an earlier one is awaited must not crash the process.
        piece.catch(() => {});
        pending.push(piece);
      }
    };
    launch();
    while (pending.length) {
      const pieces = await pending.shift()!;
      launch();
      for (const piece of pieces) {
        if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        progress(piece.length);
      }
    }
  } catch (err) {
    out.end();
    await written.catch(() => {});
    if (err instanceof ShareIntegrityError) throw new UserError(`${path.basename(target)}: ${err.message}: the data was altered in the store or on the way (nothing unverified was written)`, EXIT.DAMAGED);
    throw err;
  }
  out.end();
  await written;
  const when = new Date(file.mtime);
  await utimes(part, when, when);
  await rename(part, target);
}

/**
 * `veilfs get`: a shared file to `dest` (or into it, if it is a folder), a
 * shared folder into `dest` (default: its name, here). Returns where it went.
 */
export async function getShare(link: ShareLink, manifest: Manifest, dest: string | undefined, progress: GetProgress = () => {}): Promise<string> {
  const root = manifest.root;
  const files = root.type === 'file' ? [{ path: '', file: root }] : [...walk(root)].filter((e) => e.node.type === 'file').map((e) => ({ path: e.path, file: e.node as SharedFile }));
  const total = files.reduce((n, f) => n + f.file.size, 0);
  let done = 0;
  const count = (bytes: number) => {
    done += bytes;
    progress(done, total);
  };
  if (root.type === 'file') {
    const into = dest && (await stat(dest).catch(() => undefined))?.isDirectory();
    const target = dest === undefined ? safeName(root.name) : into ? path.join(dest, safeName(root.name)) : dest;
    await downloadFile(link, root, target, count);
    return target;
  }
  const top = dest ?? safeName(root.name);
  await mkdir(top, { recursive: true });
  for (const entry of walk(root)) if (entry.node.type === 'dir') await mkdir(path.join(top, entry.path), { recursive: true });
  for (const { path: rel, file } of files) await downloadFile(link, file, path.join(top, rel), count);
  return top;
}

/** The root's name comes from the owner's path: never let it climb out of where we write. */
function safeName(name: string): string {
  const base = path.basename(name);
  return base && base !== '.' && base !== '..' ? base : 'share';
}
