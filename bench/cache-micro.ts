/**
 * Cache micro-benchmark (not a test): L1 heap per 100k digest-sized entries against a bare Map, get latency of
 * each layer, and, when redis-server is installed, L2 read latency and Redis memory per entry.
 *
 *   node --expose-gc bench/cache-micro.ts
 */
import { randomBytes } from 'node:crypto';
import { createClient } from '@keyv/redis';
import pino from 'pino';
import { CachedLoader, TieredCache } from '../provider/src/cache/index.ts';
import { L1Cache } from '../provider/src/cache/l1.ts';
import { findBinary } from '../test/support/binaries.ts';
import { startRedis } from '../test/support/redis.ts';

const ENTRIES = 100_000;
const GETS = 1_000_000;
const logger = pino({ level: 'silent' });
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const keyOf = (i: number) => `digest:ghcr.io/acme/service-${i % 500}:v1.${i}`;
// A fresh string per entry, as a parsed registry response would be (not a shared constant).
const digestOf = () => `sha256:${randomBytes(32).toString('hex')}`;
const keys = Array.from({ length: ENTRIES }, (_, i) => keyOf(i));
let sink = 0;

function heapMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function heapPerEntry(label: string, fill: () => Promise<unknown> | unknown) {
  const before = heapMiB();
  const holder = await fill();
  const after = heapMiB();
  const mib = after - before;
  console.log(
    `${label.padEnd(52)} ${mib.toFixed(1).padStart(6)} MiB / 100k  ${((mib * 2 ** 20) / ENTRIES).toFixed(0)} B/entry`
  );
  return holder;
}

function report(label: string, ops: number, startNs: bigint) {
  const ns = Number(process.hrtime.bigint() - startNs) / ops;
  console.log(
    `${label.padEnd(52)} ${(ns / 1000).toFixed(3).padStart(7)} us/get  ${(1e9 / ns / 1e6).toFixed(2)} M/s`
  );
}

console.log(
  `node ${process.version}, ${ENTRIES} entries, keys ~${keys[1]?.length} chars, values sha256 digests\n`
);
console.log('memory (heapUsed delta after gc, keys and values included):');
const mapHolder = (await heapPerEntry('bare Map<string,string> (baseline)', () => {
  const m = new Map<string, string>();
  for (let i = 0; i < ENTRIES; i++) m.set(keyOf(i), digestOf());
  return m;
})) as Map<string, string>;
mapHolder.clear();

const rawCache = (await heapPerEntry('TieredCache L1, value = digest string', async () => {
  const c = await TieredCache.create({ url: 'memory://', logger, l1MaxEntries: ENTRIES });
  for (let i = 0; i < ENTRIES; i++) await c.set(keyOf(i), digestOf(), 3_600_000);
  return c;
})) as TieredCache;

const loaderCache = (await heapPerEntry('TieredCache L1 via CachedLoader (value record)', async () => {
  const c = await TieredCache.create({ url: 'memory://', logger, l1MaxEntries: ENTRIES });
  const loader = new CachedLoader({ cache: c, logger });
  for (let i = 0; i < ENTRIES; i++) {
    await loader.load(keyOf(i), async () => digestOf(), { ttlMs: 3_600_000, staleMs: 60_000 });
  }
  return c;
})) as TieredCache;

// Two access patterns: `scan` cycles over all 100k keys (worst case for caches), `hot` over 1,000 of them.
for (const [pattern, span] of [
  ['scan', ENTRIES],
  ['hot', 1_000],
] as const) {
  console.log(`\nget latency, all hits, ${pattern} pattern (${span} distinct keys), awaited where async:`);
  const l1 = new L1Cache(ENTRIES);
  for (let i = 0; i < ENTRIES; i++) l1.set(keys[i] ?? '', digestOf(), 0, Number.MAX_SAFE_INTEGER);
  const now = Date.now();
  let start = process.hrtime.bigint();
  for (let i = 0; i < ENTRIES; i++) mapHolder.set(keys[i] ?? '', digestOf());
  // Results feed a sink so the JIT cannot drop the lookups.
  start = process.hrtime.bigint();
  for (let i = 0; i < GETS; i++) sink += mapHolder.get(keys[i % span] ?? '')?.length ?? 0;
  report('bare Map.get (baseline)', GETS, start);
  start = process.hrtime.bigint();
  for (let i = 0; i < GETS; i++) sink += l1.get(keys[i % span] ?? '', now) === undefined ? 0 : 1;
  report('L1Cache.get (sync)', GETS, start);
  start = process.hrtime.bigint();
  for (let i = 0; i < GETS; i++) await rawCache.getEntry(keys[i % span] ?? '');
  report('TieredCache.getEntry (L1 hit)', GETS, start);
  const loader = new CachedLoader({ cache: loaderCache, logger });
  const never = async (): Promise<string> => {
    throw new Error('not called on a hit');
  };
  const policy = { ttlMs: 3_600_000, staleMs: 60_000 };
  start = process.hrtime.bigint();
  for (let i = 0; i < GETS; i++) await loader.load(keys[i % span] ?? '', never, policy);
  report('CachedLoader.load (L1 hit)', GETS, start);
  start = process.hrtime.bigint();
  const batch = 50;
  for (let i = 0; i < GETS; i += batch) {
    const pending = [];
    for (let j = 0; j < batch; j++) pending.push(loader.load(keys[(i + j) % span] ?? '', never, policy));
    await Promise.all(pending);
  }
  report('CachedLoader.load, batches of 50 (per key)', GETS, start);
}
if (sink === 0) console.log('(sink empty)');
await rawCache.close();
await loaderCache.close();

if (findBinary('redis-server') !== undefined) {
  console.log('\nL2 (redis-server on loopback, @keyv/redis, HMAC envelope):');
  const redis = await startRedis();
  const raw = createClient({ url: redis.url });
  await raw.connect();
  const before = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))?.[1]);
  const writer = await TieredCache.create({ url: redis.url, hmacKey: randomBytes(32), logger });
  const loader = new CachedLoader({ cache: writer, logger });
  for (let i = 0; i < ENTRIES; i += 1_000) {
    const pending = [];
    for (let j = i; j < i + 1_000; j++) {
      pending.push(loader.load(keys[j] ?? '', async () => digestOf(), { ttlMs: 3_600_000, staleMs: 60_000 }));
    }
    await Promise.all(pending);
  }
  const used = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))?.[1]) - before;
  console.log(
    `${'Redis used_memory per entry'.padEnd(52)} ${(used / ENTRIES).toFixed(0).padStart(7)} B/entry`
  );
  const sample = await raw.get(`sigpin::${keys[1]}`);
  console.log(`${'stored value length'.padEnd(52)} ${String(sample?.length).padStart(7)} chars`);
  const n = 20_000;
  let start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await writer.getSharedEntry(keys[i] ?? '');
  report('TieredCache.getSharedEntry (L2 hit, sequential)', n, start);
  start = process.hrtime.bigint();
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => writer.getSharedEntry(keys[i + j] ?? '')));
  }
  report('TieredCache.getSharedEntry (L2 hit, 50 in parallel)', n, start);
  await writer.close();
  raw.destroy();
  await redis.stop();
} else {
  console.log('\nredis-server not installed: L2 figures skipped');
}
