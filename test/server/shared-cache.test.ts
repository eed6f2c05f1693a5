import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, type PushedImage } from '../support/images.ts';
import { providerRequest, startProvider, type TestProvider } from '../support/provider.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';

interface Response {
  response: { items: Array<{ key: string; value?: unknown; error?: string }>; systemError?: string };
}

const skip =
  requireBinary('docker-registry').skip ?? requireBinary('skopeo').skip ?? requireBinary('redis-server').skip;

describe('two providers sharing one real Redis', { skip }, () => {
  let registry: TestRegistry;
  let redis: TestRedis;
  const providers: TestProvider[] = [];
  let image: PushedImage;
  const hmac = randomBytes(32);

  const config = () => ({
    registries: {
      allow: [registry.host],
      insecure: [registry.host],
      credentials: [{ registry: registry.host, username: registry.username, password: registry.password }],
    },
    cache: { url: redis.url, hmacKeyFile: 'hmac.key', required: true },
    policies: [{ name: 'local', images: ['**'], verify: false }],
    log: { level: 'trace' },
  });

  before(async () => {
    registry = await startRegistry({ auth: 'token' });
    redis = await startRedis();
    image = await pushImage(registry, 'team/app', 'v1', 'oci-index');
    for (let i = 0; i < 2; i++)
      providers.push(await startProvider({ config: config(), files: { 'hmac.key': hmac } }));
  });
  after(async () => {
    for (const p of providers) await p.stop();
    await redis?.stop();
    await registry?.stop();
  });

  test('the second replica answers from the shared cache with zero registry requests', async () => {
    const [first, second] = providers as [TestProvider, TestProvider];
    const a = (await first.post('/gatekeeper/v1/mutate', providerRequest([image.reference])))
      .body as Response;
    assert.equal(a.response.items[0]?.value, `${image.reference}@${image.digest}`);
    const before = (await registry.requests()).length;
    const tokensBefore = registry.tokenServer?.requests().length ?? 0;
    const b = (await second.post('/gatekeeper/v1/mutate', providerRequest([image.reference])))
      .body as Response;
    assert.equal(b.response.items[0]?.value, `${image.reference}@${image.digest}`);
    assert.equal((await registry.requests()).length, before, 'no registry request from the second replica');
    assert.equal(registry.tokenServer?.requests().length ?? 0, tokensBefore, 'no token request either');
    assert.equal(await second.metric('sigpin_registry_requests_total'), 0);
    assert.equal(await second.metric('sigpin_cache_events_total', { layer: 'l2', result: 'hit' }), 1);
  });

  test('logs at trace level hold no password, Basic credential or bearer token', async () => {
    const [first] = providers as [TestProvider];
    const logs = first.logs();
    assert.match(logs, /"component":"registry"/, 'the registry client did log');
    const basic = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    for (const secret of [registry.password as string, basic, 'Bearer ey']) {
      assert.equal(logs.includes(secret), false, `logs contain ${secret.slice(0, 12)}…`);
    }
  });

  test('Redis down: lookups still answer (from memory or the registry), readiness reports it, then recovers', async () => {
    const [first] = providers as [TestProvider];
    await redis.kill();
    const out = (await first.post('/kyverno/v1/resolve', providerRequest([image.reference])))
      .body as Response;
    assert.equal(out.response.items[0]?.value, image.digest);
    assert.equal((await first.get('/readyz')).status, 503);
    await redis.restart();
    let ready = 0;
    for (let i = 0; i < 50 && ready !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = (await first.get('/readyz')).status;
    }
    assert.equal(ready, 200);
  });
});
