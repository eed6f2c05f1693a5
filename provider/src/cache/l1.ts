/**
 * L1: the in-process cache. A `Map` used as an (approximate) LRU list, insertion order = recency order, bounded
 * by entry count, holding values as they are (no serialization: performance.md B3.5 measured keyv's memory store at 4x
 * the memory and half the throughput of a plain Map).
 */

/** One cached value with its absolute times (ms since the epoch, from the cache's clock). */
export interface CacheEntry<T> {
  readonly value: T;
  readonly storedAt: number;
  readonly expiresAt: number;
  /** Which layer answered: `l1` (this process) or `l2` (the shared store, then copied into L1). */
  readonly layer: 'l1' | 'l2';
}

export const DEFAULT_L1_MAX_ENTRIES = 50_000;

/** An L1 entry: the public fields plus when it last moved to the most recent end (see `get`). */
interface L1Entry extends CacheEntry<unknown> {
  position: number;
}

export class L1Cache {
  readonly #entries = new Map<string, L1Entry>();
  readonly #maxEntries: number;
  /** Counts moves to the most recent end of the map; `#moves - entry.position` bounds how far an entry is from it. */
  #moves = 0;

  constructor(maxEntries: number = DEFAULT_L1_MAX_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`cache: l1MaxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get maxEntries(): number {
    return this.#maxEntries;
  }

  /**
   * The live entry for `key` at time `now`; an expired entry is dropped. A hit moves the entry to the most
   * recent end only when it has drifted into the older half: an entry in the newer half cannot be evicted before
   * maxEntries/2 more insertions, and skipping the move (a Map delete + set) makes hits ~10x cheaper.
   */
  get(key: string, now: number): CacheEntry<unknown> | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    if (this.#moves - entry.position > this.#maxEntries / 2) {
      this.#entries.delete(key);
      entry.position = ++this.#moves;
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Stores an entry as most recently used, evicting the least recently used ones beyond the bound. */
  set(key: string, value: unknown, storedAt: number, expiresAt: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, storedAt, expiresAt, layer: 'l1', position: ++this.#moves });
    while (this.#entries.size > this.#maxEntries) {
      // The first key in iteration order is the least recently used one.
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}
