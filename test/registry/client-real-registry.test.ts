// RegistryClient against the real docker-registry (distribution 2.8) in its three auth set-ups, with images
// pushed by skopeo and digests computed independently by the test support.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { SigpinError } from '../../provider/src/errors.ts';
import { RegistryClient } from '../../provider/src/registry/index.ts';
import type { RegistryClientOptions, RequestContext } from '../../provider/src/registry/index.ts';
import { requireBinary } from '../support/binaries.ts';
import {
  MEDIA_TYPES,
  pushArtifact,
  pushImage,
  pushReferrersFallbackIndex,
  sha256Digest,
} from '../support/images.ts';
import type { PushedImage } from '../support/images.ts';
import { startRegistry } from '../support/registry.ts';
import type { TestRegistry } from '../support/registry.ts';

const silent = pino({ level: 'silent' });
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const KINDS = ['oci-manifest', 'docker-manifest', 'oci-index', 'docker-list'] as const;

const ctx = (): RequestContext => ({ signal: AbortSignal.timeout(20_000) });

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SigpinError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected ${code}, got success`),
    (err: unknown) => {
      caught = err;
    }
  );
  assert.ok(caught instanceof SigpinError, `expected SigpinError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function clientFor(registry: TestRegistry, extra: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    allow: [registry.host],
    insecure: [registry.host],
    ...(registry.username
      ? {
          credentials: [
            { registry: registry.host, username: registry.username, password: registry.password ?? '' },
          ],
        }
      : {}),
    logger: silent,
    ...extra,
  });
}

for (const auth of ['none', 'htpasswd', 'token'] as const) {
  describe(`RegistryClient with real docker-registry, auth ${auth}`, requireBinary('docker-registry'), () => {
    let registry: TestRegistry;
    let client: RegistryClient;
    const images = new Map<string, PushedImage>();

    before(async () => {
      requireBinary('skopeo');
      registry = await startRegistry({ auth });
      for (const kind of KINDS) images.set(kind, await pushImage(registry, 'team/app', kind, kind));
      client = clientFor(registry);
    });
    after(async () => {
      await client?.close();
      await registry?.stop();
    });

    for (const kind of KINDS) {
      test(`resolves the tag of a ${kind} to its digest (index digest for multi-arch)`, async () => {
        const image = images.get(kind);
        assert.ok(image);
        const resolved = await client.resolveDigest(registry.host, 'team/app', kind, ctx());
        assert.deepEqual(resolved, { digest: image.digest, mediaType: image.mediaType, size: image.size });
      });
    }

    test('resolves by digest', async () => {
      const image = images.get('oci-manifest');
      assert.ok(image);
      const resolved = await client.resolveDigest(registry.host, 'team/app', image.digest, ctx());
      assert.equal(resolved.digest, image.digest);
      assert.equal(resolved.mediaType, MEDIA_TYPES.ociManifest);
    });

    test('a warm resolution costs exactly one HEAD and no GET', async () => {
      await client.resolveDigest(registry.host, 'team/app', 'oci-index', ctx()); // warm auth state and token
      const tokensBefore = registry.tokenServer?.requests().length ?? 0;
      const before = (await registry.requests()).length;
      await client.resolveDigest(registry.host, 'team/app', 'docker-list', ctx());
      await client.resolveDigest(registry.host, 'team/app', 'oci-manifest', ctx());
      const seen = (await registry.requests()).slice(before);
      assert.deepEqual(
        seen.map((r) => `${r.method} ${r.path} ${r.status}`),
        ['HEAD /v2/team/app/manifests/docker-list 200', 'HEAD /v2/team/app/manifests/oci-manifest 200']
      );
      // the token for repository:team/app:pull was reused
      assert.equal(registry.tokenServer?.requests().length ?? 0, tokensBefore);
    });

    test('an unknown tag is NOT_FOUND', async () => {
      await rejectsWith(client.resolveDigest(registry.host, 'team/app', 'no-such-tag', ctx()), 'NOT_FOUND');
      await rejectsWith(client.getManifest(registry.host, 'team/app', 'no-such-tag', ctx()), 'NOT_FOUND');
    });

    test('getManifest returns the exact bytes; getBlob returns checked blob bytes', async () => {
      const image = images.get('docker-manifest');
      assert.ok(image);
      const manifest = await client.getManifest(registry.host, 'team/app', 'docker-manifest', ctx());
      assert.equal(manifest.digest, image.digest);
      assert.equal(manifest.mediaType, MEDIA_TYPES.dockerManifest);
      assert.equal(sha256Digest(manifest.bytes), image.digest);
      const config = image.blobs[0];
      assert.ok(config);
      const blob = await client.getBlob(
        registry.host,
        'team/app',
        config.descriptor.digest,
        ctx(),
        1024 * 1024
      );
      assert.deepEqual(blob, config.bytes);
      await rejectsWith(
        client.getBlob(registry.host, 'team/app', sha256Digest('absent'), ctx(), 1024),
        'NOT_FOUND'
      );
      await rejectsWith(
        client.getBlob(registry.host, 'team/app', config.descriptor.digest, ctx(), 8),
        'REGISTRY_UNAVAILABLE'
      );
    });

    test('multi-arch: platform manifests resolve by digest inside the index', async () => {
      const image = images.get('oci-index');
      const child = image?.children[1];
      assert.ok(child);
      const manifest = await client.getManifest(registry.host, 'team/app', child.descriptor.digest, ctx());
      assert.deepEqual(manifest.bytes, child.bytes);
      assert.equal(manifest.mediaType, MEDIA_TYPES.ociManifest);
    });

    test('referrers: no referrers API (404) falls back to the sha256-<hex> tag index', async () => {
      const image = images.get('oci-manifest');
      assert.ok(image);
      assert.deepEqual(await client.listReferrers(registry.host, 'team/app', image.digest, ctx()), []);
      const bundle = await pushArtifact(registry, 'team/app', {
        subject: image.manifest.descriptor,
        artifactType: BUNDLE,
        layers: [{ mediaType: BUNDLE, bytes: Buffer.from('{"bundle":1}') }],
      });
      const other = await pushArtifact(registry, 'team/app', {
        subject: image.manifest.descriptor,
        artifactType: 'application/vnd.cncf.notary.signature',
        layers: [{ mediaType: 'application/jose+json', bytes: Buffer.from('{}') }],
      });
      await pushReferrersFallbackIndex(registry, 'team/app', image.digest, [
        bundle.descriptor,
        other.descriptor,
      ]);
      const all = await client.listReferrers(registry.host, 'team/app', image.digest, ctx());
      assert.deepEqual(
        all.map((d) => d.digest),
        [bundle.descriptor.digest, other.descriptor.digest]
      );
      const bundles = await client.listReferrers(registry.host, 'team/app', image.digest, ctx(), BUNDLE);
      assert.deepEqual(bundles, [bundle.descriptor]);
      const seen = await registry.requests();
      assert.ok(seen.some((r) => r.path.startsWith('/v2/team/app/referrers/') && r.status === 404));
    });

    if (auth !== 'none') {
      test('a wrong password is UNAUTHORIZED', async () => {
        const wrong = clientFor({ ...registry, password: 'wrong' });
        try {
          await rejectsWith(
            wrong.resolveDigest(registry.host, 'team/app', 'oci-manifest', ctx()),
            'UNAUTHORIZED'
          );
        } finally {
          await wrong.close();
        }
      });

      test('no credentials at all is UNAUTHORIZED', async () => {
        const anonymous = new RegistryClient({
          allow: [registry.host],
          insecure: [registry.host],
          logger: silent,
        });
        try {
          await rejectsWith(
            anonymous.resolveDigest(registry.host, 'team/app', 'oci-manifest', ctx()),
            'UNAUTHORIZED'
          );
        } finally {
          await anonymous.close();
        }
      });

      test('credentials from a docker config.json (auth as base64 user:password)', async (t) => {
        const dir = await mkdtemp(join(tmpdir(), 'sigpin-dockercfg-'));
        t.after(() => rm(dir, { recursive: true, force: true }));
        const file = join(dir, 'config.json');
        const authValue = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
        await writeFile(
          file,
          JSON.stringify({ auths: { [`http://${registry.host}/v2/`]: { auth: authValue } } })
        );
        const fromFile = new RegistryClient({
          allow: [registry.host],
          insecure: [registry.host],
          dockerConfigFile: file,
          logger: silent,
        });
        t.after(() => fromFile.close());
        const image = images.get('oci-index');
        const resolved = await fromFile.resolveDigest(registry.host, 'team/app', 'oci-index', ctx());
        assert.equal(resolved.digest, image?.digest);
      });

      test('credentials from pull secrets of the request namespace', async (t) => {
        const asked: string[] = [];
        const withSecrets = new RegistryClient({
          allow: [registry.host],
          insecure: [registry.host],
          logger: silent,
          pullSecrets: async (host, namespace) => {
            asked.push(`${namespace} ${host}`);
            return namespace === 'team'
              ? { username: registry.username ?? '', password: registry.password ?? '' }
              : undefined;
          },
        });
        t.after(() => withSecrets.close());
        const resolved = await withSecrets.resolveDigest(registry.host, 'team/app', 'oci-manifest', {
          ...ctx(),
          namespace: 'team',
        });
        assert.equal(resolved.digest, images.get('oci-manifest')?.digest);
        await rejectsWith(
          withSecrets.resolveDigest(registry.host, 'team/app', 'oci-manifest', {
            ...ctx(),
            namespace: 'other',
          }),
          'UNAUTHORIZED'
        );
        assert.deepEqual(asked, [`team ${registry.host}`, `other ${registry.host}`]);
      });
    }

    if (auth === 'token') {
      test('tokens are cached per scope and credential: one token request for many lookups', async (t) => {
        const fresh = clientFor(registry);
        t.after(() => fresh.close());
        const before = registry.tokenServer?.requests().length ?? 0;
        for (const kind of KINDS) await fresh.resolveDigest(registry.host, 'team/app', kind, ctx());
        await fresh.getManifest(registry.host, 'team/app', 'oci-index', ctx());
        const issued = (registry.tokenServer?.requests() ?? []).slice(before);
        assert.equal(issued.length, 1);
        assert.deepEqual(issued[0]?.scopes, ['repository:team/app:pull']);
        assert.equal(issued[0]?.subject, registry.username);
      });

      test('credentials and tokens never appear in debug logs', async (t) => {
        const lines: string[] = [];
        const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
        const logged = clientFor(registry, { logger });
        t.after(() => logged.close());
        await logged.resolveDigest(registry.host, 'team/app', 'oci-manifest', ctx());
        const wrong = clientFor({ ...registry, password: 'wrong-password-x' }, { logger });
        t.after(() => wrong.close());
        await rejectsWith(
          wrong.resolveDigest(registry.host, 'team/app', 'oci-manifest', ctx()),
          'UNAUTHORIZED'
        );
        const text = lines.join('\n');
        assert.ok(lines.length > 0);
        assert.ok(!text.includes(registry.password ?? '-'), 'password logged');
        assert.ok(!text.includes('wrong-password-x'), 'password logged');
        assert.ok(!/eyJ[\w-]+\.[\w-]+/.test(text), 'a JWT was logged');
        assert.ok(!/Basic |Bearer /.test(text), 'an Authorization value was logged');
      });
    }
  });
}

test(
  'kid-mode tokens (libtrust key id) are accepted by the real registry',
  requireBinary('docker-registry'),
  async (t) => {
    requireBinary('skopeo');
    const registry = await startRegistry({ auth: 'token', token: { keyMode: 'kid' } });
    t.after(() => registry.stop());
    const image = await pushImage(registry, 'kid/app', 'v1', 'oci-manifest');
    const client = clientFor(registry);
    t.after(() => client.close());
    assert.equal((await client.resolveDigest(registry.host, 'kid/app', 'v1', ctx())).digest, image.digest);
  }
);

test(
  'the allowlist: "*" does not allow the loopback registry and nothing reaches it',
  requireBinary('docker-registry'),
  async (t) => {
    const registry = await startRegistry({ auth: 'none' });
    t.after(() => registry.stop());
    let attempts = 0;
    const client = new RegistryClient({
      allow: ['*'],
      insecure: [registry.host],
      logger: silent,
      onRequest: () => attempts++,
    });
    t.after(() => client.close());
    const before = (await registry.requests()).length;
    await rejectsWith(client.resolveDigest(registry.host, 'team/app', 'v1', ctx()), 'NOT_ALLOWED');
    const port = registry.host.split(':')[1];
    // a name that resolves to loopback is refused after DNS, before connecting
    await rejectsWith(client.resolveDigest(`localhost:${port}`, 'team/app', 'v1', ctx()), 'NOT_ALLOWED');
    assert.equal((await registry.requests()).length, before);
    assert.equal(attempts, 1, 'only the refused localhost attempt is reported, with no response');
  }
);
