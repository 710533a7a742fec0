/**
 * The processes (threads, as FUSE names them) seen reading attributes
 * lately. A listing for one of them carries every entry's attributes,
 * sparing the lookup it would send per entry; a listing for anyone else
 * (find -name, ls without -l) carries names only, since loading the inodes
 * of a million entries nobody stats would cost more than it saves. The
 * first sign is early: ls -l asks for the security label of its argument
 * before it reads the directory, and any tool that stats what it lists
 * has done so by its second directory.
 */
export class AttributeReaders {
  /** pid → when last seen reading attributes (ms), oldest first. */
  private readonly seen = new Map<number, number>();

  constructor(private readonly capacity = 256, private readonly memoryMs = 60_000) {}

  saw(pid: number, now = Date.now()): void {
    if (pid === 0) return;
    this.seen.delete(pid);
    this.seen.set(pid, now);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value!);
  }

  has(pid: number, now = Date.now()): boolean {
    const at = this.seen.get(pid);
    return at !== undefined && now - at < this.memoryMs;
  }
}
