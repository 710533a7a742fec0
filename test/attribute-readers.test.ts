import t from 'tap';
import { AttributeReaders } from '../src/fuse/attribute-readers.js';

t.test('a process counts as reading attributes for a while after it did, and the table stays small', async (t) => {
  const readers = new AttributeReaders(3, 1000);
  t.notOk(readers.has(7, 0), 'never seen');
  readers.saw(7, 0);
  t.ok(readers.has(7, 999), 'seen just now');
  t.notOk(readers.has(7, 1000), 'forgotten after its memory');
  readers.saw(0, 0);
  t.notOk(readers.has(0, 0), 'pid 0 is the kernel itself, never a reader');
  for (const pid of [1, 2, 3]) readers.saw(pid, 10);
  t.notOk(readers.has(7, 10), 'the oldest goes when the table is full');
  readers.saw(1, 20);
  readers.saw(4, 20);
  t.ok(readers.has(1, 20), 'seeing one again makes it the youngest');
  t.notOk(readers.has(2, 20), 'so the next oldest went instead');
});
