import { Inode, ROOT_INO, S_IFDIR, type InodeRecord } from './inode.js';
import type { MetaLog } from './metalog.js';

export interface Logger {
  (message: string): void;
}

/**
 * The whole tree in memory (metadata is small; a store round trip per
 * operation would be far too slow), with the set of inodes changed since
 * the last commit. commit() group-commits: callers that arrive while a
 * commit waits to start share it.
 */
export class Tree {
  private readonly dirty = new Set<number>();
  private readonly removed = new Set<number>();
  /** Objects that the next commit makes unreferenced: deleted after it. */
  private pendingDeletes: string[] = [];
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;

  private constructor(
    private readonly log: MetaLog,
    private readonly inodes: Map<number, Inode>,
    private nextIno: number,
    private readonly deleteObject: (objectId: string) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  static initialRecords(uid: number, gid: number): { records: InodeRecord[]; nextIno: number } {
    const root = new Inode(ROOT_INO, S_IFDIR | 0o755, uid, gid);
    return { records: [root.toRecord()], nextIno: ROOT_INO + 1 };
  }

  static async load(log: MetaLog, deleteObject: (objectId: string) => Promise<void>, logger: Logger): Promise<Tree> {
    const loaded = await log.load();
    const inodes = new Map<number, Inode>();
    for (const [ino, r] of loaded.inodes) inodes.set(ino, Inode.fromRecord(r));
    if (!inodes.get(ROOT_INO)?.isDir) throw new Error('vault metadata has no root directory');
    return new Tree(log, inodes, loaded.nextIno, deleteObject, logger);
  }

  get(ino: number): Inode | undefined {
    return this.inodes.get(ino);
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
  }

  /** Forgets an inode whose last link and last handle are gone. */
  destroy(node: Inode): void {
    this.inodes.delete(node.ino);
    this.dirty.delete(node.ino);
    this.removed.add(node.ino);
    for (const objectId of node.blocks.values()) this.pendingDeletes.push(objectId);
  }

  /** An object that the last commit may still reference, free after the next. */
  release(objectId: string): void {
    this.pendingDeletes.push(objectId);
  }

  get hasChanges(): boolean {
    return this.dirty.size > 0 || this.removed.size > 0 || this.pendingDeletes.length > 0;
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

  private async commitNow(): Promise<void> {
    if (!this.hasChanges) return;
    const dirty = [...this.dirty];
    const removed = [...this.removed];
    const deletes = this.pendingDeletes;
    const upserts = dirty.map((ino) => this.inodes.get(ino)!.toRecord());
    this.dirty.clear();
    this.removed.clear();
    this.pendingDeletes = [];
    try {
      if (upserts.length || removed.length) await this.log.append(upserts, removed, this.nextIno);
    } catch (err) {
      for (const ino of dirty) if (this.inodes.has(ino)) this.dirty.add(ino);
      for (const ino of removed) this.removed.add(ino);
      this.pendingDeletes.unshift(...deletes);
      throw err;
    }
    for (const objectId of deletes) {
      await this.deleteObject(objectId).catch((err) => this.logger(`could not delete unreferenced object ${objectId}: ${(err as Error).message} (veilfs gc will)`));
    }
    if (this.log.shouldCheckpoint()) {
      await this.log.checkpoint([...this.inodes.values()].map((n) => n.toRecord()), this.nextIno)
        .catch((err) => this.logger(`checkpoint failed, will retry: ${(err as Error).message}`));
    }
  }

  /** Commits, and makes everything committed survive a power cut. */
  async commitDurably(): Promise<void> {
    await this.commit();
    await this.log.sync();
  }

  /** Checkpoints now (on unmount), so the next mount replays no log. */
  async compact(): Promise<void> {
    await this.commit();
    await this.log.checkpoint([...this.inodes.values()].map((n) => n.toRecord()), this.nextIno);
  }
}
