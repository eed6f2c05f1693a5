// The test support itself: real docker-registry in each auth mode, deterministic images pushed with skopeo,
// request counting from the access log, token counting, raw pushes for artifacts and the referrers fallback tag.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import {
  ACCEPT_MANIFESTS,
  buildImage,
  MEDIA_TYPES,
  pushArtifact,
  pushImage,
  pushReferrersFallbackIndex,
  referrersTag,
  sha256Digest,
  TestRegistryHttp,
} from '../support/images.ts';
import { startRegistry } from '../support/registry.ts';
import type { TestRegistry } from '../support/registry.ts';

test('requireBinary returns no skip for a binary on PATH', () => {
  assert.deepEqual(requireBinary('sh'), {});
});

test('requireBinary skips locally and throws under CI for a missing binary', () => {
  const saved = process.env.CI;
  try {
    delete process.env.CI;
    assert.match(
      requireBinary('sigpin-no-such-binary').skip ?? '',
      /sigpin-no-such-binary not installed: apt-get/
    );
    process.env.CI = 'true';
    assert.throws(() => requireBinary('sigpin-no-such-binary'), /not installed/);
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
});

test('buildImage is deterministic and seed-dependent', () => {
  for (const kind of ['oci-manifest', 'docker-manifest', 'oci-index', 'docker-list'] as const) {
    assert.equal(
      buildImage(kind, 'a').manifest.descriptor.digest,
      buildImage(kind, 'a').manifest.descriptor.digest
    );
    assert.notEqual(
      buildImage(kind, 'a').manifest.descriptor.digest,
      buildImage(kind, 'b').manifest.descriptor.digest
    );
  }
  assert.equal(buildImage('oci-index', 'a').children.length, 2);
});

for (const auth of ['none', 'htpasswd', 'token'] as const) {
  describe(`real docker-registry with auth ${auth}`, requireBinary('docker-registry'), () => {
    let registry: TestRegistry;
    before(async () => {
      registry = await startRegistry({ auth });
    });
    after(() => registry?.stop());

    test(
      'skopeo pushes every image kind with the locally computed digest',
      requireBinary('skopeo'),
      async () => {
        const http = new TestRegistryHttp(registry);
        for (const kind of ['oci-manifest', 'docker-manifest', 'oci-index', 'docker-list'] as const) {
          const image = await pushImage(registry, 'support/app', kind, kind, { seed: kind });
          const res = await http.request('HEAD', `/v2/support/app/manifests/${kind}`, {
            headers: { Accept: ACCEPT_MANIFESTS },
            scope: 'repository:support/app:pull',
          });
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('docker-content-digest'), image.digest);
          assert.equal(res.headers.get('content-type'), image.mediaType);
        }
      }
    );

    test('the access log counts requests by method and path', async () => {
      const before = (await registry.requests()).length;
      const http = new TestRegistryHttp(registry);
      const res = await http.request('GET', '/v2/support/none/manifests/missing', {
        headers: { Accept: ACCEPT_MANIFESTS },
        scope: 'repository:support/none:pull',
      });
      await res.arrayBuffer();
      assert.equal(res.status, 404);
      const after = (await registry.requests()).slice(before);
      const gets = after.filter((r) => r.path === '/v2/support/none/manifests/missing');
      // without auth: one 404; with auth: the 401 challenge first, then the 404
      assert.deepEqual(
        gets.map((r) => [r.method, r.status]),
        auth === 'none'
          ? [['GET', 404]]
          : [
              ['GET', 401],
              ['GET', 404],
            ]
      );
      if (auth === 'token') assert.ok((registry.tokenServer?.requests().length ?? 0) >= 1);
    });

    test('raw pushes: artifact with subject and the referrers fallback index', async () => {
      const image = await pushImage(registry, 'support/ref', 'ref', 'oci-manifest');
      const artifact = await pushArtifact(registry, 'support/ref', {
        subject: image.manifest.descriptor,
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        layers: [
          { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', bytes: Buffer.from('{"x":1}') },
        ],
      });
      const index = await pushReferrersFallbackIndex(registry, 'support/ref', image.digest, [
        artifact.descriptor,
      ]);
      const http = new TestRegistryHttp(registry);
      const res = await http.request('GET', `/v2/support/ref/manifests/${referrersTag(image.digest)}`, {
        headers: { Accept: MEDIA_TYPES.ociIndex },
        scope: 'repository:support/ref:pull',
      });
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200);
      assert.equal(sha256Digest(body), index.descriptor.digest);
      const referrersApi = await http.request('GET', `/v2/support/ref/referrers/${image.digest}`, {
        scope: 'repository:support/ref:pull',
      });
      await referrersApi.arrayBuffer();
      assert.equal(referrersApi.status, 404, 'distribution 2.8 has no referrers API');
    });
  });
}

test(
  'token server counts token requests and rejects wrong credentials',
  requireBinary('docker-registry'),
  async (t) => {
    const registry = await startRegistry({ auth: 'token' });
    t.after(() => registry.stop());
    const wrong = new TestRegistryHttp({ ...registry, password: 'wrong' });
    await assert.rejects(
      wrong.request('GET', '/v2/x/manifests/y', { scope: 'repository:x:pull' }),
      /token server .* 401/
    );
    const records = registry.tokenServer?.requests() ?? [];
    assert.equal(records.length, 1);
    assert.equal(records[0]?.status, 401);
    assert.deepEqual(records[0]?.scopes, ['repository:x:pull']);
  }
);

test(
  'setupSigningSkopeo provides a skopeo 1.18 wrapper that can sign',
  requireBinary('dpkg-deb'),
  async () => {
    const { setupSigningSkopeo } = await import('../support/images.ts');
    const skopeo = await setupSigningSkopeo();
    const { execFileSync } = await import('node:child_process');
    assert.match(execFileSync(skopeo, ['--version']).toString(), /skopeo version 1\.18\./);
    assert.match(execFileSync(skopeo, ['copy', '--help']).toString(), /--sign-by-sigstore-private-key/);
  }
);
