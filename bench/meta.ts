import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { available, BIN, gocryptfs, median, on, plainDirectory, rounds, securefs, sh, timed, veilfs, type Target, type TargetFactory } from './lib.js';
import { synthesizeVault } from './synthetic-vault.js';
import { readHistory } from '../src/check/history.js';
import { subkey } from '../src/crypto/keys.js';
import { unlockVault } from '../src/format/vault.js';
import { ROOT_INO, type InodeRecord } from '../src/meta/inode.js';
import { entryKey, inodeKey } from '../src/meta/kv.js';
import { LocalState } from '../src/meta/local-state.js';
import { MetaLog } from '../src/meta/metalog.js';
import { LocalStore } from '../src/store/local.js';

/*
 * The benchmark of issue "metadata at any scale": many empty files in one
 * directory and in a tree, on every filesystem, interleaved rounds after a
 * discarded warm-up; then a vault of BENCH_BIG_FILES files (veilfs only:
 * the peers keep no metadata of their own to load) for mount time, memory
 * and the metadata a one-file change writes.
 * Env: BENCH_ROUNDS (1), BENCH_META_FILES (100000; 0: only the big vault), BENCH_BIG_FILES
 * (1000000), BENCH_ONLY (comma list of variant name fragments),
 * BENCH_SKIP_BIG (1: no big vault).
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const FILES = Number(process.env.BENCH_META_FILES ?? 100_000);
const BIG_FILES = Number(process.env.BENCH_BIG_FILES ?? 1_000_000);
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);

type Result = Record<string, number>;

/** The resident memory of the process serving a mount point (MB), 0 for none (the plain disk). */
function rssOf(mnt: string): number {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!argv.some((a) => a === mnt || a.endsWith(`/${path.basename(path.dirname(mnt))}/${path.basename(mnt)}`))) continue;
      if (!argv.some((a) => /node|veilfs|gocryptfs|securefs/.test(a))) continue;
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      if (kb) return kb / 1024;
    } catch {
      // Gone meanwhile.
    }
  }
  return 0;
}

async function remount(t: Target): Promise<void> {
  await t.unmount();
  await t.mount();
}

/** One shape of FILES empty files: `flat` in one directory, `tree` in FILES/100 directories of 100. */
async function shape(t: Target, kind: 'flat' | 'tree', r: Result): Promise<void> {
  const top = path.join(t.mnt, kind);
  mkdirSync(top);
  // xargs packs thousands of names into each touch: the cost is the filesystem's, not process starts.
  const create = kind === 'flat'
    ? `cd ${top} && seq -f 'f%.0f' 1 ${FILES} | xargs touch`
    : `cd ${top} && seq -f 'd%.0f' 1 ${FILES / 100} | xargs mkdir && for d in $(seq 1 ${FILES / 100}); do echo d$d; done | while read d; do seq -f "$d/f%.0f" 1 100; done | xargs touch`;
  r[`${kind} create`] = await timed(() => sh(create));
  r[`${kind} create rss`] = rssOf(t.mnt);
  r[`${kind} stat all`] = await timed(() => sh(`find ${top} -printf '%s %i\\n' | wc -l`));
  await remount(t);
  r[`${kind} cold ls -lR`] = await timed(() => sh(`ls -lR ${top} | wc -l`));
  r[`${kind} ls rss`] = rssOf(t.mnt);
  // rename(2) alone, from this process: timed through `mv`, the start of a
  // shell and of mv (about 4 ms, the same on every filesystem) hid it.
  r[`${kind} rename top`] = await timed(async () => renameSync(top, `${top}-moved`));
  // The same rename back at once, and again after a pause: a daemon that
  // has just answered is warm, and one idle even 10 ms is not (on this
  // VM its first request then runs 10-25x slower), which is most of what
  // a single timed rename measures.
  r[`${kind} rename back at once`] = await timed(async () => renameSync(`${top}-moved`, top));
  await new Promise((resolve) => setTimeout(resolve, 100));
  r[`${kind} rename after 0.1 s`] = await timed(async () => renameSync(top, `${top}-moved`));
  r[`${kind} rm -rf`] = await timed(() => sh(`rm -rf ${top}-moved`));
  r[`${kind} rm rss`] = rssOf(t.mnt);
}

async function workloads(t: Target): Promise<Result> {
  const r: Result = {};
  await shape(t, 'flat', r);
  await shape(t, 'tree', r);
  return r;
}

const variants: [string, TargetFactory][] = [['plain disk (ext4)', plainDirectory]];
if (await available('gocryptfs')) variants.push(['gocryptfs', gocryptfs]);
if (await available('securefs')) variants.push(['securefs (format 4)', securefs]);
variants.push(['veilfs (local store)', veilfs('local')]);
const chosen = FILES > 0 ? variants.filter(([name]) => !ONLY || ONLY.some((o) => name.includes(o))) : [];
/** Seconds to the microsecond below 0.01 (a rename), to the millisecond below one, to the hundredth above. */
const shown = (v: number) => v.toFixed(v < 0.01 ? 6 : v < 1 ? 3 : 2);
const results = await rounds(chosen.map(([name, f]) => [name, on(f, workloads)]), ROUNDS, (r) => Object.entries(r).map(([k, v]) => `${k} ${shown(v)}`).join(', '));

const medianOf = (name: string, key: string) => median((results.get(name) ?? []).map((r) => r[key]));
const peers = chosen.map(([n]) => n).filter((n) => n !== 'plain disk (ext4)' && !n.startsWith('veilfs'));
const keys = chosen.length ? Object.keys(results.get(chosen[0][0])?.[0] ?? {}) : [];
const lines = [`metadata at scale: ${FILES} empty files; seconds (rss: daemon MB); median of ${ROUNDS} round(s) after a warm-up`];
lines.push(`${'workload'.padEnd(24)} ${chosen.map(([n]) => n.slice(0, 20).padStart(21)).join('')}   ratio to best peer`);
for (const key of keys) {
  const values = chosen.map(([n]) => medianOf(n, key));
  const own = medianOf('veilfs (local store)', key);
  const best = key.endsWith('rss') || !peers.length ? undefined : Math.min(...peers.map((p) => medianOf(p, key)));
  const ratio = best && own ? (best / own).toFixed(2) : '';
  lines.push(`${key.padEnd(24)} ${values.map((v) => (v === undefined || Number.isNaN(v) ? '' : shown(v)).padStart(21)).join('')}   ${ratio}`);
}
if (chosen.length) process.stdout.write(lines.join('\n') + '\n');

if (process.env.BENCH_SKIP_BIG !== '1' && (!ONLY || ONLY.some((o) => 'veilfs'.includes(o)))) {
  const dir = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-big-'));
  try {
    process.stderr.write(`making a vault of ${BIG_FILES} files (written directly as format-3 metadata: the same objects a mount would write)...\n`);
    const store = path.join(dir, 'store');
    const env = await synthesizeVault(store, dir, BIG_FILES);
    const target = await veilfs('local', undefined, { store, env })(dir);
    try {
      await target.unmount();
      // The same steps on an empty vault: what a mount costs whatever the size (process start, key derivation, FUSE).
      const emptyDir = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-empty-'));
      const empty = await on(veilfs('local'), async (small) => {
        await small.unmount();
        return timed(() => small.mount());
      })(emptyDir).finally(() => rmSync(emptyDir, { recursive: true, force: true }));
      const mountSeconds = await timed(() => target.mount());
      const out: string[] = [`big vault: ${BIG_FILES} files in ${BIG_FILES / 1000} directories of 1000`];
      out.push(`mount: ${mountSeconds.toFixed(2)} s (an empty vault, same run: ${empty.toFixed(2)} s), daemon ${rssOf(target.mnt).toFixed(0)} MB`);
      out.push(`find | wc -l: ${(await timed(() => sh(`find ${target.mnt} | wc -l`))).toFixed(1)} s, daemon ${rssOf(target.mnt).toFixed(0)} MB`);
      const middle = Math.max(1, Math.floor(BIG_FILES / 2000));
      out.push(`ls of a 1000-entry directory: ${(await timed(() => sh(`ls -l ${target.mnt}/d${middle} | wc -l`))).toFixed(3)} s`);
      const before = metadataFiles(store);
      await sh(`echo changed > ${target.mnt}/d${middle}/f777 && ${BIN} sync ${target.mnt}`, undefined, env);
      const committed = metadataFiles(store);
      await target.unmount();
      const written = (from: Map<string, number>, to: Map<string, number>) => [...to].filter(([k]) => !from.has(k)).reduce((n, [, size]) => n + size, 0) / 1024;
      out.push(`metadata written by a change of one file: its commit ${written(before, committed).toFixed(1)} KiB; with the checkpoint of unmount ${written(before, metadataFiles(store)).toFixed(1)} KiB`);
      // Maintenance of the same vault: time, peak memory of the process, and (repair) what it writes.
      const maintenance = async (what: string, args: string) => {
        const from = metadataFiles(store);
        const { seconds, peakMb } = await peakOf(`${BIN} ${args} --store ${store} >/dev/null; test $? -le 1`, env);
        out.push(`${what}: ${seconds.toFixed(1)} s, peak ${peakMb.toFixed(0)} MB, metadata written ${written(from, metadataFiles(store)).toFixed(1)} KiB`);
      };
      await maintenance('fsck', 'fsck');
      await breakTree(store, env);
      await maintenance('fsck --repair (a cut-off directory of 1000 files, a dangling entry, a wrong link count)', 'fsck --repair');
      await maintenance('fsck after the repair', 'fsck');
      await maintenance('gc', 'gc --min-age 0s');
      process.stdout.write(out.join('\n') + '\n');
    } finally {
      await target.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Metadata objects of a local store: path → size. */
function metadataFiles(store: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(store, rel))) {
      const p = path.join(rel, name);
      const st = statSync(path.join(store, p));
      if (st.isDirectory()) walk(p);
      else if (/^(c3|m3|t)\//.test(p)) out.set(p, st.size);
    }
  };
  walk('');
  return out;
}

/** Seconds and peak resident memory (MB) of a command and its children. */
async function peakOf(command: string, env: NodeJS.ProcessEnv): Promise<{ seconds: number; peakMb: number }> {
  let stderr = '';
  const seconds = await timed(async () => {
    stderr = (await sh(`/usr/bin/time -f 'peak %M' bash -c ${JSON.stringify(command)}`, undefined, env)).stderr;
  });
  return { seconds, peakMb: Number(/peak (\d+)/.exec(stderr)?.[1] ?? 0) / 1024 };
}

/**
 * Damage a repair has to find in the whole vault: the root forgets a
 * directory (its 1000 files become unreachable), names an inode that does
 * not exist, and has a wrong link count.
 */
async function breakTree(store: string, env: NodeJS.ProcessEnv): Promise<void> {
  const objects = new LocalStore(store);
  const { header, masterKey } = await unlockVault(objects, env.VEILFS_PASSPHRASE!);
  const log = new MetaLog(objects, subkey(masterKey, 'metadata'), header, new LocalState(path.join(env.XDG_CACHE_HOME!, 'veilfs', header.vaultId)));
  const history = await readHistory(log, { whole: false });
  const root = (await history.map!.get(inodeKey(ROOT_INO))) as InodeRecord;
  log.resume(history.seq, history.checkpointSeq);
  await log.appendBody({ nextIno: history.nextIno, inodeCount: history.inodeCount, set: [[inodeKey(ROOT_INO), { ...root, nlink: root.nlink + 5 }], [entryKey(ROOT_INO, 'ghost'), [history.nextIno + 10, 8]]], del: [entryKey(ROOT_INO, 'd7')] });
}
