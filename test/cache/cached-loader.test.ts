import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { CachedLoader, TieredCache } from '../../provider/src/cache/index.ts';
import type { LoadPolicy } from '../../provider/src/cache/index.ts';
import { SigpinError } from '../../provider/src/errors.ts';
import { scripted } from './scripted-loader.ts';

interface LogLine {
  level: number;
  msg: string;
  key?: string;
}

/** A memory:// cache with a manual clock, a loader over it, and the log lines it wrote. */
async function setup() {
  const clock = { now: 1_700_000_000_000 };
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => logs.push(JSON.parse(line) as LogLine) }
  );
  const cache = await TieredCache.create({ url: 'memory://', logger, now: () => clock.now });
  const loader = new CachedLoader({ cache, logger });
  return { clock, logs, cache, loader };
}

const POLICY: LoadPolicy = { ttlMs: 60_000, staleMs: 30_000, negativeTtlMs: 10_000 };

describe('CachedLoader: fresh entries', () => {
  test('loads once, then answers from L1 while fresh', async () => {
    const { loader } = await setup();
    const load = scripted('sha256:aa');
    assert.deepEqual(await loader.load('digest:app:1', load, POLICY), { value: 'sha256:aa', source: 'load' });
    assert.deepEqual(await loader.load('digest:app:1', load, POLICY), { value: 'sha256:aa', source: 'l1' });
    assert.equal(load.calls, 1);
  });

  test('rejects an invalid policy', async () => {
    const { loader } = await setup();
    await assert.rejects(loader.load('k', scripted(1), { ttlMs: 0 }), RangeError);
    await assert.rejects(loader.load('k', scripted(1), { ttlMs: 1, staleMs: -1 }), RangeError);
  });
});

describe('CachedLoader: stale-while-revalidate', () => {
  test('a stale entry answers at once while ONE background refresh replaces it', async () => {
    const { clock, loader } = await setup();
    const load = scripted('sha256:old', 'sha256:new');
    await loader.load('k', load, POLICY);
    clock.now += 60_000; // exactly ttl: no longer fresh
    const answers = await Promise.all(Array.from({ length: 10 }, () => loader.load('k', load, POLICY)));
    assert.deepEqual(new Set(answers.map((a) => `${a.source}:${a.value}`)), new Set(['stale:sha256:old']));
    await loader.drain();
    assert.equal(load.calls, 2, 'ten stale hits started one refresh');
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:new', source: 'l1' });
  });

  test('a failed refresh keeps the stale entry until staleMs ends, and is logged', async () => {
    const { clock, loader, logs } = await setup();
    const load = scripted<string>(
      'sha256:old',
      new SigpinError('REGISTRY_UNAVAILABLE', 'registry answered 503'),
      new SigpinError('NOT_FOUND', 'tag deleted'),
      'sha256:new'
    );
    await loader.load('k', load, POLICY);
    clock.now += 61_000;
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:old', source: 'stale' });
    await loader.drain();
    clock.now += 1_000;
    // A definitive failure during a refresh does not replace the stale value with a negative entry either.
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:old', source: 'stale' });
    await loader.drain();
    assert.equal(load.calls, 3);
    const warnings = logs.filter((l) => l.level === 40 && l.key === 'k');
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]?.msg ?? '', /background refresh failed/);

    clock.now += 28_000; // now ttl + staleMs after the load: the entry is gone, the next load is synchronous
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:new', source: 'load' });
    assert.equal(load.calls, 4);
  });

  test('without staleMs an expired entry is loaded synchronously', async () => {
    const { clock, loader } = await setup();
    const load = scripted('v1', 'v2');
    await loader.load('k', load, { ttlMs: 1_000 });
    clock.now += 1_000;
    assert.deepEqual(await loader.load('k', load, { ttlMs: 1_000 }), { value: 'v2', source: 'load' });
  });
});

describe('CachedLoader: failures', () => {
  test('a definitive failure is cached for negativeTtlMs and rethrown with the same code and message', async () => {
    const { clock, loader } = await setup();
    const load = scripted<string>(new SigpinError('NOT_FOUND', 'ghcr.io/acme/app:9 not found'), 'sha256:bb');
    const sameError = (err: unknown) =>
      err instanceof SigpinError &&
      err.code === 'NOT_FOUND' &&
      err.message === 'ghcr.io/acme/app:9 not found';
    await assert.rejects(loader.load('k', load, POLICY), sameError);
    await assert.rejects(loader.load('k', load, POLICY), sameError);
    assert.equal(load.calls, 1, 'the second failure came from the negative entry');
    clock.now += 10_000;
    assert.deepEqual(await loader.load('k', load, POLICY), { value: 'sha256:bb', source: 'load' });
    assert.equal(load.calls, 2);
  });

  test('transient failures are never cached', async () => {
    const { loader, cache } = await setup();
    for (const err of [
      new SigpinError('REGISTRY_UNAVAILABLE', '503'),
      new SigpinError('DEADLINE_EXCEEDED', 'deadline'),
      new SigpinError('INTERNAL', 'bug'),
      new Error('not a SigpinError'),
    ]) {
      const load = scripted<string>(err, 'sha256:ok');
      const key = `k-${err.message}`;
      await assert.rejects(loader.load(key, load, POLICY), (e) => e === err);
      assert.equal(await cache.getEntry(key), undefined, `${err.message} left no entry`);
      assert.deepEqual(await loader.load(key, load, POLICY), { value: 'sha256:ok', source: 'load' });
      assert.equal(load.calls, 2);
    }
  });

  test('definitive failures are not cached when negativeTtlMs is not set', async () => {
    const { loader } = await setup();
    const load = scripted<string>(new SigpinError('UNSIGNED', 'no signature'), 'x');
    await assert.rejects(loader.load('k', load, { ttlMs: 1_000 }), /no signature/);
    assert.deepEqual(await loader.load('k', load, { ttlMs: 1_000 }), { value: 'x', source: 'load' });
  });
});

describe('CachedLoader: concurrency', () => {
  test('100 concurrent loads of one key call the loader once', async () => {
    const { loader } = await setup();
    let calls = 0;
    const load = async () => {
      calls += 1;
      await new Promise((resolve) => setImmediate(resolve));
      return { verified: true };
    };
    const results = await Promise.all(
      Array.from({ length: 100 }, () => loader.load('verdict:x', load, POLICY))
    );
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r.source === 'load' && r.value.verified === true));
  });

  test('a failure reaches every concurrent caller and leaves nothing behind', async () => {
    const { loader } = await setup();
    const load = scripted<string>(new SigpinError('REGISTRY_UNAVAILABLE', 'down'), 'up');
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, () => loader.load('k', load, POLICY))
    );
    assert.ok(settled.every((s) => s.status === 'rejected'));
    assert.equal(load.calls, 1);
    assert.equal((await loader.load('k', load, POLICY)).value, 'up');
  });

  test("a caller's signal ends its wait; the loader sees an abort once nobody waits", async () => {
    const { loader } = await setup();
    let loaderSignal: AbortSignal | undefined;
    const load = (signal: AbortSignal) => {
      loaderSignal = signal;
      return new Promise<string>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason))
      );
    };
    const caller = new AbortController();
    const pending = loader.load('k', load, POLICY, { signal: caller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    caller.abort(new SigpinError('DEADLINE_EXCEEDED', 'caller deadline'));
    await assert.rejects(pending, /caller deadline/);
    assert.equal(loaderSignal?.aborted, true);
    assert.deepEqual(await loader.load('k', scripted('later'), POLICY), { value: 'later', source: 'load' });
  });
});
