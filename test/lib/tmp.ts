import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void | Promise<void>): void }, label = 'veilfs-test'): string {
  const dir = mkdtempSync(path.join(tmpdir(), `${label}-`));
  // VEILFS_TEST_KEEP=1 keeps it, to look at a failure afterwards.
  if (!process.env.VEILFS_TEST_KEEP) t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
