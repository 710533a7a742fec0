import { performance } from 'node:perf_hooks';

/** How long a due step watches the daemon before it runs, and how often it looks for changes meanwhile. */
const WATCH_MS = 50;
const SAMPLE_MS = 10;
/** The share of that time the daemon's thread must be working for the drive to count as in use. */
const BUSY = 0.05;
/** A commit is due early once this many inodes wait for it, looked at this often. */
const EARLY_BACKLOG = 4096;
const BACKLOG_CHECK_MS = 100;

/** What the steps run on. sync and checkpoint report their own failures, and do not reject. */
export interface SyncSubject {
  /** Whether anything waits to be committed. */
  pending(): boolean;
  /** Moves on every change made to the drive. */
  changeStamp(): number;
  sync(): void | Promise<void>;
  /** How many inodes wait for the next commit. */
  backlog?(): number;
  /** Whether the commits so far call for a checkpoint (format 3: the pages they changed, written). */
  checkpointDue?(): boolean;
  checkpoint?(): Promise<void>;
}

/**
 * Runs the background commit every interval while changes wait, and the
 * checkpoint commits make due. Both are work on the daemon's one thread
 * (a commit of 15,000 new files: 200-450 ms while creates go on; a
 * checkpoint: 80-100 ms of pages to seal and write) that every request
 * made meanwhile waits behind: a `find` right after creating 100,000
 * files took up to twice as long when they landed during it.
 *
 * So each step first watches the daemon for WATCH_MS:
 * - busy, with no change at its end (someone is reading: listing, stat-ing): the
 *   step waits and watches again, for at most one more interval;
 * - changes up to its end (someone is writing), or idle: the step runs.
 *   What waits in memory for a commit stays about one interval's worth.
 * The checkpoint watches again after its commit, so a commit that ran
 * through the end of a burst of writes does not hand the reads after it
 * its checkpoint. A commit is also due early, once EARLY_BACKLOG inodes
 * wait for it, so that little is left to commit when a burst ends (after
 * 100,000 creates, up to 15,000 were left: 2 s of creating).
 * Only the background steps wait: fsync, sync and unmount commit at once.
 */
export class BackgroundSync {
  private timer?: NodeJS.Timeout;
  private backlogTimer?: NodeJS.Timeout;
  private watch?: NodeJS.Timeout;
  /** Ends the wait of a step under way with false (stop). */
  private abandon?: () => void;
  private running = false;
  private stopped = false;

  constructor(private readonly subject: SyncSubject, private readonly intervalMs: number) {}

  start(): void {
    this.timer = setInterval(() => {
      this.watchBacklog();
      void this.due();
    }, this.intervalMs);
    this.timer.unref();
    this.watchBacklog();
  }

  /**
   * Looks at the backlog every BACKLOG_CHECK_MS while changes wait; once
   * nothing does, it stops until the next interval finds changes, so an
   * idle daemon wakes once an interval, not ten times a second.
   */
  private watchBacklog(): void {
    if (!this.subject.backlog || this.backlogTimer || this.stopped) return;
    const check = () => {
      this.backlogTimer = undefined;
      if (this.stopped || !this.subject.pending()) return;
      if ((this.subject.backlog?.() ?? 0) >= EARLY_BACKLOG) void this.due();
      this.watchBacklog();
    };
    this.backlogTimer = setTimeout(check, BACKLOG_CHECK_MS);
    this.backlogTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.backlogTimer);
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

  /**
   * Resolves once the drive is not busy with reads, or at the deadline;
   * false if stopped meanwhile. A window counts as writing when its last
   * sample saw a change: a burst of writes that ends within it, with reads
   * right behind (a `find` after creating files), counts as reading.
   */
  private quiet(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.abandon = () => resolve(false);
      const look = () => {
        const from = performance.eventLoopUtilization();
        const until = performance.now() + WATCH_MS;
        let stamp = this.subject.changeStamp();
        const sample = () => {
          const now = this.subject.changeStamp();
          const writing = now !== stamp;
          stamp = now;
          if (performance.now() < until) return wait(sample);
          this.watch = undefined;
          const reading = !writing && performance.eventLoopUtilization(from).utilization > BUSY;
          if (reading && performance.now() < deadline) return look();
          resolve(true);
        };
        wait(sample);
      };
      const wait = (then: () => void) => {
        this.watch = setTimeout(then, SAMPLE_MS);
        this.watch.unref();
      };
      look();
    });
  }
}
