/**
 * Long synchronous work (a commit of tens of thousands of changes) on the
 * daemon's one thread holds up every request of the kernel meanwhile: a
 * `find` right after creating 100,000 files waited 100 ms and more for a
 * commit. Work that awaits this every so often lets waiting I/O callbacks
 * (the kernel's requests) run in between.
 */
export class IoYield {
  private steps = 0;

  constructor(private readonly every = 512) {}

  /** Resolves at once but every `every` calls, then after pending I/O callbacks ran. */
  step(): Promise<void> | undefined {
    if (++this.steps % this.every !== 0) return undefined;
    return new Promise((resolve) => setImmediate(resolve));
  }
}
