/**
 * The one place caching policy lives (DESIGN.md section 7): fresh hits, stale-while-revalidate, negative entries
 * for definitive failures only, and one load per key at a time in this process.
 *
 *   const { value, source } = await loader.load(`digest:${ref}`, (signal) => resolve(ref, signal), {
 *     ttlMs: 60_000, staleMs: 30_000, negativeTtlMs: 30_000,
 *   });
 *
 * - fresh entry (younger than ttlMs): returned with source `l1` or `l2`.
 * - stale entry (older than ttlMs, younger than ttlMs + staleMs): returned at once with source `stale`, and one
 *   background refresh starts; if it fails, the stale entry keeps answering until it expires (the failure is
 *   logged, and a definitive failure is not cached over it).
 * - no entry: the loader runs (shared by concurrent callers), source `load`. A definitive SigpinError is stored
 *   for negativeTtlMs and rethrown to later callers (same code and message); transient failures and anything
 *   that is not a SigpinError are never cached.
 */
import type { Logger } from 'pino';
import { SigpinError, isSigpinError, isTransient, DEFINITIVE_CODES } from '../errors.ts';
import type { DefinitiveCode, ErrorCode } from '../errors.ts';
import { Singleflight } from './singleflight.ts';
import type { TieredCache } from './tiered-cache.ts';

export interface LoadPolicy {
  /** Required, > 0. How long a loaded value is fresh. */
  ttlMs: number;
  /** Optional, default 0. How long after ttlMs a value may still be served while it is refreshed. */
  staleMs?: number;
  /** Optional, default 0 (off). How long a definitive failure is remembered. */
  negativeTtlMs?: number;
}

export type LoadSource = 'l1' | 'l2' | 'load' | 'stale';

export interface LoadResult<T> {
  value: T;
  source: LoadSource;
}

/** Produces the value (plain JSON data); `signal` aborts when every caller waiting for it has given up. */
export type Loader<T> = (signal: AbortSignal) => Promise<T>;

export interface LoadOptions {
  /** Optional. Aborts this caller's wait (and the load, once no other caller waits for it). */
  signal?: AbortSignal;
}

export const DEFAULT_REFRESH_TIMEOUT_MS = 10_000;

export interface CachedLoaderOptions {
  /** Required. Where entries live (its clock is used for freshness). */
  cache: TieredCache;
  /** Required. Background refresh failures are logged here. */
  logger: Logger;
  /** Optional, default 10,000. Deadline of a background refresh (it has no caller to take a deadline from). */
  refreshTimeoutMs?: number;
}

/** What is stored in the cache for a key: a value with its freshness limit, or a definitive failure. */
interface ValueRecord {
  value: unknown;
  freshUntil: number;
}
interface FailureRecord {
  error: { code: DefinitiveCode; message: string };
}

const DEFINITIVE = new Set<string>(DEFINITIVE_CODES);

export class CachedLoader {
  readonly #cache: TieredCache;
  readonly #logger: Logger;
  readonly #refreshTimeoutMs: number;
  readonly #flights = new Singleflight();
  readonly #refreshes = new Set<Promise<void>>();

  constructor(options: CachedLoaderOptions) {
    this.#cache = options.cache;
    this.#logger = options.logger;
    this.#refreshTimeoutMs = options.refreshTimeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS;
  }

  /** Background refreshes currently running. */
  get refreshing(): number {
    return this.#refreshes.size;
  }

  async load<T>(
    key: string,
    loader: Loader<T>,
    policy: LoadPolicy,
    options?: LoadOptions
  ): Promise<LoadResult<T>> {
    assertPolicy(policy);
    let entry = this.#cache.getLocalEntry<unknown>(key);
    entry ??= await this.#cache.getSharedEntry<unknown>(key);
    const record = entry?.value;
    if (isFailureRecord(record)) throw toError(record);
    if (entry !== undefined && isValueRecord(record)) {
      // The stored value is the one this key's loader produced (authenticated when it came from L2).
      const value = record.value as T;
      if (this.#cache.now() < record.freshUntil) return { value, source: entry.layer };
      this.#refreshInBackground(key, loader, policy);
      return { value, source: 'stale' };
    }
    const value = await this.#flights.do(
      key,
      (signal) => this.#loadAndStore(key, loader, policy, signal, false),
      options?.signal
    );
    return { value, source: 'load' };
  }

  /**
   * The fresh L1 value for `key`, synchronously, or undefined: then call `load`, which handles L2, stale entries,
   * negative entries and loading. Hot paths try this first: a hit costs no promise and no deadline race.
   */
  peekFresh<T>(key: string): { value: T } | undefined {
    // Counted as a hit only when it answers: a stale or negative entry goes on to `load`, which counts it once.
    const record = this.#cache.peekLocalHit<unknown>(key, isFreshValueRecord)?.value;
    return isValueRecord(record) ? { value: record.value as T } : undefined;
  }

  /** Resolves once no background refresh is running (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.#refreshes.size > 0) await Promise.allSettled([...this.#refreshes]);
  }

  #refreshInBackground<T>(key: string, loader: Loader<T>, policy: LoadPolicy): void {
    // One refresh per key: a load already in flight (refresh or foreground) will update the entry.
    if (this.#flights.has(key)) return;
    const work = this.#flights.do(
      key,
      (signal) => this.#loadAndStore(key, loader, policy, signal, true),
      AbortSignal.timeout(this.#refreshTimeoutMs)
    );
    const done = work.then(
      () => {
        this.#logger.debug({ key }, 'cache: refreshed a stale entry');
      },
      (err: unknown) => {
        this.#logger.warn(
          { err, key },
          'cache: background refresh failed, the stale entry answers until it expires'
        );
      }
    );
    this.#refreshes.add(done);
    void done.finally(() => this.#refreshes.delete(done));
  }

  async #loadAndStore<T>(
    key: string,
    loader: Loader<T>,
    policy: LoadPolicy,
    signal: AbortSignal,
    refresh: boolean
  ): Promise<T> {
    // A load for this key may have finished between our cache read and joining the flight: use its result.
    const local = this.#cache.peekLocal<unknown>(key)?.value;
    if (isFailureRecord(local) && !refresh) throw toError(local);
    if (isValueRecord(local) && this.#cache.now() < local.freshUntil) return local.value as T;
    if (refresh) {
      // Another replica may have refreshed the shared entry already: one registry round trip, not one per replica.
      const shared = (await this.#cache.getSharedEntry<unknown>(key))?.value;
      if (isValueRecord(shared) && this.#cache.now() < shared.freshUntil) return shared.value as T;
    }

    const staleMs = policy.staleMs ?? 0;
    try {
      const value = await loader(signal);
      const record: ValueRecord = { value, freshUntil: this.#cache.now() + policy.ttlMs };
      await this.#cache.set(key, record, policy.ttlMs + staleMs);
      return value;
    } catch (err) {
      const negativeTtlMs = policy.negativeTtlMs ?? 0;
      // A refresh never replaces the stale entry with a failure: it keeps answering until staleMs ends.
      if (!refresh && negativeTtlMs > 0 && isSigpinError(err) && isDefinitiveCode(err.code)) {
        const record: FailureRecord = { error: { code: err.code, message: err.message } };
        await this.#cache.set(key, record, negativeTtlMs);
      }
      throw err;
    }
  }
}

function assertPolicy(policy: LoadPolicy): void {
  const { ttlMs, staleMs = 0, negativeTtlMs = 0 } = policy;
  if (!(Number.isFinite(ttlMs) && ttlMs > 0))
    throw new RangeError(`cache policy: ttlMs must be > 0, got ${ttlMs}`);
  if (!(Number.isFinite(staleMs) && staleMs >= 0)) throw new RangeError(`cache policy: staleMs must be >= 0`);
  if (!(Number.isFinite(negativeTtlMs) && negativeTtlMs >= 0)) {
    throw new RangeError(`cache policy: negativeTtlMs must be >= 0`);
  }
}

function isValueRecord(x: unknown): x is ValueRecord {
  return (
    typeof x === 'object' &&
    x !== null &&
    'value' in x &&
    'freshUntil' in x &&
    typeof x.freshUntil === 'number'
  );
}

function isFreshValueRecord(x: unknown, now: number): boolean {
  return isValueRecord(x) && now < x.freshUntil;
}

function isFailureRecord(x: unknown): x is FailureRecord {
  if (typeof x !== 'object' || x === null || !('error' in x)) return false;
  const error = x.error;
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    'message' in error &&
    typeof error.code === 'string' &&
    DEFINITIVE.has(error.code) &&
    typeof error.message === 'string'
  );
}

function isDefinitiveCode(code: ErrorCode): code is DefinitiveCode {
  return !isTransient(code);
}

function toError(record: FailureRecord): SigpinError {
  return new SigpinError(record.error.code, record.error.message);
}
