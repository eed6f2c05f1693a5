/**
 * Keyless verification against a real docker-registry: signatures made by @sigstore/sign against @sigstore/mock
 * Fulcio/Rekor served on loopback (not nock), attached the legacy way (cosign `.sig` layer with certificate and
 * Rekor bundle annotations) and the cosign v3 way (DSSE bundle referrer + fallback tag index).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { SerializedBundle } from '@sigstore/bundle';
import { after, before, describe, test } from 'node:test';
import type { AuthorityConfig } from '../../provider/src/config/index.ts';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, type ImageKind, type PushedImage } from '../support/images.ts';
import {
  legacyAnnotationsFromBundle,
  legacyAttestationLayer,
  MOCK_ISSUER,
  MOCK_SUBJECT,
  startKeylessMock,
  type KeylessMock,
} from '../support/keyless.ts';
import {
  COSIGN_SIGN_PREDICATE,
  inTotoStatement,
  keySignedMessageBundle,
  pushAttachment,
  pushBundleReferrer,
  simpleSigningPayload,
  SLSA_PROVENANCE_V1,
} from '../support/signing.ts';
import {
  code,
  keylessAuthority,
  requires,
  requiresProvenance,
  startVerifyEnv,
  verifyDigest,
  type VerifyEnv,
} from './env.ts';

const needs = requireBinary('docker-registry');
type Identity = NonNullable<AuthorityConfig['keyless']>['identities'][number];
const exact = (more: Partial<Identity> = {}): Identity => ({
  issuer: MOCK_ISSUER,
  subject: MOCK_SUBJECT,
  extensions: {},
  ...more,
});

describe('keyless verification (mock Fulcio/Rekor on loopback, real registry)', needs, () => {
  let env: VerifyEnv;
  let mock: KeylessMock;
  let root: string;

  before(async () => {
    env = await startVerifyEnv();
    mock = await startKeylessMock();
    root = await env.write('trusted_root.json', JSON.stringify(mock.trustedRoot));
  });
  after(async () => {
    await mock.stop();
    await env.stop();
  });

  /** Writes `payload` and its signature `bundle` as the `.sig` of `digest` (cosign's legacy annotations). */
  async function attachAsSig(
    repo: string,
    digest: string,
    payload: Buffer,
    bundle: SerializedBundle
  ): Promise<void> {
    await pushAttachment(env.registry, repo, digest, 'sig', [
      { blob: payload, annotations: legacyAnnotationsFromBundle(bundle) },
    ]);
  }

  /** An image whose `.sig` holds one keyless signature made with these options. */
  async function legacySigned(
    repo: string,
    options: Parameters<KeylessMock['signMessage']>[1] = {}
  ): Promise<PushedImage> {
    const image = await pushImage(env.registry, repo, 'v1', 'oci-manifest');
    const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
    await attachAsSig(repo, image.digest, payload, await mock.signMessage(payload, options));
    return image;
  }

  /** An image with a keyless cosign v3 signature bundle as its referrer; `subject` is its descriptor. */
  async function bundleSigned(repo: string, kind: ImageKind) {
    const image = await pushImage(env.registry, repo, 'v1', kind);
    const subject = { mediaType: image.mediaType, digest: image.digest, size: image.size };
    const signature = await mock.signStatement(inTotoStatement(image.digest, COSIGN_SIGN_PREDICATE));
    await pushBundleReferrer(env.registry, repo, subject, signature);
    return { image, subject };
  }

  test('legacy .sig layer (certificate + Rekor SET annotations): trusted, with identity and tlog', async () => {
    const image = await legacySigned('keyless/legacy');
    const verifier = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    const result = await verifyDigest(verifier, env, 'keyless/legacy', image.digest, requires(['ci']));
    const [sig] = result.signatures;
    assert.equal(sig?.authority, 'ci');
    assert.equal(sig?.kind, 'keyless');
    assert.deepEqual(sig?.identity, { issuer: MOCK_ISSUER, subject: MOCK_SUBJECT });
    assert.match(sig?.tlog?.logIndex ?? '', /^\d+$/);
    assert.ok(Math.abs(Date.parse(sig?.tlog?.integratedTime ?? '') - Date.now()) < 3_600_000);
  });

  test('cosign v3 DSSE bundle referrer on an index: trusted; provenance attestation required and found', async () => {
    const repo = 'keyless/bundle';
    const { image, subject } = await bundleSigned(repo, 'oci-index');
    const verifier = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    const need = requiresProvenance(['ci']);
    await assert.rejects(
      verifyDigest(verifier, env, repo, image.digest, need),
      code('ATTESTATION_MISSING', SLSA_PROVENANCE_V1)
    );
    const provenance = await mock.signStatement(
      inTotoStatement(image.digest, SLSA_PROVENANCE_V1, { buildDefinition: {} })
    );
    await pushBundleReferrer(env.registry, repo, subject, provenance, SLSA_PROVENANCE_V1);
    const result = await verifyDigest(verifier, env, repo, image.digest, need);
    assert.equal(result.signatures[0]?.kind, 'keyless');
    assert.deepEqual(result.attestations, [{ predicateType: SLSA_PROVENANCE_V1, authority: 'ci' }]);
  });

  test('attestation signed by an identity the attestation rule does not trust: ATTESTATION_MISSING', async () => {
    const repo = 'keyless/att-wrong-signer';
    const { image, subject } = await bundleSigned(repo, 'oci-manifest');
    const other = 'https://github.com/acme/other/.github/workflows/x.yml@refs/heads/main';
    await pushBundleReferrer(
      env.registry,
      repo,
      subject,
      await mock.signStatement(inTotoStatement(image.digest, SLSA_PROVENANCE_V1), { claims: { sub: other } }),
      SLSA_PROVENANCE_V1
    );
    const verifier = await env.verifier([
      keylessAuthority('ci', root, [exact()]),
      keylessAuthority('builder', root, [exact({ subject: 'https://builder.example/x' })]),
    ]);
    await assert.rejects(
      verifyDigest(verifier, env, repo, image.digest, requiresProvenance(['ci'], ['builder'])),
      code('ATTESTATION_MISSING')
    );
  });

  test('legacy .att layer (DSSE envelope blob, intoto Rekor entry): keyless attestation found by predicate type', async () => {
    const repo = 'keyless/legacy-att';
    const image = await legacySigned(repo);
    const statement = inTotoStatement(image.digest, SLSA_PROVENANCE_V1, { buildDefinition: {} });
    await pushAttachment(env.registry, repo, image.digest, 'att', [
      legacyAttestationLayer(await mock.signStatement(statement)),
    ]);
    const verifier = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    const need = requiresProvenance(['ci']);
    const result = await verifyDigest(verifier, env, repo, image.digest, need);
    assert.deepEqual(result.attestations, [{ predicateType: SLSA_PROVENANCE_V1, authority: 'ci' }]);
    // an attestation about another image in this image's .att: not counted
    const other = inTotoStatement(`sha256:${'0'.repeat(64)}`, SLSA_PROVENANCE_V1);
    await pushAttachment(env.registry, repo, image.digest, 'att', [
      legacyAttestationLayer(await mock.signStatement(other)),
    ]);
    await assert.rejects(verifyDigest(verifier, env, repo, image.digest, need), code('ATTESTATION_MISSING'));
  });

  test('wrong subject, wrong issuer: UNTRUSTED', async () => {
    const image = await legacySigned('keyless/identity');
    const wrongSubject = await env.verifier([
      keylessAuthority('ci', root, [
        exact({ subject: 'https://github.com/acme/widget/.github/workflows/other.yml@refs/heads/main' }),
      ]),
    ]);
    await assert.rejects(
      verifyDigest(wrongSubject, env, 'keyless/identity', image.digest, requires(['ci'])),
      code('UNTRUSTED', 'identity')
    );
    const wrongIssuer = await env.verifier([
      keylessAuthority('ci', root, [exact({ issuer: 'https://token.actions.githubusercontent.com' })]),
    ]);
    await assert.rejects(
      verifyDigest(wrongIssuer, env, 'keyless/identity', image.digest, requires(['ci'])),
      code('UNTRUSTED', 'identity')
    );
  });

  test('subjectRegExp is anchored at the start; extra Fulcio claims must match exactly', async () => {
    const image = await legacySigned('keyless/regexp', { claims: { repository: 'acme/widget' } });
    const run = async (identity: Identity) =>
      verifyDigest(
        await env.verifier([keylessAuthority('ci', root, [identity])]),
        env,
        'keyless/regexp',
        image.digest,
        requires(['ci'])
      );
    const prefix = { issuer: MOCK_ISSUER, subjectRegExp: '^https://github\\.com/acme/', extensions: {} };
    assert.equal((await run(prefix)).signatures.length, 1);
    // an unanchored "acme/widget" would match anywhere in the subject; anchored it does not
    await assert.rejects(
      run({ issuer: MOCK_ISSUER, subjectRegExp: 'acme/widget', extensions: {} }),
      code('UNTRUSTED')
    );
    await assert.rejects(
      run({ issuer: MOCK_ISSUER, subjectRegExp: '^https://github\\.com/acme/widget$', extensions: {} }),
      code('UNTRUSTED')
    );
    // 1.3.6.1.4.1.57264.1.5: GitHub workflow repository (raw string), as the mock Fulcio maps the `repository` claim
    assert.equal(
      (await run({ ...prefix, extensions: { '1.3.6.1.4.1.57264.1.5': 'acme/widget' } })).signatures.length,
      1
    );
    await assert.rejects(
      run({ ...prefix, extensions: { '1.3.6.1.4.1.57264.1.5': 'acme/other' } }),
      code('UNTRUSTED')
    );
  });

  test('expired leaf certificate without a tlog time: UNTRUSTED', async () => {
    const image = await legacySigned('keyless/expired', { expiredLeaf: true, rekor: 'none' });
    const verifier = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    await assert.rejects(
      verifyDigest(verifier, env, 'keyless/expired', image.digest, requires(['ci'])),
      code('UNTRUSTED', 'timestamp')
    );
  });

  test('SET from a transparency log outside the trusted root: UNTRUSTED', async () => {
    const image = await legacySigned('keyless/rogue-log', { rekor: 'rogue' });
    const verifier = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    await assert.rejects(
      verifyDigest(verifier, env, 'keyless/rogue-log', image.digest, requires(['ci'])),
      code('UNTRUSTED')
    );
  });

  test('signature over another image digest: UNTRUSTED', async () => {
    const repo = 'keyless/other-digest';
    const image = await pushImage(env.registry, repo, 'v1', 'oci-manifest');
    const other = await pushImage(env.registry, repo, 'v2', 'oci-manifest');
    const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, other.digest);
    await attachAsSig(repo, image.digest, payload, await mock.signMessage(payload));
    const verifier = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    await assert.rejects(
      verifyDigest(verifier, env, repo, image.digest, requires(['ci'])),
      code('UNTRUSTED', 'signs')
    );
  });

  test('key authority with tlog: required checks the Rekor SET against its trusted root', async () => {
    const repo = 'keyed/tlog';
    const image = await pushImage(env.registry, repo, 'v1', 'oci-manifest');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const payload = simpleSigningPayload(`${env.registry.host}/${repo}`, image.digest);
    const authority: AuthorityConfig = { name: 'k', key: { pem }, tlog: 'required', trustedRoot: root };
    const verifier = await env.verifier([authority]);

    const logged = await keySignedMessageBundle(pair.privateKey, payload, mock.rekorURL('trusted'));
    await attachAsSig(repo, image.digest, payload, logged);
    const result = await verifyDigest(verifier, env, repo, image.digest, requires(['k']));
    assert.equal(result.signatures[0]?.kind, 'key');
    assert.match(result.signatures[0]?.tlog?.logIndex ?? '', /^\d+$/);

    // the same signature logged in a log the root does not trust: never trusted, even with tlog optional
    const rogue = await keySignedMessageBundle(pair.privateKey, payload, mock.rekorURL('rogue'));
    await attachAsSig(repo, image.digest, payload, rogue);
    await assert.rejects(verifyDigest(verifier, env, repo, image.digest, requires(['k'])), code('UNTRUSTED'));
    const optional = await env.verifier([{ ...authority, tlog: 'optional' }]);
    await assert.rejects(
      verifyDigest(optional, env, repo, image.digest, requires(['k'])),
      code('UNTRUSTED', 'inclusion promise')
    );
    // with no trusted root at all (tlog: optional), entries cannot be checked: they are ignored, not trusted
    const noRoot = await env.verifier([{ name: 'k', key: { pem }, tlog: 'optional' }]);
    const unchecked = await verifyDigest(noRoot, env, repo, image.digest, requires(['k']));
    assert.deepEqual(unchecked.signatures, [{ authority: 'k', kind: 'key' }]);
  });

  test('worker pool gives the same verdicts as the event loop', async () => {
    const image = await legacySigned('keyless/pool');
    const pooled = await env.verifier([keylessAuthority('ci', root, [exact()])], {
      workers: 2,
      workerMinBatch: 1,
    });
    const inline = await env.verifier([keylessAuthority('ci', root, [exact()])]);
    const need = requires(['ci']);
    assert.deepEqual(
      await verifyDigest(pooled, env, 'keyless/pool', image.digest, need),
      await verifyDigest(inline, env, 'keyless/pool', image.digest, need)
    );
    const wrong = await env.verifier(
      [keylessAuthority('ci', root, [exact({ issuer: 'https://other.example' })])],
      { workers: 1, workerMinBatch: 1 }
    );
    await assert.rejects(verifyDigest(wrong, env, 'keyless/pool', image.digest, need), code('UNTRUSTED'));
    assert.equal(pooled.fingerprint(), inline.fingerprint());
    assert.notEqual(pooled.fingerprint(), wrong.fingerprint());
  });
});
