const MiB = 1024 * 1024;
/** Reads this close to where the last one ended still count as sequential (the kernel reorders a little). */
const BACK_TOLERANCE = 1 * MiB;
const FORWARD_TOLERANCE = 4 * MiB;

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

  constructor(readonly maxBlocks: number) {}

  /** Records a read of n bytes at offset; returns how many blocks past it to fetch now. */
  next(offset: number, n: number): number {
    const sequential = this.expected >= 0 && offset >= this.expected - BACK_TOLERANCE && offset <= this.expected + FORWARD_TOLERANCE;
    const fromStart = this.expected < 0 && offset === 0;
    this.window = sequential || fromStart ? Math.min(this.maxBlocks, Math.max(1, this.window * 2)) : 0;
    this.expected = Math.max(offset + n, sequential ? this.expected : 0);
    return n > 0 ? this.window : 0;
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
