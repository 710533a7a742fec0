const MiB = 1024 * 1024;
/** Reads this close to where the last one ended still count as sequential (the kernel reorders a little). */
const BACK_TOLERANCE = 1 * MiB;
const FORWARD_TOLERANCE = 4 * MiB;
/** How many windows read at random a reader remembers. */
const RANDOM_WINDOWS_KEPT = 64;

/**
 * Sequential-access detection for one open file: the window of blocks to
 * fetch ahead doubles while reads keep following each other (small seeks
 * forgiven) and drops to nothing on a random jump, so random readers fetch
 * only the blocks they touch.
 */
export class Readahead {
  private expected = -1;
  private window = 0;
  /** Blocks fetched and opened ahead of the reader. */
  readonly near = new RequestCursor();
  /** Blocks whose stored bytes are fetched further ahead, not yet opened. */
  readonly far = new RequestCursor();

  /** Windows (of windowBlocks) read at random once, oldest first. */
  private readonly randomWindows = new Set<number>();

  /** windowBlocks: the span that random reads landing twice in fetch whole (see denseWindow). */
  constructor(readonly maxBlocks: number, readonly windowBlocks = 1) {}

  /** Records a read of n bytes at offset; returns how many blocks past it to fetch now. */
  next(offset: number, n: number): number {
    const sequential = this.expected >= 0 && offset >= this.expected - BACK_TOLERANCE && offset <= this.expected + FORWARD_TOLERANCE;
    const fromStart = this.expected < 0 && offset === 0;
    this.window = sequential || fromStart ? Math.min(this.maxBlocks, Math.max(1, this.window * 2)) : 0;
    this.expected = Math.max(offset + n, sequential ? this.expected : 0);
    return n > 0 ? this.window : 0;
  }

  /**
   * After a random read of block `index`: the first block of its window if
   * a random read landed in that window before, else -1. Random reads that
   * come back to the same region (a database, an archive's index, a video
   * being scrubbed) cost one round trip each to a distant store; the second
   * one in a window fetches the window whole. Reads spread over a large file
   * rarely meet in a window and fetch only what they touch.
   */
  denseWindow(index: number): number {
    const window = Math.floor(index / this.windowBlocks);
    if (this.randomWindows.delete(window)) return window * this.windowBlocks;
    this.randomWindows.add(window);
    if (this.randomWindows.size > RANDOM_WINDOWS_KEPT) this.randomWindows.delete(this.randomWindows.values().next().value!);
    return -1;
  }
}

/**
 * Where a reader's earlier requests ahead ended: a reader moving through its
 * window asks only for the blocks that entered it, instead of asking again
 * for every block still in flight.
 */
export class RequestCursor {
  private requestedTo = -1;

  /** Of the blocks [from, to), the first one not yet asked for; [from, to) counts as asked for afterwards. */
  firstUnrequested(from: number, to: number): number {
    const start = this.requestedTo >= from && this.requestedTo <= to ? this.requestedTo : from;
    this.requestedTo = to;
    return start;
  }
}
