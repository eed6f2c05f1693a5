/**
 * Two-level cache: L1 in this process (bounded, no serialization), L2 shared between replicas (Redis) so that a
 * reconcile storm costs one registry round trip, not one per replica (DESIGN.md sections 1.5 and 7).
 *
 * - `memory://`: L1 only (a keyv memory map behind it would only store everything twice).
 * - `redis://`, `rediss://`: L2 entries are HMAC-authenticated (see envelope.ts); an entry that fails
 *   verification is a miss, counted as `forged`. An HMAC key is mandatory.
 * - Redis failures never escape: get/set/delete fall back to L1, a failed read is a miss (never a hit), and
 *   `ready()` reports L2 health for /readyz.
 */
import type { Logger } from 'pino';
import { importHmacKey, openEntry, sealEntry } from './envelope.ts';
import type { KeyObject } from 'node:crypto';
import { DEFAULT_L1_MAX_ENTRIES, L1Cache } from './l1.ts';
import type { CacheEntry } from './l1.ts';
import type { RedisL2 } from './redis-l2.ts';

export type CacheLayer = 'l1' | 'l2';
export type CacheResult = 'hit' | 'miss' | 'forged' | 'error' | 'set';
export interface CacheEvent {
  layer: CacheLayer;
  result: CacheResult;
}

export const DEFAULT_CACHE_NAMESPACE = 'sigpin';
export const DEFAULT_L2_TIMEOUT_MS = 200;
export const DEFAULT_L2_RETRY_MS = 1_000;
export const DEFAULT_L2_CONNECT_TIMEOUT_MS = 1_000;

export interface CacheOptions {
  /** Required. `memory://` (L1 only), `redis://[user:pass@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** Required. Library logger; the Redis URL is never logged (it may carry a password). */
  logger: Logger;
  /** Optional, default 50,000. L1 bound in entries; the least recently used entry goes first. */
  l1MaxEntries?: number;
  /**
   * Required for Redis (>= 32 bytes, e.g. the content of `cache.hmacKeyFile`); ignored for memory://.
   * Every replica sharing the Redis needs the same key.
   */
  hmacKey?: Buffer;
  /** Optional, default `sigpin`. Prefix of every Redis key (`<namespace>::<key>`), and part of the MAC. */
  namespace?: string;
  /** Optional, default 200. Bound on each Redis operation; a slower one counts as a failure. */
  l2TimeoutMs?: number;
  /** Optional, default 1,000. Minimum time between reconnection probes while Redis is unavailable. */
  l2RetryMs?: number;
  /** Optional, default 1,000. TCP/TLS connect timeout for Redis. */
  l2ConnectTimeoutMs?: number;
  /** Optional. Called for every layer outcome (metrics); must not throw (exceptions are swallowed). */
  onEvent?: (event: CacheEvent) => void;
  /** Optional, default `Date.now`. Clock for TTLs (tests inject one). */
  now?: () => number;
}

export type { CacheEntry };

export class TieredCache {
  readonly #l1: L1Cache;
  readonly #l2: RedisL2 | undefined;
  readonly #hmacKey: KeyObject | undefined;
  readonly #namespace: string;
  readonly #logger: Logger;
  readonly #onEvent: ((event: CacheEvent) => void) | undefined;
  readonly #now: () => number;
  #closed = false;

  private constructor(options: CacheOptions, l2: RedisL2 | undefined, hmacKey: KeyObject | undefined) {
    this.#l1 = new L1Cache(options.l1MaxEntries ?? DEFAULT_L1_MAX_ENTRIES);
    this.#l2 = l2;
    this.#hmacKey = hmacKey;
    this.#namespace = options.namespace ?? DEFAULT_CACHE_NAMESPACE;
    this.#logger = options.logger;
    this.#onEvent = options.onEvent;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Builds the cache for `options.url`. Throws on configuration errors (unknown scheme, missing or short HMAC
   * key for Redis, bad L1 bound); an unreachable Redis does not throw: the cache starts with L2 unhealthy.
   */
  static async create(options: CacheOptions): Promise<TieredCache> {
    const scheme = cacheUrlScheme(options.url);
    if (scheme === 'memory') return new TieredCache(options, undefined, undefined);
    if (options.hmacKey === undefined) {
      throw new Error(
        'cache: a shared Redis cache needs an HMAC key (cache.hmacKeyFile), otherwise anyone who can write to ' +
          'Redis could forge cached verdicts'
      );
    }
    const hmacKey = importHmacKey(options.hmacKey);
    new L1Cache(options.l1MaxEntries ?? DEFAULT_L1_MAX_ENTRIES); // validate the bound before connecting
    // The Redis client is loaded only for a shared store, so a memory-only provider does not carry it.
    const { RedisL2: RedisStore } = await import('./redis-l2.ts');
    const l2 = await RedisStore.open({
      url: options.url,
      namespace: options.namespace ?? DEFAULT_CACHE_NAMESPACE,
      timeoutMs: options.l2TimeoutMs ?? DEFAULT_L2_TIMEOUT_MS,
      retryMs: options.l2RetryMs ?? DEFAULT_L2_RETRY_MS,
      connectTimeoutMs: options.l2ConnectTimeoutMs ?? DEFAULT_L2_CONNECT_TIMEOUT_MS,
      logger: options.logger,
      now: options.now ?? Date.now,
    });
    return new TieredCache(options, l2, hmacKey);
  }

  /** Entries currently held in L1 (expired ones count until they are touched or evicted). */
  get l1Size(): number {
    return this.#l1.size;
  }

  /** The cache's clock (ms since the epoch); entry times use it. */
  now(): number {
    return this.#now();
  }

  /** Whether this cache has a shared L2 (false for memory://). */
  get shared(): boolean {
    return this.#l2 !== undefined;
  }

  /** The live entry for `key`: from L1, else from L2 (verified, then copied into L1 for its remaining TTL). */
  async getEntry<T>(key: string): Promise<CacheEntry<T> | undefined> {
    return this.getLocalEntry<T>(key) ?? this.#getFromL2<T>(key, this.#now());
  }

  /**
   * The live L1 entry, synchronously, counted as an L1 hit or miss. Hot paths call this first and
   * `getSharedEntry` only on a miss, which saves an await per hit (together they are `getEntry`).
   */
  getLocalEntry<T>(key: string): CacheEntry<T> | undefined {
    // The cache is untyped storage: T is what the caller stored under this key.
    const local = this.#l1.get(key, this.#now()) as CacheEntry<T> | undefined;
    this.#emit('l1', local === undefined ? 'miss' : 'hit');
    return local;
  }

  /** The live L2 entry only (skipping L1, which it then replaces); undefined for memory://. */
  async getSharedEntry<T>(key: string): Promise<CacheEntry<T> | undefined> {
    return this.#getFromL2<T>(key, this.#now());
  }

  /**
   * The live L1 entry, synchronously, when `accept(value, now)` takes it: then counted as an L1 hit. Otherwise
   * undefined and not counted: the caller goes on to `getEntry`/`getLocalEntry`, which counts the lookup once
   * (a stale or negative entry must not be counted twice).
   */
  peekLocalHit<T>(key: string, accept: (value: unknown, now: number) => boolean): CacheEntry<T> | undefined {
    const now = this.#now();
    const local = this.#l1.get(key, now);
    if (local === undefined || !accept(local.value, now)) return undefined;
    this.#emit('l1', 'hit');
    return local as CacheEntry<T>;
  }

  /** The live L1 entry, synchronously and without counting it (for re-checks). */
  peekLocal<T>(key: string): CacheEntry<T> | undefined {
    return this.#l1.get(key, this.#now()) as CacheEntry<T> | undefined;
  }

  /**
   * Stores `value` (plain JSON data, treated as immutable) for `ttlMs` in L1 and, when healthy, in L2.
   * Resolves once the L2 write has finished or failed (bounded by l2TimeoutMs); never rejects.
   */
  async set<T>(key: string, value: T, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) return;
    const storedAt = this.#now();
    const expiresAt = storedAt + Math.ceil(ttlMs);
    this.#l1.set(key, value, storedAt, expiresAt);
    this.#emit('l1', 'set');
    const l2 = this.#l2;
    const hmacKey = this.#hmacKey;
    if (l2 === undefined || hmacKey === undefined || !l2.available()) return;
    const payload = toJson(value);
    if (payload === undefined) {
      this.#emit('l2', 'error');
      this.#logger.error({ key }, 'cache: value is not JSON data, kept in L1 only');
      return;
    }
    try {
      const sealed = sealEntry(hmacKey, this.#namespace, key, storedAt, expiresAt, payload);
      await l2.set(key, sealed, expiresAt - storedAt);
      this.#emit('l2', 'set');
    } catch (err) {
      this.#emit('l2', 'error');
      this.#logger.debug({ err, key }, 'cache: L2 write failed');
    }
  }

  /** Removes `key` from both layers (best effort on L2). */
  async delete(key: string): Promise<void> {
    this.#l1.delete(key);
    const l2 = this.#l2;
    if (l2 === undefined || !l2.available()) return;
    try {
      await l2.delete(key);
    } catch (err) {
      this.#emit('l2', 'error');
      this.#logger.debug({ err, key }, 'cache: L2 delete failed');
    }
  }

  /** Readiness: always true for memory://; for Redis, whether a PING answers now (reconnecting if needed). */
  async ready(): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#l2 === undefined) return true;
    return this.#l2.probe();
  }

  /** Closes the Redis connection; afterwards only L1 answers and `ready()` is false. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#l2?.close();
  }

  async #getFromL2<T>(key: string, now: number): Promise<CacheEntry<T> | undefined> {
    const l2 = this.#l2;
    const hmacKey = this.#hmacKey;
    if (l2 === undefined || hmacKey === undefined) return undefined;
    if (!l2.available()) {
      this.#emit('l2', 'error');
      return undefined;
    }
    let raw: string | undefined;
    try {
      raw = await l2.get(key);
    } catch (err) {
      this.#emit('l2', 'error');
      this.#logger.debug({ err, key }, 'cache: L2 read failed');
      return undefined;
    }
    if (raw === undefined) {
      this.#emit('l2', 'miss');
      return undefined;
    }
    const opened = openEntry(hmacKey, this.#namespace, key, raw);
    if (opened === undefined) {
      this.#emit('l2', 'forged');
      this.#logger.warn(
        { key },
        'cache: ignored an L2 entry whose MAC does not verify (forged or other key)'
      );
      return undefined;
    }
    if (opened.expiresAt <= now) {
      this.#emit('l2', 'miss');
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(opened.payload);
    } catch (err) {
      // Authentic but unreadable: written by a buggy or incompatible replica, not an attacker.
      this.#emit('l2', 'error');
      this.#logger.error({ err, key }, 'cache: authenticated L2 entry is not JSON');
      return undefined;
    }
    this.#l1.set(key, value, opened.storedAt, opened.expiresAt);
    this.#emit('l2', 'hit');
    return { value: value as T, storedAt: opened.storedAt, expiresAt: opened.expiresAt, layer: 'l2' };
  }

  #emit(layer: CacheLayer, result: CacheResult): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent({ layer, result });
    } catch {
      // Metrics must never break a lookup.
    }
  }
}

/** `memory` or `redis` (redis:// and rediss://); throws a clear error for anything else. */
export function cacheUrlScheme(url: string): 'memory' | 'redis' {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'memory') return 'memory';
  if (scheme === 'redis' || scheme === 'rediss') return 'redis';
  // The URL itself is not echoed: it may carry a password.
  throw new Error(
    `cache: unsupported cache url scheme "${scheme ?? ''}" (use memory://, redis:// or rediss://)`
  );
}

function toJson(value: unknown): string | undefined {
  try {
    const text: unknown = JSON.stringify(value);
    return typeof text === 'string' ? text : undefined;
  } catch {
    return undefined; // BigInt, cycles
  }
}
