/**
 * Two real providers sharing a real redis-server (HMAC-authenticated entries), in front of a real docker-registry:
 * Redis killed and restarted under load, and one provider killed and restarted under load while the other keeps
 * answering from the shared cache without going back to the registry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { startProvider, type TestProvider } from '../support/provider.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import {
  assertHealthy,
  boundedLoad,
  itemFor,
  post,
  providerConfig,
  pushTags,
  seedImages,
  trustedVerdict,
  type SeededImages,
} from './support.ts';

const binaries = { ...requireBinary('docker-registry'), ...requireBinary('redis-server') };

describe('resilience: shared Redis cache under outages', binaries, () => {
  let registry: TestRegistry;
  let redis: TestRedis;
  let images: SeededImages;
  let fresh: string[];
  let options: { config: Record<string, unknown>; files: Record<string, string> };
  const providers: TestProvider[] = [];

  before(async () => {
    registry = await startRegistry();
    redis = await startRedis();
    images = await seedImages(registry, { signed: 3, unsigned: 1 });
    fresh = await pushTags(registry, 'r', 40);
    const base = providerConfig(registry.host, images.signer.publicKeyPem, {
      cache: { url: redis.url, hmacKeyFile: 'cache-hmac.key', required: true },
    });
    // Every replica gets the same HMAC key: that is what lets one trust what the other stored.
    options = {
      config: base.config,
      files: { ...base.files, 'cache-hmac.key': randomBytes(32).toString('hex') },
    };
  });

  after(async () => {
    for (const p of providers) await p.stop();
    await redis?.stop();
    await registry?.stop();
  });

  async function start(): Promise<TestProvider> {
    const p = await startProvider(options);
    providers.push(p);
    return p;
  }

  const at = (name: string): string => `${registry.host}/${name}`;
  const signedKeys = (): Array<[string, string]> => [...images.signed.entries()].map(([n, d]) => [at(n), d]);
  const unsigned = (): string => at([...images.unsigned.keys()][0] as string);

  async function headsFor(paths: string[], since: number): Promise<number> {
    const log = (await registry.requests()).slice(since);
    return log.filter((r) => r.method === 'HEAD' && paths.some((p) => r.path.endsWith(p))).length;
  }

  it('Redis killed and restarted during load: answers keep coming (L1), fail closed, readiness recovers', async () => {
    const provider = await start();
    const [[signedKey, signedDigest]] = signedKeys() as [[string, string]];
    const warm = fresh.splice(0, 4).map(at);
    await post(provider, 'resolve', warm);
    assert.ok(trustedVerdict(itemFor(await post(provider, 'verify', [signedKey]), signedKey)));
    let sawNotReady = false;
    const results = await boundedLoad(
      10,
      4,
      async (round, slot) => {
        const freshKey = at(fresh.shift() as string);
        const r = await post(provider, slot % 2 === 0 ? 'resolve' : 'verify', [
          ...warm,
          freshKey,
          signedKey,
          unsigned(),
        ]);
        return { r, round, slot };
      },
      async (round) => {
        if (round === 2) await redis.kill();
        if (round >= 3 && round <= 6 && (await provider.get('/readyz')).status === 503) sawNotReady = true;
        if (round === 6) await redis.restart();
      }
    );
    for (const { r, round, slot } of results) {
      // Cached keys answer from L1 whatever Redis does; the registry is healthy, so nothing is left out.
      assert.equal(r.systemError, undefined, `round ${round}: ${r.systemError}`);
      for (const key of warm) assert.ok(itemFor(r, key)?.value, `round ${round}: ${key} not answered`);
      assert.equal(
        trustedVerdict(itemFor(r, unsigned())),
        undefined,
        'an unsigned image was reported trusted'
      );
      if (slot % 2 === 1) assert.equal(trustedVerdict(itemFor(r, signedKey))?.digest, signedDigest);
    }
    assert.ok(sawNotReady, '/readyz never reported the Redis outage (cache.required: true)');
    let ready = false;
    for (let attempt = 0; attempt < 50 && !ready; attempt++) {
      ready = (await provider.get('/readyz')).status === 200;
      if (!ready) await sleep(200);
    }
    assert.ok(ready, '/readyz did not recover after Redis came back');
    await assertHealthy(provider);
  });

  it('a provider restarted during load: the other answers from the shared cache, zero registry requests', async () => {
    const a = await start();
    const b = await start();
    const keys = fresh.splice(0, 5).map(at);
    const [, [signedKey, signedDigest]] = signedKeys() as [[string, string], [string, string]];
    // A resolves and verifies: the entries land in Redis.
    const warmed = await post(a, 'resolve', keys);
    for (const key of keys) assert.match(String(itemFor(warmed, key)?.value), /^sha256:/);
    assert.equal(
      trustedVerdict(itemFor(await post(a, 'verify', [signedKey]), signedKey))?.digest,
      signedDigest
    );
    const since = (await registry.requests()).length;
    const paths = keys.map((k) => `/manifests/${k.split(':').pop() as string}`);

    let restarted: TestProvider | undefined;
    const results = await boundedLoad(
      8,
      4,
      async () => ({
        resolve: await post(b, 'resolve', keys),
        verify: await post(b, 'verify', [signedKey, unsigned()]),
      }),
      async (round) => {
        if (round === 1) await a.kill();
        if (round === 4) restarted = await start();
      }
    );
    for (const { resolve, verify } of results) {
      assert.equal(resolve.systemError, undefined);
      for (const key of keys) assert.equal(itemFor(resolve, key)?.value, itemFor(warmed, key)?.value);
      assert.equal(trustedVerdict(itemFor(verify, signedKey))?.digest, signedDigest);
      assert.equal(trustedVerdict(itemFor(verify, unsigned())), undefined);
    }
    // The restarted replica also starts warm, from Redis.
    const again = await post(restarted as TestProvider, 'resolve', keys);
    for (const key of keys) assert.equal(itemFor(again, key)?.value, itemFor(warmed, key)?.value);
    assert.equal(await headsFor(paths, since), 0, 'a replica went back to the registry for a shared entry');
    assert.ok((await b.metric('sigpin_cache_events_total', { layer: 'l2', result: 'hit' })) > 0);
    await assertHealthy(b);
    await assertHealthy(restarted as TestProvider);
  });
});
