import { S_IFDIR, S_IFMT, type InodeRecord } from './inode.js';

/**
 * The metadata as one ordered map (FORMAT.md, version 3): an inode's
 * record, a directory's entries one key each, and the vault's extended
 * attribute names. Keys sort as JavaScript strings (UTF-16 code units).
 */
const hex = (n: number) => n.toString(16).padStart(12, '0');

export const INODE_PREFIX = 'i';
export const ENTRY_PREFIX = 'e';
export const XATTR_NAME_PREFIX = 'x';
export const PACK_COUNT_PREFIX = 'r';

export const inodeKey = (ino: number) => INODE_PREFIX + hex(ino);
export const entryPrefix = (dir: number) => `${ENTRY_PREFIX}${hex(dir)}/`;
export const entryKey = (dir: number, name: string) => entryPrefix(dir) + name;
export const xattrNameKey = (name: string) => XATTR_NAME_PREFIX + name;
export const packCountKey = (pack: string) => PACK_COUNT_PREFIX + pack;
/** One past every key with the prefix (no key holds U+FFFF: names are valid UTF-16 text). */
export const prefixEnd = (prefix: string) => prefix + '\uffff';

export function inoOfKey(key: string): number {
  return parseInt(key.slice(1, 13), 16);
}

/** A directory entry key's directory and name. */
export function entryOfKey(key: string): { dir: number; name: string } {
  return { dir: parseInt(key.slice(1, 13), 16), name: key.slice(14) };
}

/**
 * A directory entry's value: the inode number and its file type (the
 * mode's type bits shifted down, which is also the dirent d_type), so a
 * listing needs no inode. 0: the type is not known (only in notes of
 * versions before format 3), look at the inode.
 */
export type EntryValue = [number, number];

export const entryValue = (ino: number, mode: number): EntryValue => [ino, (mode & S_IFMT) >> 12];

/** A whole record (format 1 and 2, entries inside) as map pairs; `modeOf` gives the entries' types. */
export function recordToKv(r: InodeRecord, modeOf: (ino: number) => number | undefined = () => undefined): [string, unknown][] {
  const { entries, ...rest } = r;
  return [[inodeKey(r.ino), rest], ...(entries ?? []).map(([name, ino]): [string, unknown] => [entryKey(r.ino, name), entryValue(ino, modeOf(ino) ?? 0)])];
}

/** A map record back into a whole record (entries given separately). */
export function kvToRecord(value: unknown, entries?: [string, number][]): InodeRecord {
  return entries ? { ...(value as InodeRecord), entries } : (value as InodeRecord);
}

/** Whole records (with entries) from every pair of the map. */
export function recordsOfKv(pairs: Iterable<[string, unknown]>): Map<number, InodeRecord> {
  const records = new Map<number, InodeRecord>();
  const entries = new Map<number, [string, number][]>();
  for (const [key, value] of pairs) {
    if (key.startsWith(INODE_PREFIX)) records.set(inoOfKey(key), value as InodeRecord);
    else if (key.startsWith(ENTRY_PREFIX)) {
      const { dir, name } = entryOfKey(key);
      let list = entries.get(dir);
      if (!list) entries.set(dir, (list = []));
      list.push([name, (value as EntryValue)[0]]);
    }
  }
  for (const [ino, value] of records) {
    records.set(ino, kvToRecord(value, (value.mode & S_IFMT) === S_IFDIR ? entries.get(ino) ?? [] : undefined));
  }
  return records;
}
