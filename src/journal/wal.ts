import { constants, fstatSync, promises as fs, writevSync } from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';

/**
 * What a record asks of the store. Notes and parts are kept locally and
 * never uploaded: a part is a piece of an object still being filled.
 */
export interface WalOp {
  op: 'put' | 'delete' | 'note' | 'part';
  key: string;
  ifAbsent?: boolean;
  /** Parts: where the piece goes in its object. */
  at?: number;
}

/** A record in the log: where its payload lies. */
export interface WalRecord extends WalOp {
  segment: number;
  /** Offset of the payload in the segment file. */
  offset: number;
  length: number;
}

export interface WalOptions {
  /** A segment is closed and a new one started past this size. */
  segmentBytes?: number;
  log?: (message: string) => void;
  /** Called once the directory, removed while the log was open, is made again. */
  onDirRemade?: () => Promise<void>;
}

// "VWL1": version 1 of the journal record format.
const MAGIC = 0x56574c31;
const PREFIX_BYTES = 16;
const SEGMENT_DIGITS = 10;
const SEGMENT_SUFFIX = '.wal';
const SYNC_WRITE_BYTES = 256 * 1024;

interface Segment {
  no: number;
  handle: fs.FileHandle;
  size: number;
  /** Records not yet released. */
  live: number;
  unsynced: boolean;
}

/**
 * An append-only write-ahead log in segment files. Appends are written one
 * after another (never in parallel), so after the process is killed the
 * log is a valid prefix followed by at most one torn record; each record
 * carries a CRC so a torn or lost tail after a power cut is found too.
 * sync() makes everything appended so far survive a power cut. A segment
 * file is deleted once every record in it has been released.
 */
export class Wal {
  private readonly segments = new Map<number, Segment>();
  private current!: Segment;
  private chain: Promise<unknown> = Promise.resolve();
  private dirUnsynced = false;
  private liveBytes = 0;
  private closed = false;
  private readonly segmentBytes: number;

  private constructor(readonly dir: string, private readonly opts: WalOptions) {
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
  }

  /** Opens (creating) the log and returns the records that survived, oldest first. */
  static async open(dir: string, opts: WalOptions = {}): Promise<{ wal: Wal; records: WalRecord[] }> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const wal = new Wal(dir, opts);
    const records = await wal.recover(opts.log ?? (() => {}));
    await wal.startSegment();
    return { wal, records };
  }

  private segmentPath(no: number): string {
    return path.join(this.dir, String(no).padStart(SEGMENT_DIGITS, '0') + SEGMENT_SUFFIX);
  }

  private async recover(log: (message: string) => void): Promise<WalRecord[]> {
    const names = (await fs.readdir(this.dir)).filter((n) => n.endsWith(SEGMENT_SUFFIX)).sort();
    const records: WalRecord[] = [];
    let torn = false;
    for (const name of names) {
      const no = Number(name.slice(0, -SEGMENT_SUFFIX.length));
      const file = path.join(this.dir, name);
      if (torn || !Number.isSafeInteger(no)) {
        // Everything after a torn record was never acknowledged by a sync.
        await fs.unlink(file);
        continue;
      }
      const data = await fs.readFile(file);
      const found = scanSegment(data, no);
      records.push(...found.records);
      if (found.validBytes < data.length) {
        torn = true;
        log(`journal: dropped ${data.length - found.validBytes} bytes of a torn record in ${name} (written but never synced before the daemon or machine stopped)`);
      }
      if (found.records.length === 0) {
        await fs.unlink(file);
        continue;
      }
      const handle = await fs.open(file, constants.O_RDWR);
      if (found.validBytes < data.length) await handle.truncate(found.validBytes);
      this.segments.set(no, { no, handle, size: found.validBytes, live: found.records.length, unsynced: false });
      this.liveBytes += found.records.reduce((n, r) => n + r.length, 0);
    }
    return records;
  }

  private async startSegment(): Promise<void> {
    const no = Math.max(0, ...this.segments.keys()) + 1;
    const open = () => fs.open(this.segmentPath(no), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
    const handle = await open().catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await this.remakeDir();
      return open();
    });
    this.current = { no, handle, size: 0, live: 0, unsynced: false };
    this.segments.set(no, this.current);
    this.dirUnsynced = true;
  }

  /**
   * The directory was removed while the log was open (someone cleared
   * ~/.cache): it is made again, so that what comes next is journaled in
   * files again. The records in the removed files stay readable through
   * the descriptors held, and are uploaded from there; they would not
   * survive a crash before that.
   */
  private async remakeDir(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.opts.log?.(`journal: its directory ${this.dir} was removed while in use, and is made again; the changes journaled before are uploaded from the files still open, but a crash before then would lose them`);
    await this.opts.onDirRemade?.();
  }

  /** Appends go to a new segment if the current one was removed with its directory (remakeDir). */
  private async ensureCurrentLinked(): Promise<void> {
    if (fstatSync(this.current.handle.fd).nlink > 0) return;
    await this.remakeDir();
    await this.startSegment();
  }

  /** Payload bytes of records not yet released. */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Appends one record; resolves when it is written (in the page cache, not yet synced). */
  append(op: WalOp, payload: Uint8Array): Promise<WalRecord> {
    const run = this.chain.then(() => this.write(op, payload));
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(op: WalOp, payload: Uint8Array): Promise<WalRecord> {
    if (this.closed) throw new Error('journal is closed');
    await this.ensureCurrentLinked();
    if (this.current.size >= this.segmentBytes) {
      const full = this.current;
      await this.startSegment();
      if (full.live === 0) await this.drop(full);
    }
    const seg = this.current;
    const header = Buffer.from(JSON.stringify(op));
    const prefix = Buffer.alloc(PREFIX_BYTES);
    prefix.writeUInt32BE(MAGIC, 0);
    prefix.writeUInt32BE(header.length, 4);
    prefix.writeUInt32BE(payload.length, 8);
    prefix.writeUInt32BE(crc32(payload, crc32(header)), 12);
    const at = seg.size;
    const total = PREFIX_BYTES + header.length + payload.length;
    try {
      // Small records are written synchronously: a page-cache write costs less than a trip through the thread pool.
      const bytesWritten = total <= SYNC_WRITE_BYTES ? writevSync(seg.handle.fd, [prefix, header, payload], at) : (await seg.handle.writev([prefix, header, payload], at)).bytesWritten;
      // A file system writes short when it runs out of space; the next write would say ENOSPC.
      if (bytesWritten !== total) throw Object.assign(new Error('short write to the journal (disk full)'), { code: 'ENOSPC' });
    } catch (err) {
      // Leave no partial record for later appends to land behind.
      await seg.handle.truncate(at).catch(() => {});
      throw err;
    }
    seg.size = at + total;
    seg.live++;
    seg.unsynced = true;
    this.liveBytes += payload.length;
    return { ...op, segment: seg.no, offset: at + PREFIX_BYTES + header.length, length: payload.length };
  }

  async read(record: WalRecord, range?: { offset: number; length: number }): Promise<Buffer> {
    const seg = this.segments.get(record.segment);
    if (!seg) throw Object.assign(new Error('journal record already released'), { code: 'ENOENT' });
    const from = range ? Math.min(range.offset, record.length) : 0;
    const length = range ? Math.min(range.length, record.length - from) : record.length;
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await seg.handle.read(buf, done, length - done, record.offset + from + done);
      if (bytesRead === 0) throw Object.assign(new Error('journal segment shorter than its record'), { code: 'EIO' });
      done += bytesRead;
    }
    return buf;
  }

  /** The record's change reached the store: its bytes may go. */
  release(record: WalRecord): void {
    const seg = this.segments.get(record.segment);
    if (!seg) return;
    seg.live--;
    this.liveBytes -= record.length;
    if (seg.live === 0 && seg !== this.current) {
      this.chain = this.chain.then(() => this.drop(seg)).catch(() => {});
    }
  }

  private async drop(seg: Segment): Promise<void> {
    if (!this.segments.has(seg.no)) return;
    this.segments.delete(seg.no);
    await seg.handle.close().catch(() => {});
    await fs.unlink(this.segmentPath(seg.no)).catch(() => {});
  }

  /** Everything appended so far survives a power cut once this resolves. */
  sync(): Promise<void> {
    const run = this.chain.then(async () => {
      if (!this.closed) await this.ensureCurrentLinked();
      for (const seg of this.segments.values()) {
        if (!seg.unsynced) continue;
        seg.unsynced = false;
        await seg.handle.datasync();
      }
      if (this.dirUnsynced) {
        this.dirUnsynced = false;
        const dir = await fs.open(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
        await dir.sync().finally(() => dir.close());
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    await this.sync().catch(() => {});
    this.closed = true;
    for (const seg of [...this.segments.values()]) {
      await seg.handle.close().catch(() => {});
      if (seg.live === 0) await fs.unlink(this.segmentPath(seg.no)).catch(() => {});
    }
    this.segments.clear();
  }
}

/** The valid records at the start of a segment, and how many bytes they span. */
function scanSegment(data: Buffer, segment: number): { records: WalRecord[]; validBytes: number } {
  const records: WalRecord[] = [];
  let at = 0;
  while (at + PREFIX_BYTES <= data.length) {
    if (data.readUInt32BE(at) !== MAGIC) break;
    const headerLength = data.readUInt32BE(at + 4);
    const payloadLength = data.readUInt32BE(at + 8);
    const end = at + PREFIX_BYTES + headerLength + payloadLength;
    if (end > data.length) break;
    const header = data.subarray(at + PREFIX_BYTES, at + PREFIX_BYTES + headerLength);
    const payload = data.subarray(at + PREFIX_BYTES + headerLength, end);
    if (crc32(payload, crc32(header)) !== data.readUInt32BE(at + 12)) break;
    let op: WalOp;
    try {
      op = JSON.parse(header.toString('utf8')) as WalOp;
    } catch {
      break;
    }
    records.push({ op: op.op, key: op.key, ifAbsent: op.ifAbsent, at: op.at, segment, offset: at + PREFIX_BYTES + headerLength, length: payloadLength });
    at = end;
  }
  return { records, validBytes: at };
}
