/**
 * The cache module's public surface (DESIGN.md section 7).
 *
 * - `TieredCache`: L1 in-process LRU (bounded by entries, default 50k, values kept as they are) in front of an
 *   optional shared L2 (`redis://`/`rediss://` via @keyv/redis; `memory://` means L1 only). L2 entries are
 *   HMAC-SHA256 authenticated over namespace, key, times and payload; entries that fail verification are misses
 *   counted as `forged`. Redis trouble never throws out of get/set/delete: operations are bounded
 *   (`l2TimeoutMs`, default 200 ms), the cache falls back to L1, and `ready()` reports L2 health.
 *       const cache = await TieredCache.create({ url, hmacKey, logger, onEvent });
 *       await cache.set(key, value, ttlMs); const entry = await cache.getEntry<T>(key);
 *       await cache.ready(); await cache.close();
 * - `CachedLoader`: the caching policy (fresh / stale-while-revalidate / negative entries for definitive
 *   SigpinErrors only / one load per key in flight).
 *       const loader = new CachedLoader({ cache, logger });
 *       const { value, source } = await loader.load(key, (signal) => work(signal), { ttlMs, staleMs, negativeTtlMs });
 * - `Singleflight`: per-process deduplication of identical concurrent work.
 *
 * Keys should say what they cache and everything the answer depends on, e.g. `digest:<ref>` and
 * `verdict:<digest>:<policy fingerprint>` (never a verdict by tag). Never put credentials in keys or values.
 */
export { TieredCache, cacheUrlScheme } from './tiered-cache.ts';
export {
  DEFAULT_CACHE_NAMESPACE,
  DEFAULT_L2_CONNECT_TIMEOUT_MS,
  DEFAULT_L2_RETRY_MS,
  DEFAULT_L2_TIMEOUT_MS,
} from './tiered-cache.ts';
export type { CacheEntry, CacheEvent, CacheLayer, CacheOptions, CacheResult } from './tiered-cache.ts';
export { DEFAULT_L1_MAX_ENTRIES } from './l1.ts';
export { MIN_HMAC_KEY_BYTES } from './envelope.ts';
export { CachedLoader, DEFAULT_REFRESH_TIMEOUT_MS } from './cached-loader.ts';
export type {
  CachedLoaderOptions,
  LoadOptions,
  LoadPolicy,
  LoadResult,
  LoadSource,
  Loader,
} from './cached-loader.ts';
export { Singleflight } from './singleflight.ts';
