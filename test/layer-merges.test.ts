import t from 'tap';
import { LayerMerges } from '../src/meta/layer-merges.js';

t.test('LayerMerges keeps a merge while its layers and version stay', async (t) => {
  const merges = new LayerMerges<number>();
  const older = new Map<string, number | undefined>([['a', 1], ['b', 2]]);
  const newer = new Map<string, number | undefined>([['b', undefined], ['c', 3]]);
  const merged = merges.merged(7, [older, newer], 1);
  t.same([...merged], [['a', 1], ['b', undefined], ['c', 3]], 'the newer layer wins');
  t.equal(merges.merged(7, [older, newer], 1), merged, 'the same merge while nothing changed');
  newer.set('d', 4);
  const again = merges.merged(7, [older, newer], 2);
  t.not(again, merged, 'a change (a new version) merges again');
  t.equal(again.get('d'), 4);
  t.not(merges.merged(7, [newer], 2), again, 'other layers: another merge');
});
