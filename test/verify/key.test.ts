/**
 * Key-based verification against a real docker-registry, with signatures from independent signers: skopeo 1.18
 * (containers/image) signing with cosign keys, the genuine cosign-made fixtures from containers/image, and
 * @sigstore/sign for cosign v3-style DSSE bundles. Negative cases each assert their code.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, setupSigningSkopeo, sha256Digest, type PushedImage } from '../support/images.ts';
import {
  inTotoStatement,
  keySignedStatementBundle,
  keySigLayer,
  pushAttachment,
  pushBundleReferrer,
  signBytes,
  sigstoreRegistriesDir,
  simpleSigningPayload,
  SLSA_PROVENANCE_V1,
  COSIGN_SIGN_PREDICATE,
} from '../support/signing.ts';
import {
  code,
  FIXTURES,
  keyAuthority,
  requires,
  requiresProvenance,
  startVerifyEnv,
  verifyDigest,
  type VerifyEnv,
} from './env.ts';

const TESTBED_KEY = join(FIXTURES, 'testbed-generated.key');
const TESTBED_PUB = join(FIXTURES, 'testbed-generated.pub');
const TESTBED_PASS = join(FIXTURES, 'testbed.pass');
const UPSTREAM_KEY = join(FIXTURES, 'cosign-upstream-sigstore-label.key');
const UPSTREAM_PUB = join(FIXTURES, 'cosign-upstream-sigstore-label.pub');
const UPSTREAM_PASS = join(FIXTURES, 'cosign-upstream.pass');
const CONTAINERS_IMAGE = join(FIXTURES, 'containers-image');

const needs = requireBinary('docker-registry');

function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

describe('key-based verification (real registry)', needs, () => {
  let env: VerifyEnv;
  let skopeo: string;

  before(async () => {
    env = await startVerifyEnv();
    skopeo = await setupSigningSkopeo();
  });
  after(() => env.stop());

  /** Pushes an image with skopeo 1.18 signing it with a cosign key file (cosign-compatible `.sig` attachments). */
  async function skopeoSigned(
    repo: string,
    kind: 'oci-manifest' | 'oci-index',
    key: string,
    pass: string
  ): Promise<PushedImage> {
    const registriesD = await sigstoreRegistriesDir(env.registry.host);
    try {
      return await pushImage(env.registry, repo, 'v1', kind, {
        skopeo,
        extraArgs: [
          '--registries.d',
          registriesD.dir,
          '--sign-by-sigstore-private-key',
          key,
          '--sign-passphrase-file',
          pass,
        ],
      });
    } finally {
      await registriesD.remove();
    }
  }

  test('skopeo-signed image verifies with the cosign public key (skopeo identity form: tag + optional.creator)', async () => {
    const image = await skopeoSigned('skopeo/single', 'oci-manifest', TESTBED_KEY, TESTBED_PASS);
    const verifier = await env.verifier([keyAuthority('release', TESTBED_PUB)]);
    const result = await verifyDigest(verifier, env, 'skopeo/single', image.digest, requires(['release']));
    assert.deepEqual(result, { signatures: [{ authority: 'release', kind: 'key' }] });
  });

  test('skopeo --all signs the index and every platform manifest', async () => {
    const image = await skopeoSigned('skopeo/multi', 'oci-index', UPSTREAM_KEY, UPSTREAM_PASS);
    const verifier = await env.verifier([keyAuthority('release', UPSTREAM_PUB)]);
    assert.ok(image.children.length >= 2);
    for (const digest of [image.digest, ...image.children.map((c) => c.descriptor.digest)]) {
      const result = await verifyDigest(verifier, env, 'skopeo/multi', digest, requires(['release']));
      assert.equal(result.signatures[0]?.authority, 'release');
    }
  });

  test('wrong key: UNTRUSTED, never trusted', async () => {
    const image = await skopeoSigned('skopeo/wrongkey', 'oci-manifest', TESTBED_KEY, TESTBED_PASS);
    const verifier = await env.verifier([keyAuthority('other', UPSTREAM_PUB)]);
    await assert.rejects(
      verifyDigest(verifier, env, 'skopeo/wrongkey', image.digest, requires(['other'])),
      code('UNTRUSTED')
    );
  });

  test('unsigned image: UNSIGNED', async () => {
    const image = await pushImage(env.registry, 'plain/unsigned', 'v1', 'oci-manifest');
    const verifier = await env.verifier([keyAuthority('release', TESTBED_PUB)]);
    await assert.rejects(
      verifyDigest(verifier, env, 'plain/unsigned', image.digest, requires(['release'])),
      code('UNSIGNED')
    );
  });

  test('genuine cosign signatures (containers/image fixtures) verify; a modified manifest does not', async () => {
    const pub = join(CONTAINERS_IMAGE, 'cosign.pub');
    const verifier = await env.verifier([
      keyAuthority('cosign', pub),
      keyAuthority('cosign2', join(CONTAINERS_IMAGE, 'cosign2.pub')),
    ]);
    const cases: Array<[string, string[], 'ok' | 'UNTRUSTED']> = [
      ['dir-img-cosign-valid', ['signature-1'], 'ok'],
      ['dir-img-cosign-valid-2', ['signature-1', 'signature-2'], 'ok'],
      ['dir-img-cosign-valid-with-tag', ['signature-1'], 'ok'],
      ['dir-img-cosign-modified-manifest', ['signature-1'], 'UNTRUSTED'],
    ];
    for (const [dir, files, expected] of cases) {
      const manifest = await readFile(join(CONTAINERS_IMAGE, dir, 'manifest.json'));
      const digest = sha256Digest(manifest);
      const layers = [];
      for (const f of files) {
        // containers/image "dir:" signature file: a header line, then JSON {mimeType, payload, annotations}
        const text = (await readFile(join(CONTAINERS_IMAGE, dir, f), 'utf8')).replace(/^[^{]*/, '');
        const sig = JSON.parse(text) as { payload: string; annotations: Record<string, string> };
        layers.push({ blob: Buffer.from(sig.payload, 'base64'), annotations: sig.annotations });
      }
      const repo = `fixtures/${dir}`;
      await pushAttachment(env.registry, repo, digest, 'sig', layers);
      const run = verifyDigest(verifier, env, repo, digest, requires(['cosign', 'cosign2'], 1));
      if (expected === 'ok') {
        const result = await run;
        assert.ok(result.signatures.length >= 1, dir);
      } else {
        await assert.rejects(run, code('UNTRUSTED', 'signs sha256:'));
      }
    }
    // dir-img-cosign-valid-2 carries two signatures, both by cosign.pub: one authority, so threshold 2 fails
    const manifest = await readFile(join(CONTAINERS_IMAGE, 'dir-img-cosign-valid-2', 'manifest.json'));
    await assert.rejects(
      verifyDigest(
        verifier,
        env,
        'fixtures/dir-img-cosign-valid-2',
        sha256Digest(manifest),
        requires(['cosign', 'cosign2'], 2)
      ),
      code('UNTRUSTED', '1 of 2')
    );
  });

  describe('legacy layers signed with node:crypto keys', () => {
    const keys = {
      p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
      rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
      ed25519: generateKeyPairSync('ed25519'),
    };
    let image: PushedImage;
    const repo = 'node/keys';

    before(async () => {
      image = await pushImage(env.registry, repo, 'v1', 'oci-manifest');
    });

    for (const [name, pair] of Object.entries(keys)) {
      test(`${name} key`, async () => {
        const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
        await pushAttachment(env.registry, repo, image.digest, 'sig', [
          keySigLayer(pair.privateKey, payload),
        ]);
        const verifier = await env.verifier([
          { name: 'k', key: { pem: pem(pair.publicKey) }, tlog: 'optional' },
        ]);
        const result = await verifyDigest(verifier, env, repo, image.digest, requires(['k']));
        assert.equal(result.signatures[0]?.authority, 'k');
      });
    }

    test('P-384 signature over SHA-384 (cosign LoadDefaultVerifier) also verifies', async () => {
      const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
      const signature = signBytes(keys.p384.privateKey, payload, 'sha384').toString('base64');
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        { blob: payload, annotations: { 'dev.cosignproject.cosign/signature': signature } },
      ]);
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(keys.p384.publicKey) }, tlog: 'optional' },
      ]);
      assert.equal(
        (await verifyDigest(verifier, env, repo, image.digest, requires(['k']))).signatures.length,
        1
      );
    });

    test('payload naming another digest: UNTRUSTED', async () => {
      const other = await pushImage(env.registry, repo, 'v2', 'oci-manifest');
      const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, other.digest);
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        keySigLayer(keys.p256.privateKey, payload),
      ]);
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(keys.p256.publicKey) }, tlog: 'optional' },
      ]);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNTRUSTED', `signs ${other.digest}`)
      );
    });

    test('tampered payload blob (signature kept, payload edited): UNTRUSTED', async () => {
      const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
      const layer = keySigLayer(keys.p256.privateKey, payload);
      const tampered = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest, { note: 'edited' });
      await pushAttachment(env.registry, repo, image.digest, 'sig', [{ ...layer, blob: tampered }]);
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(keys.p256.publicKey) }, tlog: 'optional' },
      ]);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNTRUSTED', 'signature')
      );
    });

    test('unknown critical member and wrong type are rejected even when validly signed', async () => {
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(keys.p256.publicKey) }, tlog: 'optional' },
      ]);
      const extra = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest, null, {
        surprise: true,
      });
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        keySigLayer(keys.p256.privateKey, extra),
      ]);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNTRUSTED', 'unknown critical member')
      );
      const atomic = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest, null, {
        type: 'atomic container signature',
      });
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        keySigLayer(keys.p256.privateKey, atomic),
      ]);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNTRUSTED', 'simple-signing type')
      );
    });

    test('threshold: 2 of 2 distinct authorities', async () => {
      const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
      const verifier = await env.verifier([
        { name: 'a', key: { pem: pem(keys.p256.publicKey) }, tlog: 'optional' },
        { name: 'b', key: { pem: pem(keys.ed25519.publicKey) }, tlog: 'optional' },
      ]);
      // two signatures by the same key do not make two authorities
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        keySigLayer(keys.p256.privateKey, payload),
        keySigLayer(keys.p256.privateKey, payload),
      ]);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['a', 'b'], 2)),
        code('UNTRUSTED', '1 of 2')
      );
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        keySigLayer(keys.p256.privateKey, payload),
        keySigLayer(keys.ed25519.privateKey, payload),
      ]);
      const result = await verifyDigest(verifier, env, repo, image.digest, requires(['a', 'b'], 2));
      assert.deepEqual(result.signatures.map((s) => s.authority).sort(), ['a', 'b']);
    });

    test('tlog: required without a transparency-log entry: UNTRUSTED', async () => {
      const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
      await pushAttachment(env.registry, repo, image.digest, 'sig', [
        keySigLayer(keys.p256.privateKey, payload),
      ]);
      const root = await env.write(
        'empty-root.json',
        JSON.stringify({
          mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
          tlogs: [],
          certificateAuthorities: [],
          ctlogs: [],
          timestampAuthorities: [],
        })
      );
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(keys.p256.publicKey) }, tlog: 'required', trustedRoot: root },
      ]);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNTRUSTED', 'tlog')
      );
    });
  });

  describe('cosign v3 layout: key-signed DSSE bundles as referrers', () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });

    test('signature predicate counts as a signature; another predicate as an attestation', async () => {
      const repo = 'bundles/keyed';
      const image = await pushImage(env.registry, repo, 'v1', 'oci-index');
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(pair.publicKey) }, tlog: 'optional' },
      ]);
      const subject = { mediaType: image.mediaType, digest: image.digest, size: image.size };
      // only a provenance attestation: no signature yet
      const provenance = await keySignedStatementBundle(
        pair.privateKey,
        inTotoStatement(image.digest, SLSA_PROVENANCE_V1, { builder: { id: 'ci' } })
      );
      await pushBundleReferrer(env.registry, repo, subject, provenance, SLSA_PROVENANCE_V1);
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNSIGNED')
      );

      const signature = await keySignedStatementBundle(
        pair.privateKey,
        inTotoStatement(image.digest, COSIGN_SIGN_PREDICATE)
      );
      await pushBundleReferrer(env.registry, repo, subject, signature);
      const result = await verifyDigest(verifier, env, repo, image.digest, requiresProvenance(['k']));
      assert.deepEqual(result, {
        signatures: [{ authority: 'k', kind: 'key' }],
        attestations: [{ predicateType: SLSA_PROVENANCE_V1, authority: 'k' }],
      });
      await assert.rejects(
        verifyDigest(
          verifier,
          env,
          repo,
          image.digest,
          requires(['k'], 1, [{ predicateType: 'https://spdx.dev/Document', authorities: ['k'] }])
        ),
        code('ATTESTATION_MISSING', 'https://spdx.dev/Document')
      );
    });

    test('a statement about another digest attached to this image: UNTRUSTED', async () => {
      const repo = 'bundles/otherdigest';
      const image = await pushImage(env.registry, repo, 'v1', 'oci-manifest');
      const other = await pushImage(env.registry, repo, 'v2', 'oci-manifest');
      const verifier = await env.verifier([
        { name: 'k', key: { pem: pem(pair.publicKey) }, tlog: 'optional' },
      ]);
      const bundle = await keySignedStatementBundle(
        pair.privateKey,
        inTotoStatement(other.digest, COSIGN_SIGN_PREDICATE)
      );
      await pushBundleReferrer(
        env.registry,
        repo,
        { mediaType: image.mediaType, digest: image.digest, size: image.size },
        bundle
      );
      await assert.rejects(
        verifyDigest(verifier, env, repo, image.digest, requires(['k'])),
        code('UNTRUSTED', 'no subject')
      );
    });
  });
});
