import * as v8 from 'node:v8';

/**
 * V8 options the mount daemon runs with (bin/veilfs's shebang carries the
 * same list). The daemon's JavaScript heap is tiny (about 10 MB) while 1 MiB
 * blocks stream through it, and V8's first old-generation limit, sized for a
 * tiny heap, then starts a full mark-compact every few MiB of I/O: 145 of
 * them for a 512 MiB write and read, about half the daemon's CPU time. A
 * larger initial old space brings that down to about 20 and roughly halves
 * the CPU per byte; resident memory stays the same, the block cache
 * dominates it.
 *
 * Creating many files is the opposite case: a steady stream of small
 * objects that outlive a young collection, and V8 let the old generation
 * grow to three or four times what was live before collecting it. Growing
 * it by half (instead of V8's up to 4x) kept 100,000 creates at 259 MB
 * instead of 333 MB for 3% more time; streaming I/O did not change.
 */
export const DAEMON_V8_FLAGS = ['--initial-old-space-size=128', '--heap-growing-percent=50'];

/**
 * For the process that serves a mount (a foreground `veilfs mount`, or the
 * daemon that `--daemon` starts), before the modules that serve it load:
 * compile every function as its module loads, and keep the code of
 * functions that have not run for a while. With V8's defaults a function
 * is compiled when first called, and its bytecode is dropped again after
 * some idle collections: the first rename, mkdir or missing-name lookup
 * after a mount (or after a quiet hour) took about 0.5 ms longer than the
 * next (0.9-1.2 ms instead of 0.4-0.55 for a `mv`). It costs the daemon
 * 1-3 MB, and its start time goes into the wait for the key the terminal
 * derives meanwhile (a mount took no longer). Not for other commands, nor
 * for the terminal of `mount --daemon`: they would start about 10 ms later.
 */
export function compileEverythingAhead(): void {
  v8.setFlagsFromString('--no-lazy');
  v8.setFlagsFromString('--no-flush-bytecode');
}

/** execArgv for a child daemon: this process's own options plus any of ours it lacks. */
export function daemonExecArgv(execArgv: readonly string[]): string[] {
  const missing = DAEMON_V8_FLAGS.filter((flag) => !execArgv.some((a) => a.split('=')[0] === flag.split('=')[0]));
  return [...missing, ...execArgv];
}
