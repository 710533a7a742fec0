import { performance } from 'node:perf_hooks';

/** How long a due step watches the daemon before it runs. */
const WATCH_MS = 50;
/** The share of that time the daemon's thread must be working for the drive to count as in use. */
const BUSY = 0.05;

export interface SyncSubject {
  /** Whether anything waits to be committed. */
  pending(): boolean;
  /** Moves on every change made to the drive. */
  changeStamp(): number;
  sync(): void | Promise<void>;
  /** Whether the commits so far call for a checkpoint (format 3: the pages they changed, written). */
  checkpointDue?(): boolean;
  checkpoint?(): Promise<void>;
}

/**
 * Runs the background commit every interval while changes wait, and the
 * checkpoint commits make due. Both are work on the daemon's one thread
 * (a commit of 18,000 new files: about 120 ms of records, sealing and
 * pages; a checkpoint: 80-100 ms of pages to seal and write) that every
 * request made meanwhile waits behind: a `find` right after creating
 * 100,000 files took a third longer when a commit landed during it, and
 * up to twice as long with the checkpoint that followed it.
 *
 * So each step first watches the daemon for WATCH_MS. While the daemon is
 * busy and nothing new was changed (someone is reading: listing,
 * stat-ing), the step waits, watching again, for at most one more interval.
 * When changes keep coming (someone is writing), it runs on time: what
 * waits in memory for a commit stays one interval's worth. The checkpoint
 * watches again after its commit: a commit that ran through the end of a
 * burst of writes does not take the reads that follow with its checkpoint.
 * Only the background steps wait: fsync, sync and unmount commit at once.
 */
export class BackgroundSync {
  private timer?: NodeJS.Timeout;
  private watch?: NodeJS.Timeout;
  /** Ends the wait of a step under way with false (stop). */
  private abandon?: () => void;
  private running = false;
  private stopped = false;

  constructor(private readonly subject: SyncSubject, private readonly intervalMs: number) {}

  start(): void {
    this.timer = setInterval(() => void this.due(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.watch);
    this.watch = undefined;
    this.abandon?.();
  }

  private async due(): Promise<void> {
    if (this.running || this.stopped) return;
    const checkpointDue = () => this.subject.checkpointDue?.() === true;
    if (!this.subject.pending() && !checkpointDue()) return;
    this.running = true;
    try {
      const deadline = performance.now() + this.intervalMs;
      if (this.subject.pending()) {
        if (!(await this.quiet(deadline))) return;
        await this.subject.sync();
      }
      if (checkpointDue() && this.subject.checkpoint) {
        if (!(await this.quiet(deadline))) return;
        await this.subject.checkpoint();
      }
    } finally {
      this.running = false;
    }
  }

  /** Resolves once the drive is not busy with reads, or at the deadline; false if stopped meanwhile. */
  private quiet(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.abandon = () => resolve(false);
      const look = () => {
        const stamp = this.subject.changeStamp();
        const from = performance.eventLoopUtilization();
        this.watch = setTimeout(() => {
          this.watch = undefined;
          const reading = performance.eventLoopUtilization(from).utilization > BUSY && this.subject.changeStamp() === stamp;
          if (reading && performance.now() < deadline) return look();
          resolve(true);
        }, WATCH_MS);
        this.watch.unref();
      };
      look();
    });
  }
}
