/**
 * TieredCache and CachedLoader against a real redis-server: sharing between replicas, forged and tampered
 * entries, outages (killed and hung Redis) and recovery, and no handles left after close().
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@keyv/redis';
import pino from 'pino';
import { CachedLoader, TieredCache } from '../../provider/src/cache/index.ts';
import type { CacheEvent, CacheOptions } from '../../provider/src/cache/index.ts';
import { importHmacKey, sealEntry } from '../../provider/src/cache/envelope.ts';
import { requireBinary } from '../support/binaries.ts';
import { freePort } from '../support/ports.ts';
import { startRedis } from '../support/redis.ts';
import type { TestRedis } from '../support/redis.ts';

const logger = pino({ level: 'silent' });

/** Polls `check` until it answers true (at most `attempts` times): for recoveries whose timing depends on load. */
async function eventually(check: () => Promise<boolean>, attempts = 50): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
const HMAC_KEY = randomBytes(32);
const POLICY = { ttlMs: 60_000, staleMs: 30_000, negativeTtlMs: 10_000 };

describe('cache over a real Redis', requireBinary('redis-server'), () => {
  let redis: TestRedis;
  let raw: ReturnType<typeof createClient>;
  let namespaceCounter = 0;

  before(async () => {
    redis = await startRedis();
    raw = createClient({ url: redis.url });
    raw.on('error', () => {});
    await raw.connect();
  });
  after(async () => {
    if (raw.isOpen) raw.destroy();
    await redis.stop();
  });

  /** A cache on the shared Redis, closed after the test; each test gets its own namespace unless given one. */
  async function open(t: { after: (fn: () => Promise<void>) => void }, options: Partial<CacheOptions> = {}) {
    const events: CacheEvent[] = [];
    const cache = await TieredCache.create({
      url: redis.url,
      hmacKey: HMAC_KEY,
      logger,
      namespace: `t${namespaceCounter}`,
      // Generous, so a loaded CI machine never turns a slow reply into a failure; timeout tests set their own.
      l2TimeoutMs: 5_000,
      onEvent: (e) => events.push(e),
      ...options,
    });
    t.after(() => cache.close());
    const count = (layer: string, result: string) =>
      events.filter((e) => e.layer === layer && e.result === result).length;
    return { cache, events, count };
  }

  test('refuses to start without an HMAC key, or with a short one', async () => {
    await assert.rejects(TieredCache.create({ url: redis.url, logger }), /needs an HMAC key/);
    await assert.rejects(
      TieredCache.create({ url: redis.url, logger, hmacKey: Buffer.alloc(8) }),
      /at least 32 are required/
    );
  });

  test('a second instance answers from L2, then from its own L1', async (t) => {
    namespaceCounter++;
    const a = await open(t);
    const b = await open(t);
    await a.cache.set('digest:ghcr.io/acme/app:1', 'sha256:' + 'a'.repeat(64), 60_000);
    assert.equal(a.count('l2', 'set'), 1);
    const fromL2 = await b.cache.getEntry<string>('digest:ghcr.io/acme/app:1');
    assert.equal(fromL2?.layer, 'l2');
    assert.equal(fromL2?.value, 'sha256:' + 'a'.repeat(64));
    assert.equal((await b.cache.getEntry('digest:ghcr.io/acme/app:1'))?.layer, 'l1');
    // Stored once under <namespace>::<key> (no doubled prefix), with a Redis TTL.
    const stored = await raw.keys(`t${namespaceCounter}*`);
    assert.deepEqual(stored, [`t${namespaceCounter}::digest:ghcr.io/acme/app:1`]);
    const pttl = await raw.pTTL(`t${namespaceCounter}::digest:ghcr.io/acme/app:1`);
    assert.ok(pttl > 0 && pttl <= 60_000, `pttl ${pttl}`);
    assert.equal(await a.cache.ready(), true);
  });

  test('an L2 hit populates L1 only for the remaining TTL', async (t) => {
    namespaceCounter++;
    const clock = { now: 1_800_000_000_000 };
    const a = await open(t, { now: () => clock.now });
    const b = await open(t, { now: () => clock.now });
    await a.cache.set('k', { v: 1 }, 10_000);
    clock.now += 4_000;
    const entry = await b.cache.getEntry('k');
    assert.equal(entry?.layer, 'l2');
    assert.equal(entry?.expiresAt, 1_800_000_010_000);
    clock.now += 6_000;
    assert.equal(await b.cache.getEntry('k'), undefined, 'expired in L1 and, by its signed expiry, in L2');
    assert.equal(b.count('l2', 'miss'), 1);
  });

  test('a CachedLoader in another replica answers from L2 with zero loader calls', async (t) => {
    namespaceCounter++;
    const a = await open(t);
    const b = await open(t);
    const first = new CachedLoader({ cache: a.cache, logger });
    const second = new CachedLoader({ cache: b.cache, logger });
    let calls = 0;
    const load = async () => {
      calls += 1;
      return { digest: 'sha256:' + 'b'.repeat(64), verified: true };
    };
    assert.equal((await first.load('verdict:x', load, POLICY)).source, 'load');
    const answer = await second.load('verdict:x', load, POLICY);
    assert.deepEqual(answer, { value: { digest: 'sha256:' + 'b'.repeat(64), verified: true }, source: 'l2' });
    assert.equal(calls, 1);
  });

  test('a stale entry refreshed by one replica is picked up from L2 by the others (one load, not one each)', async (t) => {
    namespaceCounter++;
    const clock = { now: 1_900_000_000_000 };
    const a = await open(t, { now: () => clock.now });
    const b = await open(t, { now: () => clock.now });
    const first = new CachedLoader({ cache: a.cache, logger });
    const second = new CachedLoader({ cache: b.cache, logger });
    const calls = { a: 0, b: 0 };
    const loadA = async () => `v${++calls.a}`;
    const loadB = async () => `b${++calls.b}`;
    await first.load('d:app:1', loadA, POLICY);
    assert.equal((await second.load('d:app:1', loadB, POLICY)).source, 'l2');
    clock.now += POLICY.ttlMs + 1;
    assert.deepEqual(await first.load('d:app:1', loadA, POLICY), { value: 'v1', source: 'stale' });
    await first.drain();
    assert.deepEqual(await second.load('d:app:1', loadB, POLICY), { value: 'v1', source: 'stale' });
    await second.drain();
    assert.deepEqual(await second.load('d:app:1', loadB, POLICY), { value: 'v2', source: 'l1' });
    assert.deepEqual(calls, { a: 2, b: 0 });
  });

  test('negative entries are shared too', async (t) => {
    namespaceCounter++;
    const a = await open(t);
    const b = await open(t);
    const failing = async (): Promise<string> => {
      throw new (await import('../../provider/src/errors.ts')).SigpinError(
        'UNTRUSTED',
        'signed by someone else'
      );
    };
    await assert.rejects(
      new CachedLoader({ cache: a.cache, logger }).load('v', failing, POLICY),
      /someone else/
    );
    let calls = 0;
    await assert.rejects(
      new CachedLoader({ cache: b.cache, logger }).load(
        'v',
        async () => {
          calls += 1;
          return 'trusted';
        },
        POLICY
      ),
      (err: Error & { code?: string }) => err.code === 'UNTRUSTED' && err.message === 'signed by someone else'
    );
    assert.equal(calls, 0);
  });

  test('entries written into Redis without a valid MAC are ignored and counted as forged', async (t) => {
    namespaceCounter++;
    const ns = `t${namespaceCounter}`;
    const { cache, count } = await open(t);
    const loader = new CachedLoader({ cache, logger });
    const forgedRecord = JSON.stringify({ value: { verified: true }, freshUntil: Date.now() + 3_600_000 });
    const now = Date.now();
    const expires = now + 3_600_000;
    const own = importHmacKey(HMAC_KEY);
    const other = importHmacKey(randomBytes(32));
    // Each forgery is what an attacker with write access to Redis could store under `key`.
    const forgeries: Record<string, (key: string) => string> = {
      'plain JSON (no envelope)': () => forgedRecord,
      'missing MAC': () => `sp1.${now}.${expires}..${forgedRecord}`,
      'MAC under another secret': (key) => sealEntry(other, ns, key, now, expires, forgedRecord),
      'genuine MAC of another key (key swap)': () =>
        sealEntry(own, ns, 'verdict:other', now, expires, forgedRecord),
      'genuine MAC from another namespace': (key) =>
        sealEntry(own, 'elsewhere', key, now, expires, forgedRecord),
    };
    let index = 0;
    for (const [name, forge] of Object.entries(forgeries)) {
      const key = `verdict:forged-${index++}`;
      await raw.set(`${ns}::${key}`, forge(key));
      assert.equal(await cache.getEntry(key), undefined, name);
      let calls = 0;
      const answer = await loader.load(
        key,
        async () => {
          calls += 1;
          return { verified: false };
        },
        POLICY
      );
      assert.deepEqual(answer, { value: { verified: false }, source: 'load' }, name);
      assert.equal(calls, 1, name);
      await cache.delete(key);
    }
    // Control: the same record sealed with the right secret for the right key is accepted.
    await raw.set(
      `${ns}::verdict:genuine`,
      sealEntry(own, ns, 'verdict:genuine', now, expires, forgedRecord)
    );
    assert.equal((await cache.getEntry('verdict:genuine'))?.layer, 'l2');
    assert.equal(count('l2', 'forged'), Object.keys(forgeries).length * 2);
    assert.equal(count('l2', 'hit'), 1, 'only the control entry');
  });

  test('a genuine entry with a tampered payload or expiry is ignored and counted', async (t) => {
    namespaceCounter++;
    const ns = `t${namespaceCounter}`;
    const writer = await open(t);
    const reader = await open(t);
    await writer.cache.set(
      'verdict:t',
      { value: { verified: false }, freshUntil: Date.now() + 60_000 },
      60_000
    );
    const genuine = await raw.get(`${ns}::verdict:t`);
    assert.ok(genuine !== null && genuine.startsWith('sp1.'));
    await raw.set(`${ns}::verdict:t`, genuine.replace('"verified":false', '"verified":true '));
    assert.equal(await reader.cache.getEntry('verdict:t'), undefined);
    const [format, storedAt, expiresAt, ...rest] = genuine.split('.');
    await raw.set(
      `${ns}::verdict:t`,
      [format, storedAt, String(Number(expiresAt) + 86_400_000), ...rest].join('.')
    );
    assert.equal(await reader.cache.getEntry('verdict:t'), undefined);
    assert.equal(reader.count('l2', 'forged'), 2);
    await raw.set(`${ns}::verdict:t`, genuine);
    assert.equal((await reader.cache.getEntry('verdict:t'))?.layer, 'l2', 'the untouched entry verifies');
  });

  test('Redis killed mid-use: L1 keeps answering, nothing throws, ready() is false; back when Redis is', async (t) => {
    namespaceCounter++;
    const a = await open(t, { l2RetryMs: 0 });
    const loader = new CachedLoader({ cache: a.cache, logger });
    await a.cache.set('before', 'kept-in-l1', 60_000);
    let calls = 0;
    const load = async () => `loaded-${++calls}`;

    await redis.kill();
    assert.equal((await a.cache.getEntry('before'))?.value, 'kept-in-l1');
    assert.equal(await a.cache.getEntry('only-in-l2'), undefined, 'an unreachable L2 is a miss, never a hit');
    await a.cache.set('during', 'v', 60_000); // does not throw
    assert.equal((await a.cache.getEntry('during'))?.layer, 'l1');
    await a.cache.delete('during');
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'loaded-1', source: 'load' });
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'loaded-1', source: 'l1' });
    assert.equal(await a.cache.ready(), false);
    assert.ok(a.count('l2', 'error') >= 1);
    assert.equal(a.count('l2', 'hit'), 0);

    await redis.restart();
    assert.equal(await a.cache.ready(), true);
    await a.cache.set('after', 'in-l2-again', 60_000);
    assert.equal(a.count('l2', 'set') >= 2, true, 'the write after recovery reached L2');
    const b = await open(t);
    assert.equal((await b.cache.getEntry('after'))?.layer, 'l2');
  });

  test('a hung Redis (SIGSTOP) costs one bounded timeout, then L2 is skipped until it answers', async (t) => {
    namespaceCounter++;
    const a = await open(t);
    await a.cache.set('k', 'v', 60_000);
    const b = await open(t, { l2TimeoutMs: 100, l2RetryMs: 0 });
    redis.pause();
    try {
      assert.equal(await b.cache.getEntry('k'), undefined, 'timed out: a miss');
      assert.equal(b.count('l2', 'error'), 1);
      await b.cache.set('x', 'y', 60_000);
      assert.equal((await b.cache.getEntry('x'))?.layer, 'l1');
      assert.equal(await b.cache.ready(), false);
    } finally {
      redis.resume();
    }
    assert.equal(await eventually(() => b.cache.ready()), true);
    assert.ok(
      await eventually(async () => (await b.cache.getEntry('k'))?.layer === 'l2'),
      'L2 answers again'
    );
  });

  test('an unreachable Redis at start: create() succeeds, L1 works, ready() is false', async (t) => {
    const port = await freePort(); // nothing listens there
    const { cache, count } = await open(t, { url: `redis://127.0.0.1:${port}` });
    assert.equal(await cache.ready(), false);
    await cache.set('k', 'v', 1_000);
    assert.equal((await cache.getEntry('k'))?.value, 'v');
    assert.equal(await cache.getEntry('other'), undefined);
    assert.ok(count('l2', 'error') >= 1);
  });

  test('close() leaves no handles: a process using the cache exits on its own', async () => {
    const script = fileURLToPath(new URL('./close-child.ts', import.meta.url));
    const down = `redis://127.0.0.1:${await freePort()}`;
    for (const url of [redis.url, down]) {
      const child = spawn(process.execPath, [script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      // A generous guard so a regression fails the test instead of hanging the run.
      const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
      clearTimeout(guard);
      assert.equal(signal, null, `child for ${url} had to be killed: it did not exit by itself`);
      assert.equal(code, 0, output);
      const report = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as { resources?: string[] };
      assert.deepEqual(report.resources, [], `handles left after close(): ${report.resources?.join(', ')}`);
    }
  });
});
