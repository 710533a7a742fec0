import t from 'tap';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PackedSegments } from '../src/data/packed.js';
import { JournaledStore } from '../src/journal/journaled-store.js';
import { Wal } from '../src/journal/wal.js';
import { FaultStore } from '../src/store/fault.js';
import { LocalStore } from '../src/store/local.js';
import { ConflictError, keysOf, NotFoundError, StoreFullError, type PutOptions } from '../src/store/types.js';
import { processIdentity } from '../src/util/processes.js';
import { tempDir } from './lib/tmp.js';

/** Records the order in which the remote completes operations; puts of chosen keys can be held. */
class RecordingStore extends LocalStore {
  done: string[] = [];
  private held = new Map<string, Promise<void>>();
  private releasers = new Map<string, () => void>();

  hold(prefix: string): void {
    this.held.set(prefix, new Promise((resolve) => this.releasers.set(prefix, resolve)));
  }

  release(prefix: string): void {
    this.releasers.get(prefix)?.();
    this.held.delete(prefix);
  }

  override async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    for (const [prefix, gate] of this.held) if (key.startsWith(prefix)) await gate;
    await super.put(key, data, options);
    this.done.push(`put ${key}`);
  }

  override async delete(key: string): Promise<void> {
    await super.delete(key);
    this.done.push(`delete ${key}`);
  }
}

function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  return { journalDir: path.join(dir, 'journal'), remote: new RecordingStore(path.join(dir, 'remote')) };
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

t.test('reads see the journal over the remote; uploads drain it', async (t) => {
  const { journalDir, remote } = setup(t);
  await remote.put('d/old', Buffer.from('remote only'));
  remote.hold('d/');
  const j = await JournaledStore.open(remote, { dir: journalDir });
  await j.put('d/new', Buffer.from('journaled'));
  t.equal((await j.get('d/new')).toString(), 'journaled', 'readable before upload');
  t.equal((await j.get('d/new', { offset: 2, length: 3 })).toString(), 'urn', 'ranges too');
  t.same(await j.stat('d/new'), { size: 9 });
  t.equal(await remote.stat('d/new'), undefined, 'not uploaded while the store holds');
  t.same(keysOf(await j.list('d/')), ['d/new', 'd/old'], 'list merges both');
  await j.delete('d/old');
  await t.rejects(j.get('d/old'), NotFoundError, 'a journaled delete hides the remote object');
  t.same(keysOf(await j.list('d/')), ['d/new']);
  t.same(j.backlog.entries, 2);
  remote.release('d/');
  t.ok(await j.drain(5000), 'drained');
  t.equal((await remote.get('d/new')).toString(), 'journaled');
  t.equal(await remote.stat('d/old'), undefined);
  t.same(j.backlog, { entries: 0, bytes: 0 });
  await j.close();
  t.same(readdirSync(journalDir).filter((n) => n.endsWith('.wal')), [], 'no segment left once all is uploaded');
});

t.test('a create or delete reaches the store only after everything before it, and blocks what follows', async (t) => {
  const { journalDir, remote } = setup(t);
  const j = await JournaledStore.open(remote, { dir: journalDir });
  remote.hold('d/a');
  await j.put('d/a', Buffer.from('block a'));
  await j.put('d/b', Buffer.from('block b'));
  await j.put('m/1', Buffer.from('commit 1 refers to a, b'), { ifAbsent: true });
  await j.delete('d/zzz');
  await j.put('m/2', Buffer.from('commit 2'), { ifAbsent: true });
  await j.put('d/c', Buffer.from('block c'));
  await until(() => remote.done.includes('put d/b') && remote.done.includes('put d/c'));
  t.notOk(remote.done.includes('put m/1'), 'the commit waits for the held block it follows');
  remote.release('d/a');
  t.ok(await j.drain(5000));
  const order = remote.done;
  const at = (op: string) => order.indexOf(op);
  t.ok(at('put d/a') < at('put m/1') && at('put d/b') < at('put m/1'), `commit after its blocks: ${order.join(', ')}`);
  t.ok(at('put m/1') < at('delete d/zzz') && at('delete d/zzz') < at('put m/2'), 'ordered entries keep their order');
  t.ok(at('put d/c') < at('put m/1'), 'a fresh block after them did not have to wait');
  await j.close();
});

t.test('with the store down, writes still succeed; closing keeps them; the next open uploads them', async (t) => {
  const { journalDir, remote } = setup(t);
  const faulty = new FaultStore(remote, { down: true });
  const j = await JournaledStore.open(faulty, { dir: journalDir, log: () => {} });
  for (let i = 0; i < 20; i++) await j.put(`d/${i}`, Buffer.alloc(10_000, i));
  await j.put('m/1', Buffer.from('commit'), { ifAbsent: true });
  await j.sync();
  t.notOk(await j.drain(300), 'cannot drain while the store is down');
  t.equal(j.backlog.entries, 21);
  await j.close();
  t.same(keysOf(await remote.list('')), [], 'nothing reached the store');

  const again = await JournaledStore.open(remote, { dir: journalDir, log: () => {} });
  t.ok(await again.drain(5000), 'the next open uploads everything');
  t.equal(keysOf(await remote.list('d/')).length, 20);
  t.equal((await remote.get('d/7'))[0], 7);
  t.equal((await remote.get('m/1')).toString(), 'commit');
  await again.close();
});

t.test('a torn record at the end of the log is dropped, the records before it kept', async (t) => {
  const { journalDir, remote } = setup(t);
  const faulty = new FaultStore(remote, { down: true });
  const logs: string[] = [];
  const j = await JournaledStore.open(faulty, { dir: journalDir, log: (m) => logs.push(m) });
  await j.put('d/kept', Buffer.from('kept'));
  await j.put('d/also', Buffer.from('also kept'));
  await j.close();
  const segment = readdirSync(journalDir).filter((n) => n.endsWith('.wal'))[0];
  // What a kill in the middle of an append leaves: the start of a record.
  appendFileSync(path.join(journalDir, segment), Buffer.from([0x56, 0x57, 0x4c, 0x31, 0, 0, 0, 20, 0, 0, 0, 9]));
  const { wal, records } = await Wal.open(journalDir, { log: (m) => logs.push(m) });
  t.same(records.map((r) => r.key), ['d/kept', 'd/also']);
  t.match(logs.join('\n'), /torn record/);
  await wal.close();

  // A flipped byte inside the last record: its CRC fails, it is dropped.
  const file = path.join(journalDir, segment);
  const bytes = readFileSync(file);
  bytes[bytes.length - 3] ^= 0xff;
  writeFileSync(file, bytes);
  const reopened = await JournaledStore.open(remote, { dir: journalDir, log: (m) => logs.push(m) });
  t.ok(await reopened.drain(5000));
  t.equal((await remote.get('d/kept')).toString(), 'kept');
  t.equal(await remote.stat('d/also'), undefined, 'the damaged record was not uploaded');
  await reopened.close();
});

t.test('a write the store acknowledged but lost is uploaded again', async (t) => {
  const { journalDir, remote } = setup(t);
  const faulty = new FaultStore(remote, { lostWriteRate: 1 });
  const j = await JournaledStore.open(faulty, { dir: journalDir, log: () => {} });
  await j.put('d/x', Buffer.from('must arrive'));
  await until(() => faulty.injected >= 1);
  faulty.setConfig({});
  t.ok(await j.drain(10_000));
  t.equal((await remote.get('d/x')).toString(), 'must arrive');
  await j.close();
});

t.test('a create that finds its own earlier upload is done; one that finds another writer\'s stops the uploads', async (t) => {
  const { journalDir, remote } = setup(t);
  await remote.put('m/1', Buffer.from('same bytes'));
  await remote.put('m/2', Buffer.from('another writer'));
  const logs: string[] = [];
  const j = await JournaledStore.open(remote, { dir: journalDir, log: (m) => logs.push(m) });
  await j.put('m/1', Buffer.from('same bytes'), { ifAbsent: true });
  await j.put('m/2', Buffer.from('mine'), { ifAbsent: true });
  await j.put('d/after', Buffer.from('x'));
  await t.rejects(j.put('m/2', Buffer.from('again'), { ifAbsent: true }), ConflictError, 'a pending create conflicts locally');
  t.notOk(await j.drain(1000), 'the conflict stops the drain');
  t.match(logs.join('\n'), /another writer created m\/2/);
  t.equal((await remote.get('m/2')).toString(), 'another writer', 'never overwritten');
  await j.close();
  t.ok(readdirSync(journalDir).some((n) => n.endsWith('.wal')), 'the unuploaded changes stay in the journal');
});

t.test('a create that finds its own earlier upload through a damaged read is still done', async (t) => {
  const { journalDir, remote } = setup(t);
  await remote.put('m/1', Buffer.from('same bytes'));
  // The first read of it comes back with a bit flipped, as a flaky store's may.
  let reads = 0;
  const flaky = Object.assign(Object.create(remote) as LocalStore, {
    get: async (key: string) => {
      const bytes = await remote.get(key);
      if (key === 'm/1' && reads++ === 0) bytes[0] ^= 1;
      return bytes;
    },
  });
  const logs: string[] = [];
  const j = await JournaledStore.open(flaky, { dir: journalDir, log: (m) => logs.push(m) });
  await j.put('m/1', Buffer.from('same bytes'), { ifAbsent: true });
  await j.put('d/after', Buffer.from('x'));
  t.ok(await j.drain(5000), 'everything is uploaded');
  t.ok(reads >= 2, 'the object was read again');
  t.notMatch(logs.join('\n'), /another writer/, 'no other writer is imagined');
  t.equal((await remote.get('d/after')).toString(), 'x');
  await j.close();
});

t.test('a full journal makes writers wait, then fail with StoreFullError', async (t) => {
  const { journalDir, remote } = setup(t);
  const j = await JournaledStore.open(new FaultStore(remote, { down: true }), { dir: journalDir, maxBytes: 100_000, spaceWaitMs: 300, log: () => {} });
  await j.put('d/1', Buffer.alloc(60_000));
  const started = Date.now();
  await t.rejects(j.put('d/2', Buffer.alloc(60_000)), StoreFullError);
  t.ok(Date.now() - started >= 250, 'waited for space first');
  await j.put('m/1', Buffer.from('small commits still go in'), { ifAbsent: true });
  await j.close();
});

t.test('one process per journal', async (t) => {
  const { journalDir, remote } = setup(t);
  const j = await JournaledStore.open(remote, { dir: journalDir });
  await t.rejects(JournaledStore.open(remote, { dir: journalDir }), /in use by another veilfs process/);
  await j.close();
  const again = await JournaledStore.open(remote, { dir: journalDir });
  await again.close();
  writeFileSync(path.join(journalDir, 'lock'), '999999999\n');
  const stale = await JournaledStore.open(remote, { dir: journalDir });
  t.pass('a lock of a dead process is taken over');
  await stale.close();

  // A live process of another program: its identity locks, the same pid with another start time does not.
  const other = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => other.kill('SIGKILL'));
  const zombie = Number(await new Promise<string>((resolve) => other.stdout!.once('data', (d) => resolve(String(d)))));
  const owner = await processIdentity(other.pid);
  t.match(owner, /^\d+ \d+$/, 'a process is named by pid and start time');
  writeFileSync(path.join(journalDir, 'lock'), `${owner}\n`);
  await t.rejects(JournaledStore.open(remote, { dir: journalDir }), new RegExp(`in use by another veilfs process on this machine \\(pid ${other.pid}\\)`));
  const [pid, started] = owner.split(' ');
  writeFileSync(path.join(journalDir, 'lock'), `${pid} ${Number(started) - 1}\n`);
  const reused = await JournaledStore.open(remote, { dir: journalDir });
  t.pass('the lock of a process whose pid went to another one is taken over');
  await reused.close();
  // The shell's child exits while `sleep 30` (the shell, exec'd) never reaps it: a zombie still answers kill(pid, 0).
  for (let i = 0; i < 100 && readFileSync(`/proc/${zombie}/stat`, 'utf8').split(') ')[1][0] !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(readFileSync(`/proc/${zombie}/stat`, 'utf8').split(') ')[1][0], 'Z', 'the owner is a zombie');
  writeFileSync(path.join(journalDir, 'lock'), `${zombie}\n`);
  const afterZombie = await JournaledStore.open(remote, { dir: journalDir });
  t.pass('the lock of a process that exited but is not reaped yet is taken over');
  await afterZombie.close();
});

t.test('segments roll over and are deleted once uploaded', async (t) => {
  const dir = tempDir(t);
  const { wal } = await Wal.open(dir, { segmentBytes: 1000 });
  const records = [];
  for (let i = 0; i < 10; i++) records.push(await wal.append({ op: 'put', key: `d/${i}` }, Buffer.alloc(400, i)));
  t.ok(readdirSync(dir).filter((n) => n.endsWith('.wal')).length >= 4, 'several segments');
  t.equal((await wal.read(records[3]))[0], 3);
  t.equal((await wal.read(records[3], { offset: 10, length: 5 })).length, 5);
  for (const r of records.slice(0, 8)) wal.release(r);
  await wal.sync();
  t.ok(readdirSync(dir).filter((n) => n.endsWith('.wal')).length <= 3, 'released segments are gone');
  t.equal(wal.bytes, 800);
  await wal.close();
  const { wal: again, records: left } = await Wal.open(dir);
  const keys = left.map((r) => r.key);
  t.ok(keys.includes('d/8') && keys.includes('d/9'), `unreleased records survive reopening (${keys})`);
  t.notOk(keys.includes('d/0'), 'records of deleted segments do not come back');
  await again.close();
});

t.test('pieces of a pack that was stored whole later are not taken for an unfinished pack when the journal is opened again', async (t) => {
  const { journalDir, remote } = setup(t);
  const key = `p/ab/${'ab'.repeat(16)}`;
  const whole = Buffer.alloc(3000, 3);
  const j = await JournaledStore.open(remote, { dir: journalDir, segmentBytes: 4096, log: () => {} });
  await j.appendPart(key, 0, Buffer.alloc(1000, 1));
  // Keeps the first segment (and the pieces in it) on disk after the pack is stored.
  await j.note(Buffer.from('a note no commit holds yet'));
  await j.put('x/1', Buffer.alloc(5000, 2));
  await j.put(key, whole);
  await j.put('x/2', Buffer.alloc(5000, 2));
  t.ok(await j.drain(10_000), 'everything uploaded');
  await j.close();

  const again = await JournaledStore.open(remote, { dir: journalDir, segmentBytes: 4096, log: () => {} });
  t.same((await again.unfinishedObjects()).map((o) => o.key), [key], 'the pieces come back without the put that finished them (its segment is gone)');
  const logs: string[] = [];
  await PackedSegments.recover(again, again, (m) => logs.push(m));
  t.same(await again.get(key), whole, 'the pack is left as it was, not replaced by its first piece');
  t.ok(await again.drain(10_000));
  t.same(await remote.get(key), whole, 'in the store too');
  t.same(await again.unfinishedObjects(), [], 'and the pieces are let go');
  t.same(logs, [], 'nothing was completed');
  await again.close();
});

t.test('a note written while a commit drops the notes before it is kept, and let go by the next drop', async (t) => {
  const { journalDir, remote } = setup(t);
  const j = await JournaledStore.open(remote, { dir: journalDir, log: () => {} });
  await j.note(Buffer.from('held by the commit'));
  // A commit drops what it holds while the next note is being written.
  const writing = j.note(Buffer.from('written during the commit'));
  j.dropNotes(1);
  await writing;
  t.equal(j.noteCount, 1, 'the note written meanwhile is still pending');
  t.same((await j.pendingNotes()).map(String), ['written during the commit']);
  j.dropNotes();
  t.equal(j.noteCount, 0);
  await j.close();
  t.same(readdirSync(journalDir).filter((n) => n.endsWith('.wal')), [], 'every note let go: a clean close leaves no journal to resume');
  const again = await JournaledStore.open(remote, { dir: journalDir, log: () => {} });
  t.same(await again.pendingNotes(), [], 'and nothing comes back at the next open');
  await again.close();
});

t.test('a journal whose directory is removed while open makes it again and journals on, reading older records from the files it holds', async (t) => {
  const dir = path.join(tempDir(t), 'journal');
  const said: string[] = [];
  let remade = 0;
  const { wal } = await Wal.open(dir, { log: (m) => said.push(m), onDirRemade: async () => void remade++ });
  const before = await wal.append({ op: 'put', key: 'd/1' }, Buffer.from('before'));
  rmSync(dir, { recursive: true, force: true });
  const after = await wal.append({ op: 'put', key: 'd/2' }, Buffer.from('after'));
  t.ok(existsSync(dir), 'the directory is back');
  t.equal(readdirSync(dir).filter((n) => n.endsWith('.wal')).length, 1, 'with a segment for what comes next');
  t.not(after.segment, before.segment, 'in a new segment');
  t.equal(String(await wal.read(before)), 'before', 'a record of the removed segment is still read');
  t.equal(String(await wal.read(after)), 'after');
  await wal.sync();
  t.equal(remade, 1, 'the owner is told once (it writes its lock again)');
  t.match(said.join('\n'), /was removed while in use, and is made again/);
  rmSync(dir, { recursive: true, force: true });
  await wal.sync();
  t.equal(remade, 2, 'a sync notices too');
  wal.release(before);
  wal.release(after);
  await wal.close();
  const { records } = await Wal.open(dir);
  t.same(records, [], 'nothing left behind to replay');
});

t.test('the lock is written again when its directory was removed', async (t) => {
  const { journalDir, remote } = setup(t);
  const j = await JournaledStore.open(remote, { dir: journalDir, segmentBytes: 1000 });
  rmSync(journalDir, { recursive: true, force: true });
  await j.put('d/1', Buffer.alloc(10));
  t.ok(existsSync(path.join(journalDir, 'lock')), 'the lock is back');
  t.equal(readFileSync(path.join(journalDir, 'lock'), 'utf8'), `${await processIdentity()}\n`, 'naming this process, for any other that would open the journal');
  await j.close();
});
