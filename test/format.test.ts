import t from 'tap';
import { randomBytes } from 'node:crypto';
import { decryptBlock, encryptBlock, paddedLength } from '../src/format/block.js';
import { checkpointKey, dataKey, logKey, newObjectId, objectIdOfDataKey, seqOf, LOG_PREFIX, CHECKPOINT_PREFIX } from '../src/format/names.js';
import { Inode, S_IFDIR, S_IFLNK, S_IFREG } from '../src/meta/inode.js';
import { IntegrityError } from '../src/errors.js';

const BS = 64 * 1024;

t.test('object names: sequence numbers round trip, data keys are random', async (t) => {
  t.equal(seqOf(logKey(42), LOG_PREFIX), 42);
  t.equal(seqOf(checkpointKey(7), CHECKPOINT_PREFIX), 7);
  t.equal(seqOf('m/junk', LOG_PREFIX), undefined);
  t.ok(logKey(9) < logKey(10), 'log keys sort numerically');
  const id = newObjectId();
  t.match(id, /^[0-9a-f]{32}$/);
  t.not(id, newObjectId());
  t.equal(objectIdOfDataKey(dataKey(id)), id);
});

t.test('padding hides exact sizes: power-of-two buckets from 4 KiB up to the block size', async (t) => {
  t.equal(paddedLength(1, BS), 4096);
  t.equal(paddedLength(4096, BS), 4096);
  t.equal(paddedLength(4097, BS), 8192);
  t.equal(paddedLength(BS, BS), BS);
  t.equal(paddedLength(40000, 32768), 32768);
});

t.test('blocks round trip and are bound to file, index and object id', async (t) => {
  const key = randomBytes(32);
  const addr = { fileId: randomBytes(16).toString('hex'), index: 3, objectId: newObjectId() };
  const plain = randomBytes(5000);
  const sealed = encryptBlock(key, addr, plain, plain.length, BS);
  t.equal(sealed.length, 8192 + 40, 'padded to the 8 KiB bucket plus nonce and tag');
  const back = decryptBlock(key, addr, sealed, BS);
  t.equal(Buffer.compare(back.subarray(0, 5000), plain), 0);
  t.ok(back.subarray(5000).every((b) => b === 0), 'padding is zeros');
  t.throws(() => decryptBlock(key, { ...addr, index: 4 }, sealed, BS), IntegrityError, 'moved to another index');
  t.throws(() => decryptBlock(key, { ...addr, fileId: randomBytes(16).toString('hex') }, sealed, BS), IntegrityError, 'moved to another file');
  t.throws(() => decryptBlock(key, { ...addr, objectId: newObjectId() }, sealed, BS), IntegrityError, 'older version under a newer name');
  t.throws(() => decryptBlock(randomBytes(32), addr, sealed, BS), IntegrityError, 'another file key');
});

t.test('inode records round trip for files, directories and symlinks', async (t) => {
  const file = new Inode(5, S_IFREG | 0o640, 1000, 100);
  file.size = 3 * BS + 10;
  file.blocks.set(0, newObjectId());
  file.blocks.set(3, newObjectId());
  const dir = new Inode(6, S_IFDIR | 0o755, 0, 0);
  const link = new Inode(7, S_IFLNK | 0o777, 0, 0);
  link.target = '../somewhere';
  for (const node of [file, dir, link]) {
    const json = JSON.parse(JSON.stringify(node.toRecord()));
    const back = Inode.fromRecord(json);
    t.same(back.toRecord(), node.toRecord(), `${node.ino} round trips`);
  }
  t.equal(Inode.fromRecord(file.toRecord()).key.toString('hex'), file.key.toString('hex'));
  t.not(file.fileId, new Inode(8, S_IFREG | 0o644, 0, 0).fileId, 'file ids are random');
});
