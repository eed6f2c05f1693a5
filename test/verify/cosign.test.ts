/**
 * The real cosign CLI as an independent signer (built by scripts/setup-cosign.sh from the Go module proxy):
 * v2 writes legacy `sha256-<hex>.sig` signatures and `.att` attestations; v3 writes sigstore bundles as OCI
 * referrers (with the `sha256-<hex>` fallback index, since distribution 2.8 has no referrers API).
 * Locally the test skips when the binaries are missing; under CI it fails instead.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinary, missingComponent } from '../support/binaries.ts';
import { MOCK_ISSUER, MOCK_SUBJECT, startKeylessMock, type KeylessMock } from '../support/keyless.ts';
import { pushImage, type ImageKind } from '../support/images.ts';
import { SLSA_PROVENANCE_V1 } from '../support/signing.ts';
import {
  code,
  FIXTURES,
  keyAuthority,
  keylessAuthority,
  requires,
  requiresProvenance,
  startVerifyEnv,
  verifyDigest,
  type VerifyEnv,
} from './env.ts';

const run = promisify(execFile);
const TOOLS = process.env.SIGPIN_TOOLS ?? join(homedir(), '.cache', 'sigpin-tools');
/** Keep in step with scripts/setup-cosign.sh. */
const COSIGN = { v2: join(TOOLS, 'cosign-v2.6.5', 'cosign'), v3: join(TOOLS, 'cosign-v3.1.3', 'cosign') };
const KEY = join(FIXTURES, 'cosign-upstream-sigstore-label.key');
const PUB = join(FIXTURES, 'cosign-upstream-sigstore-label.pub');
const OTHER_PUB = join(FIXTURES, 'testbed-generated.pub');
const PASSWORD = 'hello'; // cosign-upstream.pass

function requireCosign(path: string): { skip?: string } {
  try {
    accessSync(path, constants.X_OK);
    return {};
  } catch {
    const reason = `${path} missing: run scripts/setup-cosign.sh`;
    return missingComponent(reason);
  }
}

describe('signatures made by the real cosign CLI (real registry)', requireBinary('docker-registry'), () => {
  let env: VerifyEnv;
  let mock: KeylessMock;

  before(async () => {
    env = await startVerifyEnv();
    mock = await startKeylessMock();
  });
  after(async () => {
    await mock.stop();
    await env.stop();
  });

  /** Runs cosign offline against the loopback registry (no TUF, no public Sigstore). */
  async function cosign(
    binary: string,
    args: string[],
    extraEnv: Record<string, string> = {}
  ): Promise<void> {
    try {
      await run(binary, args, {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: env.dir,
          TUF_ROOT: join(env.dir, 'tuf'),
          COSIGN_PASSWORD: PASSWORD,
          COSIGN_YES: 'true',
          ...extraEnv,
        },
        timeout: 120_000,
        maxBuffer: 8 * 1024 * 1024,
      });
    } catch (err) {
      const e = err as { stderr?: string; message?: string };
      throw new Error(`cosign ${args[0]} failed: ${e.stderr ?? e.message}`, { cause: err });
    }
  }
  const registryFlags = ['--allow-http-registry', '--allow-insecure-registry'];

  /** Pushes an image to be signed: its digest and the digest reference cosign is given. */
  async function pushToSign(repo: string, kind: ImageKind): Promise<{ digest: string; ref: string }> {
    const image = await pushImage(env.registry, repo, 'v1', kind);
    return { digest: image.digest, ref: `${env.registry.host}/${repo}@${image.digest}` };
  }

  /** PEM armour for base64 DER, as cosign reads keys and certificates from files. */
  const pem = (label: string, b64: string): string =>
    `-----BEGIN ${label}-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;

  /** `cosign attest --key` with an SLSA provenance predicate; `flags` pick the tlog (v2) or signing config (v3). */
  async function attestProvenance(binary: string, file: string, flags: string[], ref: string): Promise<void> {
    const predicate = await env.write(
      file,
      JSON.stringify({ buildDefinition: { buildType: 'x' }, runDetails: {} })
    );
    await cosign(binary, [
      'attest',
      '--key',
      KEY,
      ...flags,
      '--type',
      SLSA_PROVENANCE_V1,
      '--predicate',
      predicate,
      ...registryFlags,
      ref,
    ]);
  }

  /** A signature made with KEY: a key signature of `release` (its public key); UNTRUSTED for another key. */
  async function assertSignedWithReleaseKey(repo: string, digest: string): Promise<void> {
    const verifier = await env.verifier([keyAuthority('release', PUB), keyAuthority('other', OTHER_PUB)]);
    const result = await verifyDigest(verifier, env, repo, digest, requires(['release']));
    assert.deepEqual(result.signatures, [{ authority: 'release', kind: 'key' }]);
    await assert.rejects(verifyDigest(verifier, env, repo, digest, requires(['other'])), code('UNTRUSTED'));
  }

  /** cosign v3 takes its service URLs from a signing config; none here = no Fulcio, no Rekor, no TSA. */
  async function signingConfig(rekorURL?: string): Promise<string> {
    const rekorTlogUrls = rekorURL
      ? [
          {
            url: rekorURL,
            majorApiVersion: 1,
            validFor: { start: '2020-01-01T00:00:00Z' },
            operator: 'sigpin-test',
          },
        ]
      : [];
    return env.write(
      `signing-config-${rekorURL ? 'rekor' : 'none'}.json`,
      JSON.stringify({
        mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
        caUrls: [],
        oidcUrls: [],
        rekorTlogUrls,
        tsaUrls: [],
        rekorTlogConfig: { selector: 'ANY' },
        tsaConfig: { selector: 'ANY' },
      })
    );
  }

  test(
    'cosign v2 sign --key: legacy .sig verifies; wrong key UNTRUSTED',
    requireCosign(COSIGN.v2),
    async () => {
      const repo = 'cosign2/app';
      const { digest, ref } = await pushToSign(repo, 'oci-index');
      await cosign(COSIGN.v2, ['sign', '--key', KEY, '--tlog-upload=false', ...registryFlags, ref]);
      await assertSignedWithReleaseKey(repo, digest);
    }
  );

  test(
    'cosign v2 sign with a Rekor upload (mock Rekor): SET verified for tlog: required',
    requireCosign(COSIGN.v2),
    async () => {
      const repo = 'cosign2/rekor';
      const { digest, ref } = await pushToSign(repo, 'oci-manifest');
      const rekorPub = await env.write(
        'rekor.pub',
        pem(
          'PUBLIC KEY',
          String(
            (mock.trustedRoot.tlogs as Array<{ publicKey: { rawBytes: string } }>)[0]?.publicKey.rawBytes
          )
        )
      );
      await cosign(
        COSIGN.v2,
        ['sign', '--key', KEY, '--rekor-url', mock.rekorURL('trusted'), ...registryFlags, ref],
        { SIGSTORE_REKOR_PUBLIC_KEY: rekorPub }
      );
      const root = await env.write('cosign-rekor-root.json', JSON.stringify(mock.trustedRoot));
      const verifier = await env.verifier([
        keyAuthority('release', PUB, { tlog: 'required', trustedRoot: root }),
      ]);
      const result = await verifyDigest(verifier, env, repo, digest, requires(['release']));
      assert.match(result.signatures[0]?.tlog?.logIndex ?? '', /^\d+$/);
    }
  );

  test(
    'cosign v2 attest: legacy .att attestation required by predicate type',
    requireCosign(COSIGN.v2),
    async () => {
      const repo = 'cosign2/attest';
      const { digest, ref } = await pushToSign(repo, 'oci-manifest');
      await cosign(COSIGN.v2, ['sign', '--key', KEY, '--tlog-upload=false', ...registryFlags, ref]);
      const verifier = await env.verifier([keyAuthority('release', PUB)]);
      const need = requiresProvenance(['release']);
      await assert.rejects(verifyDigest(verifier, env, repo, digest, need), code('ATTESTATION_MISSING'));
      await attestProvenance(COSIGN.v2, 'provenance.json', ['--tlog-upload=false'], ref);
      const result = await verifyDigest(verifier, env, repo, digest, need);
      assert.deepEqual(result.attestations, [{ predicateType: SLSA_PROVENANCE_V1, authority: 'release' }]);
    }
  );

  test(
    'cosign v2 keyless (mock Fulcio v1 API + mock Rekor): certificate, SCT and SET verified; identity enforced',
    requireCosign(COSIGN.v2),
    async () => {
      const repo = 'cosign2/keyless';
      const { digest, ref } = await pushToSign(repo, 'oci-manifest');
      const root = mock.trustedRoot as {
        certificateAuthorities: Array<{
          uri: string;
          certChain: { certificates: Array<{ rawBytes: string }> };
        }>;
        ctlogs: Array<{ publicKey: { rawBytes: string } }>;
        tlogs: Array<{ publicKey: { rawBytes: string } }>;
      };
      const ca = root.certificateAuthorities[0];
      assert.ok(ca?.certChain.certificates[0] && root.ctlogs[0] && root.tlogs[0]);
      // cosign verifies the Fulcio chain, the SCT and the Rekor SET itself, with these keys instead of TUF's
      const trustEnv = {
        SIGSTORE_ROOT_FILE: await env.write(
          'fulcio-root.pem',
          pem('CERTIFICATE', ca.certChain.certificates[0].rawBytes)
        ),
        SIGSTORE_CT_LOG_PUBLIC_KEY_FILE: await env.write(
          'ctlog.pub',
          pem('PUBLIC KEY', root.ctlogs[0].publicKey.rawBytes)
        ),
        SIGSTORE_REKOR_PUBLIC_KEY: await env.write(
          'rekor-kl.pub',
          pem('PUBLIC KEY', root.tlogs[0].publicKey.rawBytes)
        ),
      };
      // an OIDC token signed by a throwaway key: the mock Fulcio decodes it without verifying, like a trusted front end
      const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const part = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const input = `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ iss: MOCK_ISSUER, sub: MOCK_SUBJECT, aud: 'sigstore', iat: now, exp: now + 600, email: 'ci@acme.example', email_verified: true })}`;
      const token = `${input}.${cryptoSign('sha256', Buffer.from(input), { key: signer.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
      await cosign(
        COSIGN.v2,
        [
          'sign',
          '--fulcio-url',
          ca.uri,
          '--rekor-url',
          mock.rekorURL('trusted'),
          '--identity-token',
          await env.write('oidc-token', token),
          ...registryFlags,
          ref,
        ],
        trustEnv
      );
      const trustedRoot = await env.write('keyless-root.json', JSON.stringify(mock.trustedRoot));
      const verifier = await env.verifier([
        keylessAuthority('ci', trustedRoot, [{ issuer: MOCK_ISSUER, subject: MOCK_SUBJECT, extensions: {} }]),
        keylessAuthority('elsewhere', trustedRoot, [
          { issuer: MOCK_ISSUER, subjectRegExp: '^https://github\\.com/elsewhere/', extensions: {} },
        ]),
      ]);
      const result = await verifyDigest(verifier, env, repo, digest, requires(['ci']));
      assert.deepEqual(result.signatures[0]?.identity, { issuer: MOCK_ISSUER, subject: MOCK_SUBJECT });
      assert.match(result.signatures[0]?.tlog?.logIndex ?? '', /^\d+$/);
      await assert.rejects(
        verifyDigest(verifier, env, repo, digest, requires(['elsewhere'])),
        code('UNTRUSTED', 'identity')
      );
    }
  );

  test(
    'cosign v3 sign --key: bundle referrer (fallback tag) verifies; wrong key UNTRUSTED',
    requireCosign(COSIGN.v3),
    async () => {
      const repo = 'cosign3/app';
      const { digest, ref } = await pushToSign(repo, 'oci-index');
      await cosign(COSIGN.v3, [
        'sign',
        '--key',
        KEY,
        '--signing-config',
        await signingConfig(),
        ...registryFlags,
        ref,
      ]);
      await assertSignedWithReleaseKey(repo, digest);
    }
  );

  test('cosign v3 attest --key: bundle attestation by predicate type', requireCosign(COSIGN.v3), async () => {
    const repo = 'cosign3/attest';
    const { digest, ref } = await pushToSign(repo, 'oci-manifest');
    const config = await signingConfig();
    await cosign(COSIGN.v3, ['sign', '--key', KEY, '--signing-config', config, ...registryFlags, ref]);
    await attestProvenance(COSIGN.v3, 'provenance3.json', ['--signing-config', config], ref);
    const verifier = await env.verifier([keyAuthority('release', PUB)]);
    const result = await verifyDigest(verifier, env, repo, digest, requiresProvenance(['release']));
    assert.deepEqual(result.attestations, [{ predicateType: SLSA_PROVENANCE_V1, authority: 'release' }]);
  });
});
