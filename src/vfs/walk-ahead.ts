/** How many of the next directories of a walk load in the background while it lists one. */
const WALK_AHEAD = 8;
/** Directories remembered with their place in a walk; the oldest are forgotten first. */
const PLACES_KEPT = 65_536;

interface Place {
  siblings: number[];
  index: number;
  warmed: boolean;
}

/**
 * Guesses which directories a walk of the tree (find, ls -R, du, rsync)
 * lists next: the subdirectories a listing handed out,
 * in its order. When the walk opens one of them, the next few start
 * loading, so that with a store far away each directory does not wait
 * for its pages in turn. Only a guess: a directory nobody opens costs a
 * few page loads, and nothing else.
 */
export class WalkAhead {
  private readonly places = new Map<number, Place>();

  constructor(private readonly warm: (dir: number) => void) {}

  /** A directory a listing handed out; `siblings` collects that listing's, in order. */
  listed(dir: number, siblings: number[]): void {
    if (this.places.has(dir)) return;
    siblings.push(dir);
    this.places.set(dir, { siblings, index: siblings.length - 1, warmed: false });
    if (this.places.size > PLACES_KEPT) this.places.delete(this.places.keys().next().value!);
  }

  opened(dir: number): void {
    const place = this.places.get(dir);
    if (!place) return;
    this.places.delete(dir);
    const { siblings, index } = place;
    for (let i = index + 1; i <= index + WALK_AHEAD && i < siblings.length; i++) {
      const next = this.places.get(siblings[i]);
      if (!next || next.warmed) continue;
      next.warmed = true;
      this.warm(siblings[i]);
    }
  }
}
