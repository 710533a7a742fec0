/** One directory's entry changes in one layer: name → value (undefined: removed). */
export type DirLayer<V> = ReadonlyMap<string, V | undefined>;

/**
 * Merges of one directory's changes from several layers (a commit under
 * way holds one, changes since another), kept while nothing changes: a
 * listing reads a big directory a piece at a time, and merging (then
 * sorting) 100,000 pending names for every piece of it held a `find` up
 * for seconds while a commit of those names was under way.
 */
export class LayerMerges<V> {
  private readonly merges = new Map<number, { from: DirLayer<V>[]; version: number; merged: DirLayer<V> }>();

  /**
   * The layers' changes to dir, newest (last) winning: the same object for
   * as long as the layers are the same and version (which the caller moves
   * on every change to a layer) has not moved.
   */
  merged(dir: number, layers: DirLayer<V>[], version: number): DirLayer<V> {
    const cached = this.merges.get(dir);
    if (cached && cached.version === version && sameLayers(cached.from, layers)) return cached.merged;
    const merged = new Map<string, V | undefined>();
    for (const names of layers) for (const [name, value] of names) merged.set(name, value);
    // Only the directories being listed right now need one.
    if (this.merges.size >= 16) this.merges.clear();
    this.merges.set(dir, { from: layers, version, merged });
    return merged;
  }

  /** Drops every merge (their layers are gone into the map, which the caller no longer holds). */
  clear(): void {
    this.merges.clear();
  }
}

function sameLayers<V>(a: DirLayer<V>[], b: DirLayer<V>[]): boolean {
  return a.length === b.length && a.every((layer, i) => layer === b[i]);
}
