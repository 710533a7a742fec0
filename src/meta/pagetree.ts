import { randomBytes } from 'node:crypto';

/** A page as stored: a leaf of key/value pairs, or an inner node of [smallest key below, child page id]. */
export type PageContent = { leaf: [string, unknown][] } | { node: [string, string][] };

/** Where pages live: the tree knows nothing of sealing or stores. */
export interface PageIo {
  read(id: string): Promise<PageContent>;
  write(id: string, content: PageContent): Promise<void>;
}

/** Leaves split above this many bytes of JSON; inner nodes above this many children. */
export const LEAF_BYTES = 16 * 1024;
export const FANOUT = 200;

interface Leaf {
  leaf: true;
  keys: string[];
  values: unknown[];
  sizes: number[];
  bytes: number;
}

interface Inner {
  leaf: false;
  /** keys[i]: the smallest key child i may hold; keys[0] is always "". */
  keys: string[];
  children: Child[];
}

type PageNode = Leaf | Inner;

/** A page of the tree: stored under `id` (if ever written), loaded in `node` (if in memory). */
interface Child {
  id?: string;
  node?: PageNode;
  loading?: Promise<void>;
  /** Changed since written under `id`: pinned in memory until the next flush. */
  dirty: boolean;
  /** Bumped by every change: a flush marks the page clean only if nothing changed while it wrote. */
  gen: number;
  /** Last use, for eviction of clean leaves. */
  used: number;
  /**
   * Loaded by a walk through a parent's leaves in order (a listing, find,
   * ls -l), or by a prefetch of many keys (a listing's inodes): evicted
   * before leaves loaded one at a time, so that one big listing does not
   * push out the pages of everything around it (the next lookup in the
   * parent directory read its page again: 0.6 ms; after a cold `ls -lR`
   * of 100,000 files, the `mv` of their directory waited 0.8 ms for it).
   */
  scanned?: boolean;
}

interface Step {
  child: Child;
  index: number;
}

/** Where a key's leaf is, and the smallest key of the leaf after it (undefined: the last leaf). */
interface Path {
  steps: Step[];
  leaf: Leaf;
  upper: string | undefined;
}

export interface FlushResult {
  root: string;
  height: number;
  /** Page ids the new root no longer reaches: free once it is stored. */
  replaced: string[];
}

const NEED_LOAD = Symbol('need load');
/** What PageTree.peek and the lookups built on it return for a key whose page is not in memory. */
export const NOT_RESIDENT = Symbol('not in memory');

/**
 * How an access counts for eviction. A lookup, listing or change made for
 * someone is a use: its pages become the most recently used. Applying a
 * commit's changes to the map (and reading the records they replace) is
 * upkeep: it moves a page up only when it had to load it. Otherwise every
 * commit made the pages of what it wrote the newest, and after creating
 * 100,000 files the inode pages of the last ones (which the kernel already
 * holds, and a listing does not read) pushed out the directory's entry
 * pages, which the next `find` then read back from the store, 140 of them.
 */
export type Access = 'use' | 'upkeep';

/** A page to load, and where it hangs (for readahead among its siblings). */
interface Missing {
  [NEED_LOAD]: Child;
  parent?: Inner;
  index: number;
}

/** Leaves read ahead once loads walk a parent's leaves in order (ls -l, find: inodes made together sit together). */
const READAHEAD_LEAVES = 4;

function search(keys: string[], key: string): { found: boolean; at: number } {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return { found: lo < keys.length && keys[lo] === key, at: lo };
}

/** key's value in its leaf, or undefined. */
function valueIn(leaf: Leaf, key: string): unknown {
  const { found, at } = search(leaf.keys, key);
  return found ? leaf.values[at] : undefined;
}

/** The child of an inner node that holds key: the last whose smallest key is ≤ key. */
function childIndex(node: Inner, key: string): number {
  const { found, at } = search(node.keys, key);
  return found ? at : at - 1;
}

function newPageId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * An ordered map of string keys to JSON values, kept as a copy-on-write
 * B+ tree of pages. Pages load on demand and clean leaves are evicted
 * past a memory budget, so memory follows what is used, not what exists.
 * A flush writes only the pages changed since the last one, each under a
 * fresh id (so a stored page never changes), and names the pages it
 * replaced. Operations may interleave at their awaits: each one loads
 * what it needs first, then reads or changes the tree synchronously.
 */
export class PageTree {
  private root: Child;
  private height: number;
  private clock = 0;
  private loadedLeafBytes = 0;
  /**
   * False once a walk for leaves to evict found too few clean ones: until a
   * flush cleans some or a load brings one, another walk would find none
   * either, and walking every loaded page on each operation makes an
   * operation cost the tree (writes outrunning commits, or a store that is
   * unreachable, keep every leaf dirty).
   */
  private cleanLeavesMayHelp = true;
  private replaced: string[] = [];
  private loads = 0;
  /** Per inner node, the child loaded on demand last: a walk in key order among them is told apart from other loads in between (a listing loads entries and inodes by turns). */
  private readonly lastLoad = new WeakMap<Inner, number>();

  private constructor(private readonly io: PageIo, root: Child, height: number, private readonly budgetBytes: number) {
    this.root = root;
    this.height = height;
  }

  static empty(io: PageIo, budgetBytes = 64 * 2 ** 20): PageTree {
    const leaf: Leaf = { leaf: true, keys: [], values: [], sizes: [], bytes: 0 };
    return new PageTree(io, { node: leaf, dirty: true, gen: 0, used: 0 }, 1, budgetBytes);
  }

  static open(io: PageIo, rootId: string, height: number, budgetBytes = 64 * 2 ** 20): PageTree {
    return new PageTree(io, { id: rootId, dirty: false, gen: 0, used: 0 }, height, budgetBytes);
  }

  get depth(): number {
    return this.height;
  }

  get hasChanges(): boolean {
    return this.root.dirty;
  }

  /** Pages loaded from the store since open (whether work waits for the store). */
  get loadsStarted(): number {
    return this.loads;
  }

  /** Bytes of leaves in memory (an estimate: their JSON size). */
  get residentBytes(): number {
    return this.loadedLeafBytes;
  }

  private async load(child: Child): Promise<void> {
    if (child.node) return;
    if (!child.loading) {
      this.loads++;
      const id = child.id;
      if (id === undefined) throw new Error('page tree: a page has neither an id nor content');
      child.loading = this.io.read(id).then((content) => {
        if (!child.node && child.id === id) child.node = this.fromContent(content);
      }).finally(() => {
        child.loading = undefined;
      });
    }
    await child.loading;
  }

  private fromContent(content: PageContent): PageNode {
    if ('leaf' in content) {
      const sizes = content.leaf.map(([k, v]) => k.length + JSON.stringify(v).length + 6);
      const bytes = sizes.reduce((a, b) => a + b, 0);
      this.loadedLeafBytes += bytes;
      this.cleanLeavesMayHelp = true;
      return { leaf: true, keys: content.leaf.map(([k]) => k), values: content.leaf.map(([, v]) => v), sizes, bytes };
    }
    return { leaf: false, keys: content.node.map(([k]) => k), children: content.node.map(([, id]) => ({ id, dirty: false, gen: 0, used: 0 })) };
  }

  /** Descends to key's leaf without waiting; NEED_LOAD names the page to load first. */
  private descend(key: string, access: Access = 'use'): Path | Missing {
    const steps: Step[] = [];
    let child = this.root;
    let parent: Inner | undefined;
    let upper: string | undefined;
    let index = 0;
    for (;;) {
      if (!child.node) return { [NEED_LOAD]: child, parent, index };
      if (access === 'use') child.used = ++this.clock;
      steps.push({ child, index });
      const node = child.node;
      if (node.leaf) return { steps, leaf: node, upper };
      index = childIndex(node, key);
      if (index + 1 < node.keys.length) upper = node.keys[index + 1];
      parent = node;
      child = node.children[index];
    }
  }

  /** Runs fn on key's path once every page on it is loaded (fn must not await). */
  private async withPath<T>(key: string, fn: (path: Path) => T, access: Access = 'use'): Promise<T> {
    for (;;) {
      const found = this.descend(key, access);
      if (!(NEED_LOAD in found)) {
        const result = fn(found);
        this.evict();
        return result;
      }
      found[NEED_LOAD].scanned = this.readAhead(found);
      if (access === 'upkeep') found[NEED_LOAD].used = ++this.clock;
      await this.load(found[NEED_LOAD]);
    }
  }

  /**
   * A load right after its left sibling's starts loading the next few
   * siblings too, in the background. Returns whether the load is part of
   * such a walk.
   */
  private readAhead({ parent, index }: Missing): boolean {
    // Within reach of the last load: its readahead may have loaded the leaves in between already.
    if (parent === undefined) return false;
    const last = this.lastLoad.get(parent);
    this.lastLoad.set(parent, index);
    if (last === undefined || index <= last || index > last + READAHEAD_LEAVES + 1) return false;
    for (let i = index + 1; i <= index + READAHEAD_LEAVES && i < parent.children.length; i++) {
      const sibling = parent.children[i];
      if (sibling.node || sibling.loading) continue;
      sibling.used = ++this.clock;
      sibling.scanned = true;
      // Only a guess: a page that fails to load here is loaded (and its error reported) when it is needed.
      this.load(sibling).then(() => this.evict(), () => {});
    }
    return true;
  }

  /**
   * Loads the pages on the paths to these keys, those of one level all at
   * once: one wait for the store where looking the keys up one by one
   * would wait once per page (a listing's inodes sit in several pages).
   * Only a head start: a page that fails here fails again, and is
   * reported, when a lookup needs it.
   */
  async prefetch(keys: Iterable<string>): Promise<void> {
    let waiting = [...keys];
    // A quarter of the budget at most, so what it loads is not evicted before it is used.
    const most = Math.max(1, Math.floor(this.budgetBytes / 4 / LEAF_BYTES));
    // A level per round; pages evicted meanwhile by other operations are left to the lookups.
    for (let round = 0; round <= this.height && waiting.length > 0; round++) {
      const loads = new Set<Child>();
      const still: string[] = [];
      for (const key of waiting) {
        const found = this.descend(key);
        if (!(NEED_LOAD in found)) continue;
        const child = found[NEED_LOAD];
        if (!loads.has(child) && loads.size >= most) break;
        child.used = ++this.clock;
        // Unless a lookup asked for it first, it is loaded for many keys: evicted first (Child.scanned).
        if (!child.loading) child.scanned = true;
        loads.add(child);
        still.push(key);
      }
      if (loads.size === 0) break;
      const results = await Promise.allSettled([...loads].map((child) => this.load(child)));
      if (results.some((r) => r.status === 'rejected')) break;
      waiting = still;
    }
    this.evict();
  }

  /**
   * key's value when every page on its path is in memory, without waiting
   * (a use, as get); NOT_RESIDENT when a page would have to be loaded.
   */
  peek(key: string): unknown {
    const found = this.descend(key);
    if (NEED_LOAD in found) return NOT_RESIDENT;
    this.evict();
    return valueIn(found.leaf, key);
  }

  async get(key: string, access: Access = 'use'): Promise<unknown> {
    return this.withPath(key, ({ leaf }) => valueIn(leaf, key), access);
  }

  async set(key: string, value: unknown, access: Access = 'use'): Promise<void> {
    const size = key.length + JSON.stringify(value).length + 6;
    await this.withPath(key, (path) => {
      const { leaf } = path;
      const { found, at } = search(leaf.keys, key);
      if (found) {
        leaf.bytes += size - leaf.sizes[at];
        this.loadedLeafBytes += size - leaf.sizes[at];
        leaf.values[at] = value;
        leaf.sizes[at] = size;
      } else {
        leaf.keys.splice(at, 0, key);
        leaf.values.splice(at, 0, value);
        leaf.sizes.splice(at, 0, size);
        leaf.bytes += size;
        this.loadedLeafBytes += size;
      }
      this.touch(path.steps);
      if (leaf.bytes > LEAF_BYTES && leaf.keys.length > 1) this.split(path.steps, at === leaf.keys.length - 1);
    }, access);
  }

  /** Removes key; true if it was there. */
  async delete(key: string, access: Access = 'use'): Promise<boolean> {
    return this.withPath(key, (path) => {
      const { leaf } = path;
      const { found, at } = search(leaf.keys, key);
      if (!found) return false;
      leaf.bytes -= leaf.sizes[at];
      this.loadedLeafBytes -= leaf.sizes[at];
      leaf.keys.splice(at, 1);
      leaf.values.splice(at, 1);
      leaf.sizes.splice(at, 1);
      this.touch(path.steps);
      if (leaf.keys.length === 0) this.unlinkEmpty(path.steps);
      return true;
    }, access);
  }

  /**
   * Up to `limit` pairs with from ≤ key < to, in order, and where to go on
   * (undefined: nothing more). Loads one leaf per call at most, so a big
   * range is read a page at a time.
   */
  async page(from: string, to: string, limit = Infinity): Promise<{ entries: [string, unknown][]; next: string | undefined }> {
    return this.withPath(from, ({ leaf, upper }) => {
      const entries: [string, unknown][] = [];
      let at = search(leaf.keys, from).at;
      for (; at < leaf.keys.length && leaf.keys[at] < to && entries.length < limit; at++) entries.push([leaf.keys[at], leaf.values[at]]);
      let next: string | undefined;
      if (at < leaf.keys.length) next = leaf.keys[at] < to ? leaf.keys[at] : undefined;
      else next = upper !== undefined && upper < to ? upper : undefined;
      return { entries, next };
    });
  }

  /** Every pair with from ≤ key < to, in order, a page at a time. */
  async *scan(from: string, to: string): AsyncGenerator<[string, unknown]> {
    let cursor: string | undefined = from;
    while (cursor !== undefined) {
      const { entries, next } = await this.page(cursor, to);
      yield* entries;
      cursor = next;
    }
  }

  /** Marks the path changed: every page on it gets a new id at the next flush. */
  private touch(steps: Step[]): void {
    for (const { child } of steps) {
      child.dirty = true;
      child.gen++;
    }
  }

  /**
   * Splits what outgrew its page, from the leaf up. When the key that
   * made the leaf outgrow it came last in it, the left page keeps all the
   * others: keys that only grow (new inode numbers) then fill their pages
   * instead of leaving each half empty, which halves the pages a cold
   * listing waits for.
   */
  private split(steps: Step[], appended: boolean): void {
    for (let level = steps.length - 1; level >= 0; level--) {
      const child = steps[level].child;
      const node = child.node!;
      const oversized = node.leaf ? node.bytes > LEAF_BYTES && node.keys.length > 1 : node.children.length > FANOUT;
      if (!oversized) return;
      // Above the leaf, still an append if the page that split below was this node's last child.
      if (!node.leaf) appended &&= steps[level + 1].index === node.children.length - 2;
      const right = node.leaf ? this.splitLeaf(node, appended) : this.splitInner(node, appended);
      const sibling: Child = { node: right.node, dirty: true, gen: 1, used: child.used };
      if (level === 0) {
        // The root splits: the tree grows a level.
        const inner: Inner = { leaf: false, keys: ['', right.key], children: [child, sibling] };
        this.root = { node: inner, dirty: true, gen: 1, used: child.used };
        this.height++;
        return;
      }
      const parent = steps[level - 1].child.node as Inner;
      const at = steps[level].index + 1;
      parent.keys.splice(at, 0, right.key);
      parent.children.splice(at, 0, sibling);
    }
  }

  private splitLeaf(leaf: Leaf, appended: boolean): { key: string; node: Leaf } {
    let at = 0;
    let bytes = 0;
    if (appended) at = leaf.keys.length - 1;
    else while (at < leaf.keys.length - 1 && bytes + leaf.sizes[at] <= leaf.bytes / 2) bytes += leaf.sizes[at++];
    if (at === 0) at = 1;
    const right: Leaf = { leaf: true, keys: leaf.keys.splice(at), values: leaf.values.splice(at), sizes: leaf.sizes.splice(at), bytes: 0 };
    right.bytes = right.sizes.reduce((a, b) => a + b, 0);
    leaf.bytes -= right.bytes;
    return { key: right.keys[0], node: right };
  }

  private splitInner(node: Inner, appended: boolean): { key: string; node: Inner } {
    const at = appended ? node.children.length - 1 : node.children.length >> 1;
    const right: Inner = { leaf: false, keys: node.keys.splice(at), children: node.children.splice(at) };
    const key = right.keys[0];
    right.keys[0] = '';
    // Inner keys are lower bounds; the right node's first bound moves up to its parent.
    return { key, node: right };
  }

  /** An emptied page leaves its parent (a root leaf stays, empty). */
  private unlinkEmpty(steps: Step[]): void {
    for (let level = steps.length - 1; level > 0; level--) {
      const { child, index } = steps[level];
      const node = child.node!;
      const empty = node.leaf ? node.keys.length === 0 : node.children.length === 0;
      if (!empty) break;
      if (child.id !== undefined) this.replaced.push(child.id);
      const parent = steps[level - 1].child.node as Inner;
      parent.keys.splice(index, 1);
      parent.children.splice(index, 1);
      if (parent.keys.length > 0) parent.keys[0] = '';
    }
    // A root with a single inner child hands the tree down a level.
    while (!this.root.node!.leaf && (this.root.node as Inner).children.length === 1) {
      const only = (this.root.node as Inner).children[0];
      if (!only.node) break;
      if (this.root.id !== undefined) this.replaced.push(this.root.id);
      only.dirty = true;
      only.gen++;
      this.root = only;
      this.height--;
    }
    if (!this.root.node!.leaf && (this.root.node as Inner).children.length === 0) {
      this.root.node = { leaf: true, keys: [], values: [], sizes: [], bytes: 0 };
      this.height = 1;
    }
  }

  /**
   * Writes every changed page under a fresh id (in parallel; a page is
   * written before nothing, the caller stores the root after all of them)
   * and returns the new root. Changes made while it writes stay for the
   * next flush. On failure nothing is marked written.
   */
  async flush(write: (tasks: (() => Promise<void>)[]) => Promise<void> = (t) => Promise.all(t.map((f) => f())).then(() => {})): Promise<FlushResult> {
    const planned: { child: Child; id: string; gen: number; old?: string }[] = [];
    const plan = (child: Child): string => {
      if (!child.dirty) return child.id!;
      const node = child.node!;
      const id = newPageId();
      const content: PageContent = node.leaf
        ? { leaf: node.keys.map((k, i) => [k, node.values[i]]) }
        : { node: node.keys.map((k, i) => [k, plan(node.children[i])]) };
      planned.push({ child, id, gen: child.gen, old: child.id });
      tasks.push(() => this.io.write(id, content));
      return id;
    };
    const tasks: (() => Promise<void>)[] = [];
    const rootId = plan(this.root);
    const height = this.height;
    const replaced = this.replaced;
    this.replaced = [];
    try {
      await write(tasks);
    } catch (err) {
      this.replaced.unshift(...replaced);
      throw err;
    }
    for (const p of planned) {
      if (p.old !== undefined) replaced.push(p.old);
      p.child.id = p.id;
      if (p.child.gen === p.gen) p.child.dirty = false;
    }
    this.cleanLeavesMayHelp = true;
    this.evict();
    return { root: rootId, height, replaced };
  }

  /** Drops clean leaves while over budget: those a walk loaded first, then the others, each least recently used first. */
  private evict(): void {
    if (this.loadedLeafBytes <= this.budgetBytes || !this.cleanLeavesMayHelp) return;
    const leaves: { child: Child; leaf: Leaf }[] = [];
    const collect = (child: Child) => {
      const node = child.node;
      if (!node) return;
      if (node.leaf) {
        if (!child.dirty && child.id !== undefined && child !== this.root) leaves.push({ child, leaf: node });
        return;
      }
      for (const c of node.children) collect(c);
    };
    collect(this.root);
    leaves.sort((a, b) => Number(!a.child.scanned) - Number(!b.child.scanned) || a.child.used - b.child.used);
    const target = this.budgetBytes * 0.75;
    for (const { child, leaf } of leaves) {
      if (this.loadedLeafBytes <= target) break;
      child.node = undefined;
      this.loadedLeafBytes -= leaf.bytes;
    }
    if (this.loadedLeafBytes > this.budgetBytes) this.cleanLeavesMayHelp = false;
  }
}

/**
 * Writes a whole map, given in key order, as a new tree of pages (a bulk
 * load: leaves filled to three quarters, then each level above), holding
 * only page ids in memory. For maintenance that rewrites the tree.
 */
export async function buildPages(io: PageIo, pairs: Iterable<[string, unknown]>, parallel = 16): Promise<{ root: string; height: number }> {
  const inFlight: Promise<void>[] = [];
  const write = async (content: PageContent): Promise<string> => {
    const id = newPageId();
    inFlight.push(io.write(id, content));
    if (inFlight.length >= parallel) await inFlight.shift();
    return id;
  };
  let level: [string, string][] = [];
  let leaf: [string, unknown][] = [];
  let bytes = 0;
  let previous: string | undefined;
  for (const [key, value] of pairs) {
    if (previous !== undefined && key <= previous) throw new Error('buildPages: keys out of order');
    previous = key;
    leaf.push([key, value]);
    bytes += key.length + JSON.stringify(value).length + 6;
    if (bytes >= LEAF_BYTES * 0.75) {
      level.push([level.length ? leaf[0][0] : '', await write({ leaf })]);
      leaf = [];
      bytes = 0;
    }
  }
  if (leaf.length || level.length === 0) level.push([level.length ? leaf[0][0] : '', await write({ leaf })]);
  let height = 1;
  while (level.length > 1) {
    const next: [string, string][] = [];
    const per = Math.floor(FANOUT * 0.75);
    for (let i = 0; i < level.length; i += per) {
      const children = level.slice(i, i + per);
      const node: [string, string][] = children.map(([k, id], j) => [j === 0 ? '' : k, id]);
      next.push([next.length ? children[0][0] : '', await write({ node })]);
    }
    level = next;
    height++;
  }
  await Promise.all(inFlight);
  return { root: level[0][1], height };
}
