import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Small seeded PRNG (mulberry32): the same seed replays the same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** The outcome of one operation: what it returned, or which errno it failed with. */
export type Outcome = string;

export function outcome(fn: () => unknown): Outcome {
  try {
    const r = fn();
    return r === undefined ? 'ok' : `ok ${typeof r === 'number' ? r : ''}`.trim();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

export interface Entry {
  type: 'file' | 'dir' | 'link';
  mode: number;
  size: number;
  nlink: number;
  target?: string;
  hash?: string;
}

/** Every entry below root, relative path → what it is (content hashed when asked). */
export function snapshot(root: string, withContent: boolean): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(root, r);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) {
        out.set(r, { type: 'link', mode: 0, size: st.size, nlink: st.nlink, target: fs.readlinkSync(full) });
      } else if (st.isDirectory()) {
        out.set(r, { type: 'dir', mode: st.mode & 0o7777, size: 0, nlink: st.nlink });
        walk(r);
      } else {
        const e: Entry = { type: 'file', mode: st.mode & 0o7777, size: st.size, nlink: st.nlink };
        if (withContent) e.hash = createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 16);
        out.set(r, e);
      }
    }
  };
  walk('');
  return out;
}

/** A readable list of differences between two snapshots (empty when equal). */
export function differences(expected: Map<string, Entry>, actual: Map<string, Entry>): string[] {
  const out: string[] = [];
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (!a) out.push(`missing ${p}`);
    else if (JSON.stringify(a) !== JSON.stringify(e)) out.push(`${p}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
  }
  for (const p of actual.keys()) if (!expected.has(p)) out.push(`unexpected ${p}`);
  return out;
}
