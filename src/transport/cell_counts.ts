/**
 * A multiset of cells (30-bit hashes, see `JsonPoint.cell`): how many points
 * of each are in requests out. The HTTP transport adds every point it sends
 * and removes it once answered, so this runs a few times per point; an open
 * addressing table of two `Int32Array`s costs a fraction of a `Map`'s
 * lookups and allocates nothing per point.
 *
 * @example
 * ```ts
 * import { CellCounts } from "./cell_counts.ts";
 *
 * const out = new CellCounts();
 * out.add(42);
 * out.add(42);
 * out.remove(42);
 * console.log(out.has(42), out.size); // true 1
 * ```
 *
 * @module
 */

/** Counts per cell; a cell is an integer from 0 to 2^30 − 1. */
export class CellCounts {
  /** cell + 1, or 0 for an empty slot. */
  #keys: Int32Array;
  #counts: Int32Array;
  #mask: number;
  #size = 0;

  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.#keys = new Int32Array(n);
    this.#counts = new Int32Array(n);
    this.#mask = n - 1;
  }

  /** Distinct cells held. */
  get size(): number {
    return this.#size;
  }

  /** Whether `cell` is held at least once. */
  has(cell: number): boolean {
    if (this.#size === 0) return false;
    const keys = this.#keys;
    const key = cell + 1;
    for (let i = cell & this.#mask;; i = (i + 1) & this.#mask) {
      const k = keys[i];
      if (k === key) return true;
      if (k === 0) return false;
    }
  }

  /** Holds `cell` once more. */
  add(cell: number): void {
    const keys = this.#keys;
    const key = cell + 1;
    let i = cell & this.#mask;
    for (; keys[i] !== 0; i = (i + 1) & this.#mask) {
      if (keys[i] === key) {
        this.#counts[i]++;
        return;
      }
    }
    keys[i] = key;
    this.#counts[i] = 1;
    if (++this.#size * 2 > keys.length) this.#grow();
  }

  /** Holds `cell` once less; a cell not held is ignored. */
  remove(cell: number): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const mask = this.#mask;
    const key = cell + 1;
    let i = cell & mask;
    for (; keys[i] !== key; i = (i + 1) & mask) if (keys[i] === 0) return;
    if (--counts[i] > 0) return;
    // Backward-shift deletion: move later entries of the run into the hole
    // unless their home slot lies cyclically within (hole, their slot].
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = (keys[j] - 1) & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (!stays) {
        keys[i] = keys[j];
        counts[i] = counts[j];
        i = j;
      }
    }
    keys[i] = 0;
    counts[i] = 0;
    this.#size--;
  }

  /** Empties it. */
  clear(): void {
    this.#keys.fill(0);
    this.#counts.fill(0);
    this.#size = 0;
  }

  #grow(): void {
    const keys = this.#keys;
    const counts = this.#counts;
    this.#keys = new Int32Array(keys.length * 2);
    this.#counts = new Int32Array(keys.length * 2);
    this.#mask = this.#keys.length - 1;
    this.#size = 0;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === 0) continue;
      const cell = keys[i] - 1;
      this.add(cell);
      this.#counts[this.#find(cell)] = counts[i];
    }
  }

  #find(cell: number): number {
    let i = cell & this.#mask;
    while (this.#keys[i] !== cell + 1) i = (i + 1) & this.#mask;
    return i;
  }
}
