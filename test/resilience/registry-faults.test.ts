/**
 * The real provider (child process) in front of a real docker-registry, with the fault proxy between them.
 * Every scenario breaks the registry in one way under a small bounded load, then heals it, and checks:
 * no crash, nothing unverified reported trusted, the transient failure not cached (the same key succeeds once
 * the fault clears), memory bounded.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import {
  manifestRequests,
  startFaultProxy,
  type Fault,
  type FaultProxy,
  type RequestMatcher,
} from './fault-proxy.ts';
import {
  assertHealthy,
  boundedLoad,
  itemFor,
  post,
  providerConfig,
  pushTags,
  request,
  seedImages,
  trustedVerdict,
  type SeededImages,
} from './support.ts';

const gets: RequestMatcher = (method) => method === 'GET';
const manifestHeads: RequestMatcher = (method, path) => method === 'HEAD' && manifestRequests(method, path);

describe(
  'resilience: registry faults (fault proxy in front of docker-registry)',
  requireBinary('docker-registry'),
  () => {
    let registry: TestRegistry;
    let proxy: FaultProxy;
    let provider: TestProvider;
    let images: SeededImages;
    let fresh: string[];
    const signedLeft: Array<[string, string]> = [];

    before(async () => {
      registry = await startRegistry();
      proxy = await startFaultProxy(registry.url);
      images = await seedImages(registry, { signed: 8, unsigned: 2 });
      signedLeft.push(...images.signed.entries());
      fresh = await pushTags(registry, 'f', 12);
      const { config, files } = providerConfig(proxy.host, images.signer.publicKeyPem, {
        // Short digest TTLs so a lie from the registry (wrong digest) ages out within the test.
        cache: { digestTTL: '2s', staleTTL: '1s' },
      });
      provider = await startProvider({ config, files });
    });

    after(async () => {
      await provider?.stop();
      await proxy?.stop();
      await registry?.stop();
    });

    const at = (name: string): string => `${proxy.host}/${name}`;
    const nextFresh = (): string => at(fresh.shift() as string);
    const nextSigned = (): { key: string; digest: string } => {
      const [name, digest] = signedLeft.shift() as [string, string];
      return { key: at(name), digest };
    };
    const unsignedKey = (): string => at([...images.unsigned.keys()][0] as string);

    /**
     * Under `fault`: a fresh tag and a signed image are never answered with a value or trusted, only left out with
     * a systemError (or, for the unsigned image, refused); after `clear()` both succeed at once.
     */
    async function transientFaultScenario(fault: Fault, match: RequestMatcher): Promise<void> {
      const tag = nextFresh();
      const signed = nextSigned();
      const unsigned = unsignedKey();
      proxy.setFault(fault, match);
      const during = await boundedLoad(2, 4, async (_round, slot) =>
        slot % 2 === 0 ? post(provider, 'resolve', [tag]) : post(provider, 'verify', [signed.key, unsigned])
      );
      for (const r of during) {
        assert.equal(
          itemFor(r, tag),
          undefined,
          `a fresh tag was answered during the fault: ${JSON.stringify(r)}`
        );
        assert.equal(itemFor(r, signed.key), undefined, `the signed image was answered during the fault`);
        assert.equal(
          trustedVerdict(itemFor(r, unsigned)),
          undefined,
          'an unsigned image was reported trusted'
        );
        assert.match(r.systemError ?? '', /^REGISTRY_UNAVAILABLE: /);
      }
      proxy.clear();
      const resolved = await post(provider, 'resolve', [tag]);
      assert.match(String(itemFor(resolved, tag)?.value), /^sha256:[0-9a-f]{64}$/, JSON.stringify(resolved));
      assert.equal(resolved.systemError, undefined);
      const verified = await post(provider, 'verify', [signed.key, unsigned]);
      assert.equal(
        trustedVerdict(itemFor(verified, signed.key))?.digest,
        signed.digest,
        JSON.stringify(verified)
      );
      assert.match(itemFor(verified, unsigned)?.error ?? '', /^UNSIGNED: /);
      await assertHealthy(provider);
    }

    it('fault proxy: a registry slower than the deadline', async () => {
      await transientFaultScenario({ kind: 'slow', delayMs: 5_000 }, () => true);
    });

    it('fault proxy: a registry that is down (connections reset)', async () => {
      await transientFaultScenario({ kind: 'down' }, () => true);
    });

    it('fault proxy: 429 with Retry-After, retried within the deadline only', async () => {
      const before429 = await provider.metric('sigpin_registry_rate_limited_total');
      proxy.resetLog();
      await transientFaultScenario({ kind: 'status', status: 429, retryAfter: '1' }, () => true);
      assert.ok((await provider.metric('sigpin_registry_rate_limited_total')) > before429);
      // maxRetries 1: at most two attempts per load. 2 rounds x 3 keys (each load shared by the round's 4
      // requests) x 2 attempts, plus possible background refreshes of stale digests: never one per request.
      const heads = proxy.log().filter((r) => r.outcome === 'status' && r.method === 'HEAD');
      assert.ok(heads.length >= 1 && heads.length <= 16, `${heads.length} HEADs answered 429`);
    });

    it('fault proxy: 500 from the registry', async () => {
      await transientFaultScenario({ kind: 'status', status: 500 }, () => true);
    });

    it('fault proxy: truncated manifest and blob bodies', async () => {
      // HEADs pass (resolution works), every GET body is cut in half: signatures cannot be read.
      const signed = nextSigned();
      const unsigned = unsignedKey();
      proxy.setFault({ kind: 'truncate' }, gets);
      const during = await boundedLoad(2, 3, () => post(provider, 'verify', [signed.key, unsigned]));
      for (const r of during) {
        assert.equal(trustedVerdict(itemFor(r, signed.key)), undefined, 'trusted from a truncated signature');
        assert.equal(
          trustedVerdict(itemFor(r, unsigned)),
          undefined,
          'an unsigned image was reported trusted'
        );
        assert.equal(itemFor(r, signed.key), undefined, 'a transient failure became an item error');
        assert.match(r.systemError ?? '', /^REGISTRY_UNAVAILABLE: /);
      }
      proxy.clear();
      const verified = await post(provider, 'verify', [signed.key]);
      assert.equal(
        trustedVerdict(itemFor(verified, signed.key))?.digest,
        signed.digest,
        JSON.stringify(verified)
      );
      await assertHealthy(provider);
    });

    it('fault proxy: a wrong Docker-Content-Digest never makes an unverified digest trusted', async () => {
      const signed = nextSigned();
      const unsignedDigest = [...images.unsigned.values()][0] as string;
      // The registry (or anything between) claims the signed tag is the unsigned image.
      proxy.setFault({ kind: 'wrong-digest', digest: unsignedDigest }, manifestHeads);
      const during = await boundedLoad(2, 3, () => post(provider, 'verify', [signed.key]));
      for (const r of during) {
        const item = itemFor(r, signed.key);
        assert.equal(trustedVerdict(item), undefined, `trusted under a lying registry: ${JSON.stringify(r)}`);
        // What it resolved to is what it refused: the pinned digest is never one that was not verified.
        if (item?.error) assert.match(item.error, /^UNSIGNED: /);
      }
      const mutated = await post(provider, 'mutate', [signed.key]);
      const pinned = String(itemFor(mutated, signed.key)?.value ?? '');
      assert.ok(
        pinned === '' || pinned.endsWith(`@${unsignedDigest}`) || pinned.endsWith(`@${signed.digest}`)
      );
      proxy.clear();
      // The lie ages out with the digest TTL (2 s + 1 s stale); bounded wait for the true digest to be verified.
      let verdict;
      for (let attempt = 0; attempt < 40 && verdict === undefined; attempt++) {
        verdict = trustedVerdict(itemFor(await post(provider, 'verify', [signed.key]), signed.key));
        if (verdict === undefined) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(verdict?.digest, signed.digest);
      await assertHealthy(provider);
    });

    it('a client that disconnects mid-request does not disturb the provider', async () => {
      const tag = nextFresh();
      proxy.setFault({ kind: 'slow', delayMs: 1_000 }, manifestRequests);
      // 1: the whole request sent, the client leaves while the provider waits for the registry.
      const body = JSON.stringify(request([tag]));
      await Promise.all(Array.from({ length: 10 }, () => abandon(provider, body, body.length, 150)));
      // 2: headers promise a body that never fully arrives.
      await Promise.all(
        Array.from({ length: 10 }, () => abandon(provider, body.slice(0, 20), body.length, 50))
      );
      proxy.clear();
      const r = await post(provider, 'resolve', [tag]);
      assert.match(String(itemFor(r, tag)?.value), /^sha256:/, JSON.stringify(r));
      assert.equal(await provider.metric('sigpin_request_duration_seconds_count', { status: '500' }), 0);
      await assertHealthy(provider);
    });
  }
);

/** Sends `sent` (declaring `declared` bytes) and destroys the connection after `afterMs`, without reading. */
function abandon(provider: TestProvider, sent: string, declared: number, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = https.request({
      host: '127.0.0.1',
      port: provider.port,
      path: '/gatekeeper/v1/resolve',
      method: 'POST',
      ca: provider.ca.certPem,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': declared },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(sent);
    setTimeout(() => req.destroy(), afterMs);
  });
}
