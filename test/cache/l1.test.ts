import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { L1Cache } from '../../provider/src/cache/l1.ts';
import { TieredCache } from '../../provider/src/cache/index.ts';
import type { CacheEntry, CacheEvent } from '../../provider/src/cache/index.ts';

const logger = pino({ level: 'silent' });

/** The public fields of an entry. */
function pick(entry: CacheEntry<unknown> | undefined) {
  return (
    entry && { value: entry.value, storedAt: entry.storedAt, expiresAt: entry.expiresAt, layer: entry.layer }
  );
}

describe('L1Cache', () => {
  test('holds at most maxEntries, evicting the least recently used', () => {
    const l1 = new L1Cache(3);
    for (const key of ['a', 'b', 'c']) l1.set(key, key.toUpperCase(), 0, 1_000);
    assert.equal(l1.get('a', 1)?.value, 'A'); // a is now the most recently used
    l1.set('d', 'D', 0, 1_000);
    assert.equal(l1.size, 3);
    assert.equal(l1.get('b', 1), undefined, 'b was the least recently used');
    assert.deepEqual(
      ['a', 'c', 'd'].map((k) => l1.get(k, 1)?.value),
      ['A', 'C', 'D']
    );
  });

  test('a hit keeps a recently used entry ahead of eviction (approximate LRU over a large map)', () => {
    const l1 = new L1Cache(100);
    for (let i = 0; i < 100; i++) l1.set(`k${i}`, i, 0, 1_000);
    // k0..k9 are the oldest; using them must protect them from the next 50 insertions.
    for (let i = 0; i < 10; i++) assert.equal(l1.get(`k${i}`, 1)?.value, i);
    for (let i = 100; i < 150; i++) l1.set(`k${i}`, i, 0, 1_000);
    assert.equal(l1.size, 100);
    for (let i = 0; i < 10; i++) assert.equal(l1.get(`k${i}`, 1)?.value, i, `k${i} survived`);
    for (let i = 10; i < 60; i++) assert.equal(l1.get(`k${i}`, 1), undefined, `k${i} was evicted`);
  });

  test('overwriting a key neither grows the map nor evicts another key', () => {
    const l1 = new L1Cache(2);
    l1.set('a', 1, 0, 100);
    l1.set('b', 2, 0, 100);
    l1.set('a', 3, 0, 100);
    assert.equal(l1.size, 2);
    assert.equal(l1.get('a', 1)?.value, 3);
    assert.equal(l1.get('b', 1)?.value, 2);
  });

  test('an entry is live before expiresAt and gone from then on (and dropped)', () => {
    const l1 = new L1Cache(10);
    l1.set('k', 'v', 1_000, 2_000);
    const entry = l1.get('k', 1_999);
    assert.deepEqual(pick(entry), { value: 'v', storedAt: 1_000, expiresAt: 2_000, layer: 'l1' });
    assert.equal(l1.get('k', 2_000), undefined);
    assert.equal(l1.size, 0, 'the expired entry was removed');
  });

  test('rejects a bound that is not a positive integer', () => {
    assert.throws(() => new L1Cache(0), RangeError);
    assert.throws(() => new L1Cache(1.5), RangeError);
  });
});

describe('TieredCache over memory://', () => {
  test('needs no HMAC key, is always ready, and bounds L1 (default 50k, configurable)', async () => {
    const cache = await TieredCache.create({ url: 'memory://', logger, l1MaxEntries: 1_000 });
    for (let i = 0; i < 5_000; i++) await cache.set(`k${i}`, `sha256:${i}`, 60_000);
    assert.equal(cache.l1Size, 1_000);
    assert.equal(await cache.getEntry('k0'), undefined, 'the oldest entries were evicted');
    assert.equal((await cache.getEntry<string>('k4999'))?.value, 'sha256:4999');
    assert.equal(await cache.ready(), true);
    assert.equal(cache.shared, false);
    await cache.close();
    assert.equal(await cache.ready(), false, 'a closed cache is not ready');
  });

  test('expires entries by the injected clock and counts hits and misses', async () => {
    let now = 1_000_000;
    const events: CacheEvent[] = [];
    const cache = await TieredCache.create({
      url: 'memory://',
      logger,
      now: () => now,
      onEvent: (e) => events.push(e),
    });
    await cache.set('k', { digest: 'sha256:aa' }, 5_000);
    const entry = await cache.getEntry<{ digest: string }>('k');
    assert.deepEqual(pick(entry), {
      value: { digest: 'sha256:aa' },
      storedAt: 1_000_000,
      expiresAt: 1_005_000,
      layer: 'l1',
    });
    now += 4_999;
    assert.ok(await cache.getEntry('k'));
    now += 1;
    assert.equal(await cache.getEntry('k'), undefined);
    assert.deepEqual(events, [
      { layer: 'l1', result: 'set' },
      { layer: 'l1', result: 'hit' },
      { layer: 'l1', result: 'hit' },
      { layer: 'l1', result: 'miss' },
    ]);
    await cache.close();
  });

  test('delete removes the entry; a non-positive TTL stores nothing', async () => {
    const cache = await TieredCache.create({ url: 'memory://', logger });
    await cache.set('k', 1, 1_000);
    await cache.delete('k');
    assert.equal(await cache.getEntry('k'), undefined);
    await cache.set('z', 1, 0);
    assert.equal(cache.l1Size, 0);
    await cache.close();
  });

  test('rejects unknown URL schemes without echoing the URL', async () => {
    await assert.rejects(TieredCache.create({ url: 'memcached://u:secret@h:1', logger }), (err: Error) => {
      assert.match(err.message, /unsupported cache url scheme "memcached"/);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  });
});
