import { Inode, ROOT_INO, S_IFDIR, type InodeRecord } from './inode.js';
import type { MetaLog } from './metalog.js';

export interface Logger {
  (message: string): void;
}

/** What the tree asks of the data layer around notes and commits. */
export interface TreeData {
  /** Before a note: the data it refers to survives a crash too. */
  persist(): Promise<void>;
  /** Before a commit: the data it refers to reaches the store first. */
  seal(): Promise<void>;
  /** After the commit that stopped referring to it. */
  free(ref: string): Promise<void>;
}

/**
 * The whole tree in memory (metadata is small; a store round trip per
 * operation would be far too slow), with the set of inodes changed since
 * the last commit. commit() group-commits: callers that arrive while a
 * commit waits to start share it.
 */
export class Tree {
  /** Changed since the last commit. */
  private readonly dirty = new Set<number>();
  private readonly removed = new Set<number>();
  /** Changed since the last note (or commit). */
  private readonly unnoted = new Set<number>();
  private readonly unnotedRemoved = new Set<number>();
  /** Objects that the next commit makes unreferenced: deleted after it. */
  private pendingDeletes: string[] = [];
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;

  private constructor(
    private readonly log: MetaLog,
    private readonly inodes: Map<number, Inode>,
    private nextIno: number,
    private readonly data: TreeData,
    private readonly logger: Logger,
  ) {}

  /** Format 2 records segment runs instead of block ids. */
  private record(node: Inode): InodeRecord {
    return node.toRecord(this.log.version >= 2);
  }

  static initialRecords(uid: number, gid: number): { records: InodeRecord[]; nextIno: number } {
    const root = new Inode(ROOT_INO, S_IFDIR | 0o755, uid, gid);
    return { records: [root.toRecord()], nextIno: ROOT_INO + 1 };
  }

  static async load(log: MetaLog, data: TreeData, logger: Logger): Promise<Tree> {
    const loaded = await log.load();
    const inodes = new Map<number, Inode>();
    for (const [ino, r] of loaded.inodes) inodes.set(ino, Inode.fromRecord(r));
    if (!inodes.get(ROOT_INO)?.isDir) throw new Error('vault metadata has no root directory');
    const tree = new Tree(log, inodes, loaded.nextIno, data, logger);
    // Noted changes are not in the store yet: the next commit must carry them.
    for (const ino of loaded.noted.upserts) tree.dirty.add(ino);
    for (const ino of loaded.noted.removes) tree.removed.add(ino);
    return tree;
  }

  get(ino: number): Inode | undefined {
    return this.inodes.get(ino);
  }

  all(): IterableIterator<Inode> {
    return this.inodes.values();
  }

  get root(): Inode {
    return this.inodes.get(ROOT_INO)!;
  }

  get size(): number {
    return this.inodes.size;
  }

  create(mode: number, uid: number, gid: number): Inode {
    const node = new Inode(this.nextIno++, mode, uid, gid);
    this.inodes.set(node.ino, node);
    this.changed(node);
    return node;
  }

  changed(node: Inode): void {
    this.dirty.add(node.ino);
    this.unnoted.add(node.ino);
  }

  /** Forgets an inode whose last link and last handle are gone. */
  destroy(node: Inode): void {
    this.inodes.delete(node.ino);
    this.dirty.delete(node.ino);
    this.unnoted.delete(node.ino);
    this.removed.add(node.ino);
    this.unnotedRemoved.add(node.ino);
    for (const objectId of node.blocks.values()) this.pendingDeletes.push(objectId);
  }

  /** An object that the last commit may still reference, free after the next. */
  release(objectId: string): void {
    this.pendingDeletes.push(objectId);
  }

  /** Changed since the last note: what a close must journal. */
  get hasUnnoted(): boolean {
    return this.unnoted.size > 0 || this.unnotedRemoved.size > 0;
  }

  get hasChanges(): boolean {
    return this.dirty.size > 0 || this.removed.size > 0 || this.pendingDeletes.length > 0;
  }

  /**
   * Journals the changes since the last note on this machine, without a
   * commit to the store: cheap, and enough to survive a crash of the daemon.
   * Without a journal (read-only), it commits.
   */
  note(): Promise<void> {
    if (!this.log.canNote) return this.commit();
    const next = this.chain.catch(() => {}).then(() => this.noteNow());
    this.chain = next;
    return next;
  }

  private async noteNow(): Promise<void> {
    if (this.unnoted.size === 0 && this.unnotedRemoved.size === 0) return;
    const changed = [...this.unnoted];
    const removed = [...this.unnotedRemoved];
    const records = changed.map((ino) => this.record(this.inodes.get(ino)!));
    this.unnoted.clear();
    this.unnotedRemoved.clear();
    try {
      await this.data.persist();
      await this.log.note(records, removed, this.nextIno);
    } catch (err) {
      for (const ino of changed) if (this.inodes.has(ino)) this.unnoted.add(ino);
      for (const ino of removed) this.unnotedRemoved.add(ino);
      throw err;
    }
  }

  /** Makes everything committed or noted survive a power cut. */
  sync(): Promise<void> {
    return this.log.sync();
  }

  commit(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.catch(() => {}).then(() => {
      this.queued = null;
      return this.commitNow();
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  /** When the last commit reached the journal (ms since the epoch). */
  lastCommitAt: number | undefined;

  private async commitNow(): Promise<void> {
    if (!this.hasChanges) return;
    const dirty = [...this.dirty];
    const removed = [...this.removed];
    const deletes = this.pendingDeletes;
    const upserts = dirty.map((ino) => this.record(this.inodes.get(ino)!));
    const unnoted = [...this.unnoted];
    const unnotedRemoved = [...this.unnotedRemoved];
    this.dirty.clear();
    this.removed.clear();
    this.unnoted.clear();
    this.unnotedRemoved.clear();
    this.pendingDeletes = [];
    try {
      if (upserts.length || removed.length) {
        // The records above refer only to data stored so far: sealing now puts it ahead of the batch.
        await this.data.seal();
        await this.log.append(upserts, removed, this.nextIno);
      }
    } catch (err) {
      for (const ino of dirty) if (this.inodes.has(ino)) this.dirty.add(ino);
      for (const ino of removed) this.removed.add(ino);
      for (const ino of unnoted) if (this.inodes.has(ino)) this.unnoted.add(ino);
      for (const ino of unnotedRemoved) this.unnotedRemoved.add(ino);
      this.pendingDeletes.unshift(...deletes);
      throw err;
    }
    this.lastCommitAt = Date.now();
    for (const objectId of deletes) {
      await this.data.free(objectId).catch((err) => this.logger(`could not delete unreferenced object ${objectId}: ${(err as Error).message} (veilfs gc will)`));
    }
    if (this.log.shouldCheckpoint()) {
      await this.log.checkpoint([...this.inodes.values()].map((n) => this.record(n)), this.nextIno)
        .catch((err) => this.logger(`checkpoint failed, will retry: ${(err as Error).message}`));
    }
  }

  /** Checkpoints now (on unmount), so the next mount replays no log. */
  async compact(): Promise<void> {
    await this.commit();
    await this.log.checkpoint([...this.inodes.values()].map((n) => this.record(n)), this.nextIno);
  }
}
