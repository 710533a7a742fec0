import t from 'tap';
import { randomBytes } from 'node:crypto';
import { PackedSegments } from '../src/data/packed.js';
import { PACK_SIZE } from '../src/format/pack.js';
import { SEGMENT_SIZE } from '../src/format/segment.js';
import { LocalStore } from '../src/store/local.js';
import { StoreError } from '../src/store/types.js';
import { tempDir } from './lib/tmp.js';

/** A store that refuses every put: the first one slowly, the others at once. */
class RefusingStore extends LocalStore {
  private puts = 0;
  override async put(key: string): Promise<void> {
    if (this.puts++ === 0) await new Promise((r) => setTimeout(r, 300));
    throw new StoreError(`refused ${key}`, key);
  }
}

// Packs that fail to reach the store while an earlier one is still being
// waited for are failures of seal() (a commit, a close), not rejections
// nobody handles, which end the daemon (it did so when the local journal's
// directory was removed while mounted).
t.test('packs failing to reach the store while another is awaited fail the seal, and nothing else', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  const packed = new PackedSegments(new RefusingStore(tempDir(t)), { packCacheBytes: PACK_SIZE, log: () => {} });
  const file = { ino: 7, fileId: 'f'.repeat(32), key: randomBytes(32), size: 0 };
  const block = randomBytes(SEGMENT_SIZE);
  // Enough segments to fill one pack and start the next: the first pack goes to the (slow, refusing) store.
  const saves: Promise<string>[] = [];
  for (let i = 0; i * (SEGMENT_SIZE + 40) <= PACK_SIZE + SEGMENT_SIZE; i++) saves.push(packed.save(file, i, block, block.length));
  const settled = Promise.allSettled(saves);
  // The seal closes the second pack, which is refused at once, while the first is still awaited.
  await t.rejects(packed.seal(), /refused p\//, 'the seal fails with the store\'s reason');
  const outcomes = await settled;
  t.ok(outcomes.some((o) => o.status === 'rejected'), 'the writer that filled the first pack is told too');
  await new Promise((r) => setTimeout(r, 50));
  t.same(unhandled, [], 'no rejection went unhandled');
});
