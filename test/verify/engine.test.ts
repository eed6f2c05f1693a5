/**
 * Verifier behaviour that needs no registry: claims parsing, discovery bounds and error handling, transient
 * errors, key sources and the fingerprint. The ArtifactSource here is an in-memory fake (a registry's failure
 * modes on demand); the real registry paths are in key/keyless/cosign tests.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { AuthorityConfig } from '../../provider/src/config/index.ts';
import { SigpinError } from '../../provider/src/errors.ts';
import { checkInTotoStatement, checkSimpleSigningPayload } from '../../provider/src/verify/claims.ts';
import {
  createImageVerifier,
  type ArtifactSource,
  type ReferrerDescriptor,
} from '../../provider/src/verify/index.ts';
import { verifyPrehashed } from '../../provider/src/verify/prehash.ts';
import { keySigLayer, simpleSigningPayload } from '../support/signing.ts';
import { code, requires } from './env.ts';

const logger = pino({ level: 'silent' });
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const ctx = () => ({ signal: AbortSignal.timeout(5000) });

/** An in-memory fake registry: manifests by reference, blobs by digest, optional failure injection. */
class FakeSource implements ArtifactSource {
  manifests = new Map<string, Buffer>();
  blobs = new Map<string, Buffer>();
  referrers: ReferrerDescriptor[] = [];
  fail?: SigpinError;
  blobRequests = 0;

  async getManifest(_r: string, _repo: string, reference: string) {
    if (this.fail) throw this.fail;
    const bytes = this.manifests.get(reference);
    if (!bytes) throw new SigpinError('NOT_FOUND', `${reference}: not found`);
    return { bytes, mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(bytes) };
  }
  async getBlob(_r: string, _repo: string, digest: string, _c: unknown, maxBytes: number) {
    this.blobRequests++;
    const bytes = this.blobs.get(digest);
    if (!bytes) throw new SigpinError('NOT_FOUND', `${digest}: not found`);
    assert.ok(bytes.length <= maxBytes);
    return bytes;
  }
  async listReferrers() {
    if (this.fail) throw this.fail;
    return this.referrers;
  }
  /** A `.sig` manifest with these layers; layer blobs stored unless `store` is false. */
  sig(
    layers: Array<{ blob: Buffer; annotations: Record<string, string>; digest?: string; size?: number }>,
    store = true
  ) {
    const descriptors = layers.map((l) => {
      if (store) this.blobs.set(sha(l.blob), l.blob);
      return {
        mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
        digest: l.digest ?? sha(l.blob),
        size: l.size ?? l.blob.length,
        annotations: l.annotations,
      };
    });
    this.manifests.set(
      `${DIGEST.replace(':', '-')}.sig`,
      Buffer.from(JSON.stringify({ schemaVersion: 2, layers: descriptors }))
    );
  }
}

describe('verification engine (in-memory fake source)', () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const authority: AuthorityConfig = { name: 'k', key: { pem }, tlog: 'optional' };
  const payload = simpleSigningPayload('registry.example/app', DIGEST);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sigpin-engine-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const verifierFor = (source: ArtifactSource, authorities = [authority]) =>
    createImageVerifier({ authorities, baseDir: dir, source, logger });
  const verify = (v: Awaited<ReturnType<typeof verifierFor>>, need = requires(['k'])) =>
    v.verify({
      registry: 'registry.example',
      repository: 'app',
      digest: DIGEST,
      requirements: need,
      ctx: ctx(),
    });

  test('a valid signature verifies; transient registry errors propagate unchanged (never UNSIGNED)', async () => {
    const source = new FakeSource();
    source.sig([keySigLayer(pair.privateKey, payload)]);
    const v = await verifierFor(source);
    assert.equal((await verify(v)).signatures.length, 1);
    source.fail = new SigpinError('REGISTRY_UNAVAILABLE', 'registry answered 503');
    await assert.rejects(verify(v), code('REGISTRY_UNAVAILABLE'));
    source.fail = new SigpinError('DEADLINE_EXCEEDED', 'deadline exceeded');
    await assert.rejects(verify(v), code('DEADLINE_EXCEEDED'));
  });

  test('malformed annotations, missing and oversized blobs are "found, not valid": UNTRUSTED', async () => {
    const good = keySigLayer(pair.privateKey, payload);
    const cases = [
      [{ ...good, annotations: { ...good.annotations, 'dev.sigstore.cosign/bundle': '{not json' } }],
      [{ ...good, annotations: {} }],
      [{ ...good, annotations: { 'dev.cosignproject.cosign/signature': '!!!' } }],
    ];
    for (const layers of cases) {
      const source = new FakeSource();
      source.sig(layers);
      await assert.rejects(verify(await verifierFor(source)), code('UNTRUSTED'));
    }
    const missing = new FakeSource();
    missing.sig([good], false);
    await assert.rejects(verify(await verifierFor(missing)), code('UNTRUSTED', 'missing'));
    const oversized = new FakeSource();
    oversized.sig([{ ...good, size: 10 * 1024 * 1024 }]);
    await assert.rejects(verify(await verifierFor(oversized)), code('UNTRUSTED', 'limit'));
    assert.equal(oversized.blobRequests, 0);
    const lying = new FakeSource();
    lying.sig([{ ...good, digest: sha(Buffer.from('other')) }]);
    lying.blobs.set(sha(Buffer.from('other')), good.blob); // a registry serving other bytes under that digest
    await assert.rejects(verify(await verifierFor(lying)), code('UNTRUSTED', 'tampered'));
  });

  test('signature count is bounded', async () => {
    const source = new FakeSource();
    source.sig(Array.from({ length: 100 }, () => keySigLayer(pair.privateKey, payload)));
    assert.equal((await verify(await verifierFor(source))).signatures.length, 1);
    assert.equal(source.blobRequests, 32);
  });

  test('non-bundle referrers are ignored; a bundle referrer with another subject is not counted', async () => {
    const source = new FakeSource();
    source.referrers = [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(Buffer.from('sbom')),
        size: 4,
        artifactType: 'application/spdx+json',
      },
    ];
    await assert.rejects(verify(await verifierFor(source)), code('UNSIGNED'));
    const bundleLayer = Buffer.from('{}');
    source.blobs.set(sha(bundleLayer), bundleLayer);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        layers: [
          { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: sha(bundleLayer), size: 2 },
        ],
        subject: { digest: `sha256:${'cd'.repeat(32)}` },
      })
    );
    source.manifests.set(sha(manifest), manifest);
    source.referrers.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha(manifest),
      size: manifest.length,
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    });
    await assert.rejects(verify(await verifierFor(source)), code('UNTRUSTED', 'another subject'));
  });

  test('keys from a file and from a Secret (fake Secret reader); a Secret key without Kubernetes access is a configuration error', async () => {
    const file = join(dir, 'cosign.pub');
    await writeFile(file, pem);
    const source = new FakeSource();
    source.sig([keySigLayer(pair.privateKey, payload)]);
    const fromFile = await createImageVerifier({
      authorities: [{ name: 'k', key: { path: 'cosign.pub' }, tlog: 'optional' }],
      baseDir: dir,
      source,
      logger,
    });
    assert.equal((await verify(fromFile)).signatures.length, 1);
    const asked: string[] = [];
    const secretKeyAuthority = {
      name: 'k',
      key: { secretRef: { namespace: 'sigpin', name: 'keys', key: 'cosign.pub' } },
      tlog: 'optional' as const,
    };
    const fromSecret = await createImageVerifier({
      authorities: [secretKeyAuthority],
      baseDir: dir,
      source,
      logger,
      readSecret: async (ns, name, key) => {
        asked.push(`${ns}/${name}/${key}`);
        return Buffer.from(pem);
      },
    });
    assert.equal((await verify(fromSecret)).signatures.length, 1);
    assert.deepEqual(asked, ['sigpin/keys/cosign.pub']);
    assert.equal(
      fromSecret.fingerprint(), // the same key from another source is the same trust material
      fromFile.fingerprint()
    );
    await assert.rejects(
      createImageVerifier({
        authorities: [secretKeyAuthority],
        baseDir: dir,
        source,
        logger,
      }),
      /Kubernetes/
    );
    await assert.rejects(
      createImageVerifier({
        authorities: [
          {
            name: 'k',
            key: {
              pem: generateKeyPairSync('ec', { namedCurve: 'secp256k1' })
                .publicKey.export({ type: 'spki', format: 'pem' })
                .toString(),
            },
            tlog: 'optional',
          },
        ],
        baseDir: dir,
        source,
        logger,
      }),
      /unsupported EC curve/
    );
  });

  test('the fingerprint changes with keys, tlog mode and identities, and only then', async () => {
    const source = new FakeSource();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const fp = async (a: Parameters<typeof verifierFor>[1]) => (await verifierFor(source, a)).fingerprint();
    const base = await fp([authority]);
    assert.equal(await fp([{ ...authority }]), base);
    assert.notEqual(await fp([{ ...authority, key: { pem: other } }]), base);
    assert.notEqual(await fp([{ ...authority, name: 'renamed' }]), base);
    const root = join(dir, 'root.json');
    await writeFile(
      root,
      JSON.stringify({
        mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
        tlogs: [],
        certificateAuthorities: [],
        ctlogs: [],
        timestampAuthorities: [],
      })
    );
    assert.notEqual(await fp([{ ...authority, tlog: 'required', trustedRoot: 'root.json' }]), base);
  });

  test('unknown authority names and bad digests fail before any I/O', async () => {
    const source = new FakeSource();
    const v = await verifierFor(source);
    await assert.rejects(verify(v, requires(['nope'])), code('INTERNAL'));
    await assert.rejects(
      v.verify({
        registry: 'r',
        repository: 'app',
        digest: 'sha256:xyz',
        requirements: requires(['k']),
        ctx: ctx(),
      }),
      code('INVALID_REFERENCE')
    );
  });
});

describe('claims', () => {
  test('simple signing: strict critical members, digest binding, optional may be null or object', () => {
    assert.deepEqual(checkSimpleSigningPayload(simpleSigningPayload('x', DIGEST), DIGEST), {
      kind: 'signature',
    });
    assert.deepEqual(
      checkSimpleSigningPayload(
        simpleSigningPayload('x:tag', DIGEST, { creator: 'containers/image' }),
        DIGEST
      ),
      { kind: 'signature' }
    );
    assert.throws(
      () => checkSimpleSigningPayload(simpleSigningPayload('x', `sha256:${'00'.repeat(32)}`), DIGEST),
      /signs/
    );
    assert.throws(
      () => checkSimpleSigningPayload(Buffer.from('{"critical":{},"extra":1}'), DIGEST),
      /unknown member/
    );
    assert.throws(() => checkSimpleSigningPayload(Buffer.from('[]'), DIGEST), /not an object/);
    assert.throws(
      () => checkSimpleSigningPayload(simpleSigningPayload('x', DIGEST, 'text' as never), DIGEST),
      /optional/
    );
  });

  test('in-toto: payload type, statement type, subject digest; predicate decides signature vs attestation', () => {
    const hex = DIGEST.slice(7);
    const statement = (predicateType: string, digest = hex) =>
      Buffer.from(
        JSON.stringify({
          _type: 'https://in-toto.io/Statement/v1',
          subject: [{ digest: { sha256: digest } }],
          predicateType,
          predicate: {},
        })
      );
    assert.deepEqual(
      checkInTotoStatement(
        'application/vnd.in-toto+json',
        statement('https://sigstore.dev/cosign/sign/v1'),
        DIGEST
      ),
      { kind: 'signature' }
    );
    assert.deepEqual(
      checkInTotoStatement(
        'application/vnd.in-toto+json',
        statement('https://slsa.dev/provenance/v1'),
        DIGEST
      ),
      {
        kind: 'attestation',
        predicateType: 'https://slsa.dev/provenance/v1',
      }
    );
    assert.throws(() => checkInTotoStatement('text/plain', statement('x'), DIGEST), /not in-toto/);
    assert.throws(
      () => checkInTotoStatement('application/vnd.in-toto+json', statement('x', '00'.repeat(32)), DIGEST),
      /no subject/
    );
  });
});

describe('pre-hashed signature checks', () => {
  for (const [name, pair, hash] of [
    ['P-256', generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'sha256'],
    ['P-384', generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'sha384'],
    ['RSA', generateKeyPairSync('rsa', { modulusLength: 2048 }), 'sha256'],
  ] as const) {
    test(`${name}: accepts the signer's signature, rejects another message and a flipped bit`, async () => {
      const { sign } = await import('node:crypto');
      const data = Buffer.from(`message for ${name}`);
      const sig = sign(hash, data, pair.privateKey);
      const digest = createHash(hash).update(data).digest();
      assert.equal(verifyPrehashed(pair.publicKey, digest, hash, sig), true);
      assert.equal(
        verifyPrehashed(pair.publicKey, createHash(hash).update('other').digest(), hash, sig),
        false
      );
      const flipped = Buffer.from(sig);
      flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
      assert.equal(verifyPrehashed(pair.publicKey, digest, hash, flipped), false);
    });
  }
});
