import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Per-user cache directory: $XDG_CACHE_HOME/veilfs or ~/.cache/veilfs. */
export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'veilfs');
}

/**
 * What this machine remembers about a vault, kept outside the store: the
 * highest metadata sequence number it has seen, so a store that rolls the
 * metadata log back is caught.
 */
export class LocalState {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async highestSeq(): Promise<number> {
    try {
      const n = Number((await fs.readFile(path.join(this.dir, 'seq'), 'utf8')).trim());
      return Number.isSafeInteger(n) && n >= 0 ? n : 0;
    } catch {
      return 0;
    }
  }

  async recordSeq(seq: number): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, 'seq');
    const temp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temp, `${seq}\n`);
    await fs.rename(temp, file);
  }
}
