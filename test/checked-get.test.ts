import t from 'tap';
import { getChecked } from '../src/store/checked-get.js';

/** A store read that hands out the given copies in turn, counting fetches. */
function copies(...list: string[]) {
  const source = { fetches: 0, fetch: async () => Buffer.from(list[Math.min(source.fetches++, list.length - 1)]) };
  return source;
}
const mustBeGood = (data: Buffer) => {
  if (data.toString() !== 'good') throw new Error(`bad copy: ${data}`);
  return data.toString();
};

t.test('a copy that fails its check is fetched again', async (t) => {
  const s = copies('flipped', 'good');
  const retried: unknown[] = [];
  t.equal(await getChecked(s.fetch, mustBeGood, { onRetry: (err) => retried.push(err) }), 'good');
  t.equal(s.fetches, 2);
  t.equal(retried.length, 1, 'told about the retry');
});

t.test('two equal failing copies in a row are the store content: judged at once', async (t) => {
  const s = copies('tampered', 'tampered', 'good');
  await t.rejects(getChecked(s.fetch, mustBeGood), { message: 'bad copy: tampered' });
  t.equal(s.fetches, 2);
});

t.test('copies damaged differently each time: gives up after the attempts', async (t) => {
  const s = copies('bad1', 'bad2', 'bad3', 'good');
  await t.rejects(getChecked(s.fetch, mustBeGood), { message: 'bad copy: bad3' });
  t.equal(s.fetches, 3);
});

t.test('asynchronous checks, and fetch errors pass through without a retry', async (t) => {
  const s = copies('x', 'good');
  t.equal(await getChecked(s.fetch, async (d) => mustBeGood(d)), 'good');
  let fetches = 0;
  await t.rejects(getChecked(async () => {
    fetches++;
    throw new Error('not found');
  }, mustBeGood), { message: 'not found' });
  t.equal(fetches, 1);
});
