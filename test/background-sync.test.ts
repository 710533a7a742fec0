import t from 'tap';
import { performance } from 'node:perf_hooks';
import { BackgroundSync } from '../src/vfs/background-sync.js';

/*
 * When the background commit runs: on time when the daemon is idle or
 * being written to, later while it is busy serving reads, never more than
 * one interval late.
 */
const INTERVAL = 600;
/** Room for the watch (50 ms) and timers on a busy machine. */
const WATCH_SLACK = 100;

/** Keeps the event loop about half busy (as while serving a find) until stopped; `write` also changes the drive each time. */
function load(write: () => void = () => {}): () => void {
  const timer = setInterval(() => {
    const until = performance.now() + 3;
    while (performance.now() < until) { /* the work of a request */ }
    write();
  }, 4);
  return () => clearInterval(timer);
}

function watchSyncs(stamp: () => number = () => 0): { syncs: number[]; sync: BackgroundSync; started: number } {
  const syncs: number[] = [];
  const started = performance.now();
  const sync = new BackgroundSync({ pending: () => true, changeStamp: stamp, sync: () => void syncs.push(performance.now() - started) }, INTERVAL);
  sync.start();
  return { syncs, sync, started };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('an idle drive commits each interval', async (t) => {
  const { syncs, sync } = watchSyncs();
  t.teardown(() => sync.stop());
  await sleep(INTERVAL * 2 + 200);
  t.ok(syncs.length >= 2, `committed ${syncs.length} times in two intervals`);
  t.ok(syncs[0] < INTERVAL * 1.5, `the first one ${syncs[0].toFixed(0)} ms in`);
});

t.test('a drive busy with reads commits once they pause, at most one interval late', async (t) => {
  const { syncs, sync } = watchSyncs();
  t.teardown(() => sync.stop());
  let stopLoad = load();
  t.teardown(() => stopLoad());
  await sleep(INTERVAL * 1.3);
  t.equal(syncs.length, 0, 'no commit while the reads go on');
  stopLoad();
  await sleep(200);
  t.ok(syncs.length >= 1, 'the commit ran once they paused');
  t.ok(syncs[0] < INTERVAL * 1.3 + 200, `at ${syncs[0].toFixed(0)} ms, not at the deadline (${INTERVAL * 2} ms)`);

  // Reads that never pause: the commit runs one interval late.
  const before = syncs.length;
  stopLoad = load();
  await sleep(INTERVAL * 2.6);
  t.ok(syncs.length > before, 'reads that go on do not hold the commit back for longer than an interval');
});

t.test('a drive being written to commits on time', async (t) => {
  let stamp = 0;
  const { syncs, sync } = watchSyncs(() => stamp);
  t.teardown(() => sync.stop());
  const stopLoad = load(() => stamp++);
  t.teardown(() => stopLoad());
  await sleep(INTERVAL * 1.6);
  t.equal(syncs.length, 1, 'committed while the writes went on');
  t.ok(syncs[0] < INTERVAL * 1.4, `at ${syncs[0].toFixed(0)} ms`);
});

t.test('nothing pending, nothing committed; stop ends it', async (t) => {
  const syncs: number[] = [];
  let pending = false;
  const sync = new BackgroundSync({ pending: () => pending, changeStamp: () => 0, sync: () => void syncs.push(1) }, 50);
  sync.start();
  await sleep(200);
  t.equal(syncs.length, 0, 'no commit without changes');
  pending = true;
  await sleep(200);
  t.ok(syncs.length >= 1, 'a commit once there are changes');
  sync.stop();
  const after = syncs.length;
  await sleep(200);
  t.equal(syncs.length, after, 'none after stop');
});

t.test('the checkpoint a commit made due waits for reads that start after the commit', async (t) => {
  let pending = true;
  let due = false;
  let stopLoad = () => {};
  t.teardown(() => stopLoad());
  const started = performance.now();
  let committedAt = -1;
  const checkpoints: number[] = [];
  const sync = new BackgroundSync({
    pending: () => pending,
    changeStamp: () => 0,
    // A commit that ends as the writes end and reads begin (a `find` right after creating files).
    sync: () => {
      committedAt = performance.now() - started;
      pending = false;
      due = true;
      stopLoad = load();
    },
    checkpointDue: () => due,
    checkpoint: async () => {
      checkpoints.push(performance.now() - started);
      due = false;
    },
  }, INTERVAL);
  sync.start();
  t.teardown(() => sync.stop());
  await sleep(INTERVAL * 1.2 + WATCH_SLACK);
  t.ok(committedAt > 0, `committed at ${committedAt.toFixed(0)} ms`);
  await sleep(INTERVAL * 0.6);
  t.equal(checkpoints.length, 0, 'no checkpoint while the reads go on');
  stopLoad();
  await sleep(250);
  t.equal(checkpoints.length, 1, 'the checkpoint ran once they paused');
  t.ok(checkpoints[0] < committedAt + INTERVAL, `at ${checkpoints[0]?.toFixed(0)} ms, before its deadline`);
});

t.test('a checkpoint due with nothing to commit runs on the next interval; stop abandons a step that waits', async (t) => {
  let due = true;
  const checkpoints: number[] = [];
  const sync = new BackgroundSync({
    pending: () => false,
    changeStamp: () => 0,
    sync: () => void t.fail('nothing to commit'),
    checkpointDue: () => due,
    checkpoint: async () => {
      checkpoints.push(1);
      due = false;
    },
  }, 200);
  sync.start();
  await sleep(300);
  t.equal(checkpoints.length, 1, 'checkpointed once');
  // Due again, with reads going on: the next interval's step (at 400 ms) waits for them, until 600 ms at most.
  due = true;
  const stopLoad = load();
  t.teardown(() => stopLoad());
  await sleep(150);
  sync.stop();
  stopLoad();
  await sleep(300);
  t.equal(checkpoints.length, 1, 'a checkpoint waiting for reads to pause does not run after stop');
});

t.test('writes that end during the watch, with reads right behind them: the commit waits for the reads', async (t) => {
  let stamp = 0;
  const { syncs, sync, started } = watchSyncs(() => stamp);
  t.teardown(() => sync.stop());
  let stopLoad = load(() => stamp++);
  t.teardown(() => stopLoad());
  // The writes end 25 ms into the watch of the first due commit (at INTERVAL), and reads begin (a `find` after creating files).
  await sleep(INTERVAL + 25 - (performance.now() - started));
  stopLoad();
  stopLoad = load();
  await sleep(INTERVAL * 0.6);
  t.equal(syncs.length, 0, 'no commit while the reads go on');
  stopLoad();
  await sleep(250);
  t.equal(syncs.length, 1, 'the commit ran once they paused');
});

t.test('a commit is due early once thousands of inodes wait for it', async (t) => {
  let backlog = 10;
  const syncs: number[] = [];
  const started = performance.now();
  const sync = new BackgroundSync({
    pending: () => backlog > 0,
    changeStamp: () => backlog,
    backlog: () => backlog,
    sync: () => {
      syncs.push(performance.now() - started);
      backlog = 0;
    },
  }, 5000);
  sync.start();
  t.teardown(() => sync.stop());
  await sleep(400);
  t.equal(syncs.length, 0, 'a few changed inodes wait for the interval');
  backlog = 5000;
  await sleep(400);
  t.equal(syncs.length, 1, 'thousands are committed without waiting for it');
  t.ok(syncs[0] < 1000, `at ${syncs[0]?.toFixed(0)} ms, the interval being 5000 ms`);
});

t.test('an idle drive is not looked at between intervals', async (t) => {
  let looks = 0;
  const sync = new BackgroundSync({
    pending: () => false,
    changeStamp: () => 0,
    backlog: () => {
      looks++;
      return 0;
    },
    sync: () => void t.fail('nothing to commit'),
  }, 5000);
  sync.start();
  t.teardown(() => sync.stop());
  await sleep(600);
  t.equal(looks, 0, 'no backlog looked at while nothing waits (a wake-up every 100 ms otherwise)');
});
