/**
 * Mutation fuzzing of the signature verifier (provider/src/verify): genuine key-based and keyless signatures
 * (cosign legacy `.sig` layers, and a cosign v3 DSSE bundle attached as a referrer) are mutated in their payload,
 * annotations, layer descriptors, manifest and bundle JSON, then verified. Every input must end in a trusted
 * verdict only when the signed bytes are untouched, and otherwise in a clear UNSIGNED/UNTRUSTED SigpinError:
 * never another exception, never INTERNAL, never "trusted" for something that was changed.
 *
 * The artifacts are served by an in-memory artifact source (a fake registry), so thousands of cases run in
 * seconds; the registry client's own digest checks are tested against the real registry elsewhere. This source
 * deliberately does NOT check digests, so tampered blobs reach the verifier.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { SigpinError } from '../../provider/src/errors.ts';
import { createImageVerifier } from '../../provider/src/verify/index.ts';
import type { ArtifactSource, ImageVerifier, ReferrerDescriptor } from '../../provider/src/verify/index.ts';
import {
  ANNOTATION_BUNDLE,
  ANNOTATION_CERTIFICATE,
  ANNOTATION_SIGNATURE,
  KEYLESS_ISSUER,
  KEYLESS_SUBJECT,
  KeylessSigner,
  KeySigner,
  SIMPLE_SIGNING_MEDIA_TYPE,
  signatureTag,
  simpleSigningPayload,
  type SignatureLayer,
} from '../../bench/signing.ts';

const REGISTRY = 'registry.fuzz.invalid';
const REPOSITORY = 'fuzz/app';
const IMAGE_DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER_DIGEST = `sha256:${'cd'.repeat(32)}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const DEFINITIVE_VERDICT_CODES = new Set(['UNSIGNED', 'UNTRUSTED']);

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const notFound = (what: string): SigpinError => new SigpinError('NOT_FOUND', `${what}: not found`);

/** An in-memory registry for one repository: manifests by tag or digest, blobs by digest, a referrers list. */
class MemorySource implements ArtifactSource {
  readonly manifests = new Map<string, Buffer>();
  readonly blobs = new Map<string, Buffer>();
  referrers: ReferrerDescriptor[] = [];

  getManifest(_registry: string, _repository: string, reference: string) {
    const bytes = this.manifests.get(reference);
    if (!bytes) return Promise.reject(notFound(reference));
    return Promise.resolve({ bytes, mediaType: OCI_MANIFEST, digest: sha256(bytes) });
  }

  getBlob(_registry: string, _repository: string, digest: string, _ctx: unknown, maxBytes: number) {
    const bytes = this.blobs.get(digest);
    if (!bytes) return Promise.reject(notFound(digest));
    if (bytes.length > maxBytes)
      return Promise.reject(new SigpinError('REGISTRY_UNAVAILABLE', 'blob too large'));
    return Promise.resolve(bytes);
  }

  listReferrers() {
    return Promise.resolve(this.referrers);
  }
}

// --------------------------------------------------------------------------------------------------------------
// Generic JSON mutations (for manifests, bundles and JSON annotations).

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonPath = Array<string | number>;

function pathsOf(value: Json, prefix: JsonPath = []): JsonPath[] {
  const out: JsonPath[] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  return out;
}

interface JsonMutation {
  pick: number;
  op: 'delete' | 'replace' | 'flip';
  replacement: Json;
  at: number;
}

const jsonMutation: fc.Arbitrary<JsonMutation> = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom('delete' as const, 'replace' as const, 'flip' as const),
  replacement: fc.oneof(
    fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
    fc.constantFrom<Json>('', 0, -1, null, [], {}, 'sha256:' + '0'.repeat(64), 'A'.repeat(300))
  ),
  at: fc.nat(),
});

/** Applies one mutation to a deep copy; the root itself can be replaced too. */
function mutateJson(value: Json, m: JsonMutation): Json {
  const copy = structuredClone(value);
  const paths = pathsOf(copy);
  const target = paths[m.pick % paths.length] as JsonPath;
  if (target.length === 0) return m.op === 'replace' ? m.replacement : copy;
  let parent = copy as Record<string | number, Json>;
  for (const k of target.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const key = target[target.length - 1] as string | number;
  const current = parent[key];
  if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else if (m.op === 'flip' && typeof current === 'string' && current.length > 0) {
    const i = m.at % current.length;
    const c = current.charCodeAt(i);
    parent[key] = current.slice(0, i) + String.fromCharCode(c === 65 ? 66 : 65) + current.slice(i + 1);
  } else if (m.op === 'flip' && typeof current === 'number') {
    parent[key] = current + 1;
  } else {
    parent[key] = m.replacement;
  }
  return copy;
}

// --------------------------------------------------------------------------------------------------------------
// Legacy `.sig` attachments and their mutations.

type ByteMutation =
  | { kind: 'none' }
  | { kind: 'flip'; at: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; text: string }
  | { kind: 'json'; m: JsonMutation }
  | { kind: 'other-digest' };

// Weighted so that a fair share of cases leaves the signed bytes alone and mutates only the surroundings.
const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'none' as const }), weight: 5 },
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), text: fc.string({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant('json' as const), m: jsonMutation }),
  fc.constant({ kind: 'other-digest' as const })
);

function mutatePayload(payload: Buffer, m: ByteMutation): Buffer {
  switch (m.kind) {
    case 'none':
      return payload;
    case 'flip': {
      const out = Buffer.from(payload);
      const i = m.at % out.length;
      out[i] = (out[i] as number) ^ 0x01;
      return out;
    }
    case 'truncate':
      return payload.subarray(0, m.at % payload.length);
    case 'append':
      return Buffer.concat([payload, Buffer.from(m.text)]);
    case 'json':
      return Buffer.from(JSON.stringify(mutateJson(JSON.parse(payload.toString()) as Json, m.m)));
    case 'other-digest':
      return Buffer.from(payload.toString().replace(IMAGE_DIGEST, OTHER_DIGEST));
  }
}

interface AnnotationMutation {
  name: string;
  op: 'delete' | 'replace' | 'flip' | 'json';
  value: string;
  at: number;
  m: JsonMutation;
}

const annotationMutation: fc.Arbitrary<AnnotationMutation> = fc.record({
  name: fc.constantFrom(
    ANNOTATION_SIGNATURE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_BUNDLE,
    'dev.sigstore.cosign/chain',
    'dev.sigstore.cosign/rfc3161timestamp'
  ),
  op: fc.constantFrom('delete' as const, 'replace' as const, 'flip' as const, 'json' as const),
  value: fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.base64String({ maxLength: 120 }),
    fc.constant('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')
  ),
  at: fc.nat(),
  m: jsonMutation,
});

function mutateAnnotations(
  annotations: Record<string, string>,
  ms: AnnotationMutation[]
): Record<string, string> {
  const out = { ...annotations };
  for (const m of ms) {
    const current = out[m.name];
    if (m.op === 'delete') delete out[m.name];
    else if (m.op === 'replace') out[m.name] = m.value;
    else if (m.op === 'flip' && current) {
      const i = m.at % current.length;
      out[m.name] = current.slice(0, i) + (current[i] === 'A' ? 'B' : 'A') + current.slice(i + 1);
    } else if (m.op === 'json' && current) {
      try {
        out[m.name] = JSON.stringify(mutateJson(JSON.parse(current) as Json, m.m));
      } catch {
        out[m.name] = m.value;
      }
    }
  }
  return out;
}

interface LayerMutation {
  mediaType?: string;
  /** Store the mutated payload under the ORIGINAL payload's digest (a registry serving tampered bytes). */
  tamperInPlace: boolean;
  size?: number;
  duplicate: boolean;
}

const layerMutation: fc.Arbitrary<LayerMutation> = fc.record(
  {
    mediaType: fc.constantFrom(
      'application/octet-stream',
      'application/vnd.dev.cosign.simplesigning.v1+json; x=1',
      ''
    ),
    tamperInPlace: fc.boolean(),
    size: fc.oneof(fc.constant(-1), fc.nat(), fc.constant(10 * 1024 * 1024)),
    duplicate: fc.boolean(),
  },
  { requiredKeys: ['tamperInPlace', 'duplicate'] }
);

interface SigCase {
  payload: ByteMutation;
  annotations: AnnotationMutation[];
  layer: LayerMutation;
  manifest?: JsonMutation;
}

const sigCase: fc.Arbitrary<SigCase> = fc.record(
  {
    payload: byteMutation,
    annotations: fc.array(annotationMutation, { maxLength: 2 }),
    layer: fc.oneof(
      { arbitrary: fc.constant<LayerMutation>({ tamperInPlace: false, duplicate: false }), weight: 2 },
      { arbitrary: layerMutation, weight: 1 }
    ),
    manifest: jsonMutation,
  },
  { requiredKeys: ['payload', 'annotations', 'layer'] }
);

/** Publishes the (mutated) `.sig` attachment of IMAGE_DIGEST; returns what was signed and what was served. */
function publishSig(source: MemorySource, genuine: SignatureLayer, c: SigCase) {
  const payload = mutatePayload(genuine.payload, c.payload);
  const annotations = mutateAnnotations(genuine.annotations, c.annotations);
  const stored = c.layer.tamperInPlace ? sha256(genuine.payload) : sha256(payload);
  source.blobs.set(stored, payload);
  const layer = {
    mediaType: c.layer.mediaType ?? SIMPLE_SIGNING_MEDIA_TYPE,
    digest: stored,
    size: c.layer.size ?? payload.length,
    annotations,
  };
  let manifest: Json = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(Buffer.from('{}')),
      size: 2,
    },
    layers: c.layer.duplicate ? [layer, layer] : [layer],
  };
  if (c.manifest) manifest = mutateJson(manifest, c.manifest);
  source.manifests.set(signatureTag(IMAGE_DIGEST), Buffer.from(JSON.stringify(manifest)));
  return { payload, annotations };
}

/** What may be trusted: only an attachment whose signed bytes reach the verifier unchanged. */
function signedBytesUnchanged(
  genuine: SignatureLayer,
  served: { payload: Buffer; annotations: Record<string, string> },
  c: SigCase,
  keyless: boolean
): boolean {
  if (!served.payload.equals(genuine.payload)) return false;
  if (served.annotations[ANNOTATION_SIGNATURE] !== genuine.annotations[ANNOTATION_SIGNATURE]) return false;
  if (keyless && served.annotations[ANNOTATION_CERTIFICATE] !== genuine.annotations[ANNOTATION_CERTIFICATE])
    return false;
  void c;
  return true;
}

function assertRefused(err: unknown, context: string): void {
  assert.ok(err instanceof SigpinError, `${context}: a non-SigpinError escaped: ${String(err)}`);
  assert.ok(
    DEFINITIVE_VERDICT_CODES.has(err.code),
    `${context}: expected UNSIGNED or UNTRUSTED, got ${err.code}: ${err.message}`
  );
  assert.ok(err.message.length > 0);
}

describe('fuzz: signature verifier with mutated signatures (in-memory artifact source, fake registry)', () => {
  let dir: string;
  let keySigner: KeySigner;
  let keyless: KeylessSigner;
  let keyGenuine: SignatureLayer;
  let keylessGenuine: SignatureLayer;
  let dsseBundle: Json;
  let verifierFor: (source: MemorySource) => Promise<ImageVerifier>;
  const opened: ImageVerifier[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sigpin-fuzz-verify-'));
    keySigner = new KeySigner();
    keyless = await KeylessSigner.start();
    await writeFile(path.join(dir, 'trusted_root.json'), JSON.stringify(keyless.trustedRoot));
    const payload = simpleSigningPayload(`${REGISTRY}/${REPOSITORY}`, IMAGE_DIGEST);
    keyGenuine = keySigner.sign(payload);
    keylessGenuine = await keyless.sign(payload);
    dsseBundle = (await keyless.signStatement({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `${REGISTRY}/${REPOSITORY}`, digest: { sha256: IMAGE_DIGEST.slice(7) } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    })) as Json;
    verifierFor = async (source) => {
      const v = await createImageVerifier({
        authorities: [
          { name: 'release', key: { pem: keySigner.publicKeyPem }, tlog: 'optional' },
          {
            name: 'ci',
            keyless: {
              trustedRoot: 'trusted_root.json',
              identities: [{ issuer: KEYLESS_ISSUER, subject: KEYLESS_SUBJECT, extensions: {} }],
            },
            tlog: 'optional',
          },
        ],
        baseDir: dir,
        source,
        logger: pino({ level: 'silent' }),
      });
      opened.push(v);
      return v;
    };
  });

  after(async () => {
    for (const v of opened) await v.close();
    await keyless?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const verify = (v: ImageVerifier, authority: 'release' | 'ci') =>
    v.verify({
      registry: REGISTRY,
      repository: REPOSITORY,
      digest: IMAGE_DIGEST,
      requirements: { authorities: [authority], threshold: 1, attestations: [] },
      ctx: { signal: AbortSignal.timeout(10_000) },
    });

  it('the unmutated signatures verify (so the mutations below are meaningful)', async () => {
    for (const [genuine, authority] of [
      [keyGenuine, 'release'],
      [keylessGenuine, 'ci'],
    ] as const) {
      const source = new MemorySource();
      publishSig(source, genuine, {
        payload: { kind: 'none' },
        annotations: [],
        layer: { tamperInPlace: false, duplicate: false },
      });
      const result = await verify(await verifierFor(source), authority);
      assert.equal(result.signatures[0]?.authority, authority);
    }
    const source = new MemorySource();
    publishReferrer(source, dsseBundle, undefined);
    const result = await verify(await verifierFor(source), 'ci');
    assert.equal(result.signatures[0]?.authority, 'ci');
  });

  for (const authority of ['release', 'ci'] as const) {
    it(`mutated legacy .sig attachments (${authority === 'release' ? 'key' : 'keyless'}): trusted only when the signed bytes are untouched`, async (t) => {
      const source = new MemorySource();
      const verifier = await verifierFor(source);
      const genuine = authority === 'release' ? keyGenuine : keylessGenuine;
      const seen = { trusted: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(sigCase, async (c) => {
          source.manifests.clear();
          source.blobs.clear();
          const served = publishSig(source, genuine, c);
          const context = JSON.stringify(c).slice(0, 400);
          let trusted = false;
          try {
            await verify(verifier, authority);
            trusted = true;
          } catch (err) {
            assertRefused(err, context);
          }
          if (trusted)
            assert.ok(
              signedBytesUnchanged(genuine, served, c, authority === 'ci'),
              `trusted after mutation: ${context}`
            );
          seen[trusted ? 'trusted' : 'refused']++;
        }),
        { numRuns: authority === 'release' ? 400 : 150 }
      );
      // Neutral mutations (an unused annotation, the config descriptor) stay trusted: the property is not vacuous.
      t.diagnostic(`trusted ${seen.trusted}, refused ${seen.refused}`);
      assert.ok(seen.trusted > 0 && seen.refused > 0);
    });
  }

  it('mutated sigstore bundles attached as referrers (keyless DSSE): refused unless unchanged', async () => {
    const source = new MemorySource();
    const verifier = await verifierFor(source);
    await fc.assert(
      fc.asyncProperty(
        fc.array(jsonMutation, { minLength: 1, maxLength: 3 }),
        fc.option(jsonMutation, { nil: undefined }),
        async (ms, manifestMutation) => {
          source.manifests.clear();
          source.blobs.clear();
          const bundle = ms.reduce((b, m) => mutateJson(b, m), dsseBundle);
          publishReferrer(source, bundle, manifestMutation);
          let trusted = false;
          try {
            await verify(verifier, 'ci');
            trusted = true;
          } catch (err) {
            assertRefused(err, JSON.stringify(ms).slice(0, 400));
          }
          if (trusted) {
            // Only mutations outside what is signed and checked can leave it trusted; the envelope must be intact.
            const b = bundle as { dsseEnvelope?: unknown; verificationMaterial?: { certificate?: unknown } };
            const g = dsseBundle as {
              dsseEnvelope?: unknown;
              verificationMaterial?: { certificate?: unknown };
            };
            assert.deepEqual(b.dsseEnvelope, g.dsseEnvelope, 'trusted with a changed envelope');
            assert.deepEqual(b.verificationMaterial?.certificate, g.verificationMaterial?.certificate);
          }
        }
      ),
      { numRuns: 150 }
    );
  });

  it('garbage everywhere: random manifests and blobs are refused cleanly', async () => {
    const source = new MemorySource();
    const verifier = await verifierFor(source);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.jsonValue({ maxDepth: 3 }),
        async (bytes, json) => {
          source.manifests.clear();
          source.blobs.clear();
          source.manifests.set(signatureTag(IMAGE_DIGEST), Buffer.from(bytes));
          source.blobs.set(sha256(Buffer.from(JSON.stringify(json))), Buffer.from(JSON.stringify(json)));
          source.referrers = [
            {
              mediaType: OCI_MANIFEST,
              digest: sha256(Buffer.from(bytes)),
              size: bytes.length,
              artifactType: BUNDLE_V03,
            },
          ];
          source.manifests.set(sha256(Buffer.from(bytes)), Buffer.from(JSON.stringify(json)));
          for (const authority of ['release', 'ci'] as const) {
            await assert.rejects(verify(verifier, authority), (err) => {
              assertRefused(err, `bytes ${Buffer.from(bytes).toString('hex').slice(0, 80)}`);
              return true;
            });
          }
        }
      ),
      { numRuns: 200 }
    );
  });
});

/** Attaches `bundle` as a cosign v3 referrer (artifact manifest with `subject`, one bundle layer). */
function publishReferrer(
  source: MemorySource,
  bundle: Json,
  manifestMutation: JsonMutation | undefined
): void {
  const bytes = Buffer.from(JSON.stringify(bundle));
  source.blobs.set(sha256(bytes), bytes);
  let manifest: Json = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_V03,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(Buffer.from('{}')), size: 2 },
    layers: [{ mediaType: BUNDLE_V03, digest: sha256(bytes), size: bytes.length }],
    subject: { mediaType: OCI_MANIFEST, digest: IMAGE_DIGEST, size: 100 },
  };
  if (manifestMutation) manifest = mutateJson(manifest, manifestMutation);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(manifestBytes);
  source.manifests.set(digest, manifestBytes);
  source.referrers = [
    { mediaType: OCI_MANIFEST, digest, size: manifestBytes.length, artifactType: BUNDLE_V03 },
  ];
}
