/**
 * CachedLoader.peekFresh, the synchronous fresh-L1 fast path the lookup service tries before `load`: it answers
 * only for a fresh L1 value (never for stale, expired, negative or L2-only entries), counts a hit once, and
 * `peekFresh(key) ?? load(key)` answers exactly what `load(key)` alone answers, with the same cache events.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { CachedLoader, TieredCache } from '../../provider/src/cache/index.ts';
import type { CacheEvent, LoadPolicy } from '../../provider/src/cache/index.ts';
import { SigpinError } from '../../provider/src/errors.ts';
import { scripted } from './scripted-loader.ts';
import { LookupService } from '../../provider/src/lookup/index.ts';
import type { DigestSource, Loader } from '../../provider/src/lookup/index.ts';
import { parseConfig } from '../../provider/src/config/index.ts';
import { compileTrustPolicy } from '../../provider/src/trust/index.ts';
import { requireBinary } from '../support/binaries.ts';
import { startRedis } from '../support/redis.ts';
import type { TestRedis } from '../support/redis.ts';

const logger = pino({ level: 'silent' });
const POLICY: LoadPolicy = { ttlMs: 60_000, staleMs: 30_000, negativeTtlMs: 10_000 };
const START = 1_700_000_000_000;

/** A memory:// cache on a manual clock, a loader over it, and the cache events it emitted. */
async function setup(clock = { now: START }) {
  const events: CacheEvent[] = [];
  const cache = await TieredCache.create({
    url: 'memory://',
    logger,
    now: () => clock.now,
    onEvent: (e) => events.push(e),
  });
  const loader = new CachedLoader({ cache, logger });
  /** How many events of this kind were emitted (since the last `reset`). */
  const count = (layer: string, result: string) =>
    events.filter((e) => e.layer === layer && e.result === result).length;
  const reset = () => events.splice(0);
  return { clock, cache, loader, events, count, reset };
}

/** What the lookup service does per key: the fast path, then the full load. */
async function fastThenLoad<T>(
  loader: CachedLoader,
  key: string,
  load: () => Promise<T>,
  policy: LoadPolicy = POLICY
): Promise<T> {
  const hit = loader.peekFresh<T>(key);
  if (hit !== undefined) return hit.value;
  return (await loader.load(key, load, policy)).value;
}

describe('peekFresh: answers only for a fresh L1 value', () => {
  test('nothing cached: undefined, and neither a hit nor a miss is counted (load counts the miss)', async () => {
    const { loader, events } = await setup();
    assert.equal(loader.peekFresh('d:app:1'), undefined);
    assert.deepEqual(events, []);
  });

  test('a fresh entry: the stored value, one L1 hit per call, no load', async () => {
    const { clock, loader, count, reset } = await setup();
    const load = scripted({ digest: 'sha256:aa' });
    await loader.load('d:app:1', load, POLICY);
    reset();
    assert.deepEqual(loader.peekFresh('d:app:1'), { value: { digest: 'sha256:aa' } });
    clock.now += POLICY.ttlMs - 1; // the last fresh millisecond
    assert.deepEqual(loader.peekFresh('d:app:1'), { value: { digest: 'sha256:aa' } });
    assert.equal(count('l1', 'hit'), 2);
    assert.equal(count('l1', 'miss'), 0);
    assert.equal(load.calls, 1);
  });

  test('a falsy value is still a hit (wrapped, so undefined only ever means "call load")', async () => {
    const { loader } = await setup();
    await loader.load('k:zero', scripted(0), POLICY);
    await loader.load('k:empty', scripted(''), POLICY);
    await loader.load('k:null', scripted(null), POLICY);
    assert.deepEqual(loader.peekFresh('k:zero'), { value: 0 });
    assert.deepEqual(loader.peekFresh('k:empty'), { value: '' });
    assert.deepEqual(loader.peekFresh('k:null'), { value: null });
  });

  test('a stale entry: undefined, so load answers it as stale and refreshes it once', async () => {
    const { clock, loader } = await setup();
    const load = scripted('sha256:old', 'sha256:new');
    await loader.load('k', load, POLICY);
    clock.now += POLICY.ttlMs; // exactly ttl: no longer fresh, within staleMs
    assert.equal(loader.peekFresh('k'), undefined);
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:old', source: 'stale' });
    assert.equal(loader.refreshing, 1);
    await loader.drain();
    assert.equal(load.calls, 2);
    assert.deepEqual(loader.peekFresh('k'), { value: 'sha256:new' }, 'the refreshed entry is fresh again');
  });

  test('an expired entry (past ttl + staleMs): undefined and not counted; load loads again', async () => {
    const { clock, loader, count, reset } = await setup();
    const load = scripted('sha256:old', 'sha256:new');
    await loader.load('k', load, POLICY);
    clock.now += POLICY.ttlMs + (POLICY.staleMs ?? 0);
    reset();
    assert.equal(loader.peekFresh('k'), undefined);
    assert.equal(count('l1', 'hit'), 0);
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:new', source: 'load' });
    assert.equal(load.calls, 2);
  });

  test('a negative (definitive failure) entry: undefined, so load rethrows the cached failure', async () => {
    const { loader } = await setup();
    const load = scripted<string>(new SigpinError('NOT_FOUND', 'app:1 not found'), 'sha256:late');
    await assert.rejects(loader.load('k', load, POLICY), { code: 'NOT_FOUND' });
    assert.equal(loader.peekFresh('k'), undefined);
    await assert.rejects(loader.load('k', load, POLICY), { code: 'NOT_FOUND', message: 'app:1 not found' });
    assert.equal(load.calls, 1, 'the negative entry answered, not the loader');
  });

  test('a transient failure is not cached: undefined, and the next load runs the loader', async () => {
    const { loader } = await setup();
    const load = scripted<string>(new SigpinError('REGISTRY_UNAVAILABLE', '503'), 'sha256:aa');
    await assert.rejects(loader.load('k', load, POLICY), { code: 'REGISTRY_UNAVAILABLE' });
    assert.equal(loader.peekFresh('k'), undefined);
    assert.equal(await fastThenLoad(loader, 'k', load), 'sha256:aa');
    assert.deepEqual(loader.peekFresh('k'), { value: 'sha256:aa' });
  });

  test('an entry that is not a loader record (written to the cache directly) is never a fast-path hit', async () => {
    const { cache, loader } = await setup();
    await cache.set('raw', 'sha256:aa', 60_000);
    await cache.set('shaped', { value: 'x', freshUntil: 'later' }, 60_000);
    assert.equal(loader.peekFresh('raw'), undefined);
    assert.equal(loader.peekFresh('shaped'), undefined);
  });
});

describe('peekFresh then load: each lookup counted once', () => {
  // The fast path must not add an L1 hit on top of the one load counts when it falls through (metrics).
  test('fresh: one L1 hit in all', async () => {
    const { loader, count, reset } = await setup();
    const load = scripted('v');
    await loader.load('k', load, POLICY);
    reset();
    assert.equal(await fastThenLoad(loader, 'k', load), 'v');
    assert.equal(count('l1', 'hit'), 1);
    assert.equal(count('l1', 'miss'), 0);
  });

  test('absent: one L1 miss in all', async () => {
    const { loader, count } = await setup();
    assert.equal(await fastThenLoad(loader, 'k', scripted('v')), 'v');
    assert.equal(count('l1', 'hit'), 0);
    assert.equal(count('l1', 'miss'), 1);
  });

  test('stale: one L1 hit in all', async () => {
    const { clock, loader, count, reset } = await setup();
    const load = scripted('old', 'new');
    await loader.load('k', load, POLICY);
    clock.now += POLICY.ttlMs + 1;
    reset();
    assert.equal(await fastThenLoad(loader, 'k', load), 'old');
    await loader.drain();
    assert.equal(count('l1', 'hit'), 1);
  });

  test('negative: one L1 hit in all', async () => {
    const { loader, count, reset } = await setup();
    const load = scripted<string>(new SigpinError('UNSIGNED', 'no signatures'));
    await assert.rejects(loader.load('k', load, POLICY), { code: 'UNSIGNED' });
    reset();
    await assert.rejects(fastThenLoad(loader, 'k', load), { code: 'UNSIGNED' });
    assert.equal(count('l1', 'hit'), 1);
  });
});

describe('peekFresh then load answers what load alone answers', () => {
  // Two caches on the same clock, one read through the fast path, one through load only, driven through a
  // timeline that crosses fresh, stale, refreshed, expired and negative periods.
  test('same values, same loader calls, same cache events at every step', async () => {
    const clock = { now: START };
    const fast = await setup(clock);
    const plain = await setup(clock);
    const answers = [
      'sha256:1',
      'sha256:2',
      new SigpinError('NOT_FOUND', 'tag deleted'),
      'sha256:3',
      'sha256:4',
    ];
    const fastLoad = scripted<string>(...answers);
    const plainLoad = scripted<string>(...answers);
    const outcome = async (p: Promise<string>) =>
      p.then(
        (v) => `ok:${v}`,
        (err: unknown) => `err:${err instanceof SigpinError ? err.code : String(err)}`
      );
    // Clock offsets (ms since the previous step): fresh, stale, refreshed, expired, negative, after negative...
    const steps = [0, 1, 59_999, 1, 0, 30_000, 60_000, 30_000, 0, 9_999, 1, 1, 59_999, 90_000, 0];
    for (const [n, step] of steps.entries()) {
      clock.now += step;
      const a = await outcome(fastThenLoad(fast.loader, 'k', fastLoad));
      const b = await outcome(plain.loader.load('k', plainLoad, POLICY).then((r) => r.value));
      await Promise.all([fast.loader.drain(), plain.loader.drain()]);
      assert.equal(a, b, `step ${n} (+${step} ms)`);
      assert.equal(fastLoad.calls, plainLoad.calls, `loader calls at step ${n}`);
      assert.deepEqual(fast.events, plain.events, `cache events at step ${n}`);
    }
    assert.ok(plainLoad.calls >= 4, `the timeline reached the later answers (${plainLoad.calls} loads)`);
  });

  test('through LookupService: the same items, the same registry calls', async () => {
    const D1 = `sha256:${'1'.repeat(64)}`;
    const D2 = `sha256:${'2'.repeat(64)}`;
    const config = parseConfig({
      policies: [{ name: 'open', images: ['registry.test:5000/**'], verify: false }],
    });
    const timings = {
      digestTtlMs: 60_000,
      digestStaleMs: 30_000,
      verdictTtlMs: 60_000,
      negativeTtlMs: 10_000,
      loadTimeoutMs: 5_000,
    };
    const clock = { now: START };
    /** A lookup service over a real CachedLoader; `fastPath: false` hides peekFresh from it. */
    async function build(fastPath: boolean) {
      const { loader } = await setup(clock);
      const tags: Record<string, string> = { 'app:1': D1 };
      const resolved: string[] = [];
      const registry: DigestSource = {
        assertAllowed() {},
        async resolveDigest(_registry, repository, tag) {
          resolved.push(`${repository}:${tag}`);
          const digest = tags[`${repository}:${tag}`];
          if (digest === undefined) throw new SigpinError('NOT_FOUND', `${repository}:${tag} not found`);
          return { digest };
        },
      };
      const visible: Loader = fastPath ? loader : { load: (...args) => loader.load(...args) };
      const lookup = new LookupService({
        registry,
        loader: visible,
        trust: compileTrustPolicy(config),
        timings,
        namespacedCredentials: false,
        logger,
      });
      return { lookup, loader, tags, resolved };
    }
    const fast = await build(true);
    const plain = await build(false);
    const keys = ['registry.test:5000/app:1', 'registry.test:5000/app:2', `registry.test:5000/app@${D2}`];
    const steps: Array<{ ms: number; retag?: string }> = [
      { ms: 0 },
      { ms: 1_000 },
      { ms: 59_000, retag: D2 }, // the tag moves while the old digest is still fresh
      { ms: 1 }, // stale: old digest answered, refresh started
      { ms: 1 }, // refreshed
      { ms: 100_000 }, // expired
    ];
    for (const [n, { ms, retag }] of steps.entries()) {
      clock.now += ms;
      if (retag) {
        fast.tags['app:1'] = retag;
        plain.tags['app:1'] = retag;
      }
      const a = await fast.lookup.lookup('resolve', keys, AbortSignal.timeout(5_000));
      const b = await plain.lookup.lookup('resolve', keys, AbortSignal.timeout(5_000));
      await Promise.all([fast.loader.drain(), plain.loader.drain()]);
      assert.deepEqual(a, b, `step ${n}`);
      assert.deepEqual(fast.resolved, plain.resolved, `registry calls at step ${n}`);
    }
    assert.deepEqual(
      fast.resolved.filter((r) => r === 'app:1'),
      ['app:1', 'app:1', 'app:1'],
      'loaded, refreshed after the stale answer, loaded again after expiry'
    );
  });
});

describe('peekFresh with a shared L2 (real Redis)', requireBinary('redis-server'), () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  test('an entry only in L2 is not a fast-path hit; load copies it into L1, then it is', async (t) => {
    const hmacKey = randomBytes(32);
    const namespace = `fast-path-${process.pid}`;
    const open = async () => {
      const events: CacheEvent[] = [];
      const cache = await TieredCache.create({
        url: redis.url,
        hmacKey,
        namespace,
        logger,
        l2TimeoutMs: 5_000,
        onEvent: (e) => events.push(e),
      });
      t.after(() => cache.close());
      return { loader: new CachedLoader({ cache, logger }), events };
    };
    const writer = await open();
    const reader = await open();
    const load = scripted('sha256:shared');
    await writer.loader.load('d:app:1', load, POLICY);

    assert.equal(reader.loader.peekFresh('d:app:1'), undefined, 'L2 is never read on the fast path');
    assert.deepEqual(reader.events, [], 'and nothing was counted');
    assert.deepEqual(await reader.loader.load('d:app:1', load, POLICY), {
      value: 'sha256:shared',
      source: 'l2',
    });
    assert.deepEqual(reader.loader.peekFresh('d:app:1'), { value: 'sha256:shared' });
    assert.equal(load.calls, 1, 'only the writer loaded');
  });
});
