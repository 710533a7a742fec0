import t from 'tap';
import { WalkAhead } from '../src/vfs/walk-ahead.js';

t.test('opening a listed directory warms the next ones of its listing, each once', async (t) => {
  const warmed: number[] = [];
  const walk = new WalkAhead((dir) => warmed.push(dir));
  const siblings: number[] = [];
  for (let ino = 100; ino < 120; ino++) walk.listed(ino, siblings);
  walk.opened(999);
  t.same(warmed, [], 'a directory no listing handed out warms nothing');
  walk.opened(100);
  t.same(warmed, [101, 102, 103, 104, 105, 106, 107, 108], 'the next eight, in listing order');
  walk.opened(101);
  t.same(warmed.slice(8), [109], 'then only the one not warmed yet');
  walk.opened(100);
  t.equal(warmed.length, 9, 'a directory opened again warms nothing more');
  walk.opened(115);
  t.same(warmed.slice(9), [116, 117, 118, 119], 'near the end, what is left');
});

t.test('each listing keeps its own order; a directory listed twice keeps its first place', async (t) => {
  const warmed: number[] = [];
  const walk = new WalkAhead((dir) => warmed.push(dir));
  const a: number[] = [];
  const b: number[] = [];
  walk.listed(1, a);
  walk.listed(2, a);
  walk.listed(10, b);
  walk.listed(2, b);
  walk.listed(11, b);
  t.same(b, [10, 11], 'the second listing does not take a directory the first has');
  walk.opened(10);
  t.same(warmed, [11], 'the second listing warms its own next');
  walk.opened(1);
  t.same(warmed, [11, 2], 'the first listing its own');
});
