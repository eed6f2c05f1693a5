/**
 * End to end through the `sigpin verify` binary: a YAML trust policy with a key authority (skopeo-signed image)
 * and a keyless authority (mock Fulcio/Rekor), against a real docker-registry. Checks the config schema, the
 * wiring of the verifier into the lookup service, verdict objects and exit codes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, setupSigningSkopeo } from '../support/images.ts';
import {
  legacyAnnotationsFromBundle,
  MOCK_ISSUER,
  MOCK_SUBJECT,
  startKeylessMock,
  type KeylessMock,
} from '../support/keyless.ts';
import { pushAttachment, sigstoreRegistriesDir, simpleSigningPayload } from '../support/signing.ts';
import { FIXTURES, startVerifyEnv, type VerifyEnv } from './env.ts';

const run = promisify(execFile);
const SIGPIN = new URL('../../provider/bin/sigpin.js', import.meta.url).pathname;

/** Runs `sigpin verify` and returns the exit code and one parsed JSON object per output line. */
async function sigpinVerify(
  config: string,
  refs: string[]
): Promise<{ code: number; lines: Array<Record<string, unknown>> }> {
  let stdout: string;
  let code = 0;
  try {
    ({ stdout } = await run(process.execPath, [SIGPIN, 'verify', ...refs, '--config', config], {
      timeout: 60_000,
    }));
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    code = e.code ?? -1;
    stdout = e.stdout ?? '';
  }
  return {
    code,
    lines: stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe(
  'sigpin verify with a trust policy (real registry, skopeo and keyless signers)',
  requireBinary('docker-registry'),
  () => {
    let env: VerifyEnv;
    let mock: KeylessMock;
    let config: string;
    const ref = (repo: string): string => `${env.registry.host}/${repo}:v1`;

    before(async () => {
      env = await startVerifyEnv();
      mock = await startKeylessMock();
      const skopeo = await setupSigningSkopeo();
      const registriesD = await sigstoreRegistriesDir(env.registry.host);
      try {
        await pushImage(env.registry, 'team/keyed', 'v1', 'oci-index', {
          skopeo,
          extraArgs: [
            '--registries.d',
            registriesD.dir,
            '--sign-by-sigstore-private-key',
            join(FIXTURES, 'testbed-generated.key'),
            '--sign-passphrase-file',
            join(FIXTURES, 'testbed.pass'),
          ],
        });
      } finally {
        await registriesD.remove();
      }
      const keyless = await pushImage(env.registry, 'ci/built', 'v1', 'oci-manifest');
      const payload = simpleSigningPayload(`${env.registry.host}/ci/built`, keyless.digest);
      await pushAttachment(env.registry, 'ci/built', keyless.digest, 'sig', [
        { blob: payload, annotations: legacyAnnotationsFromBundle(await mock.signMessage(payload)) },
      ]);
      await pushImage(env.registry, 'team/unsigned', 'v1', 'oci-manifest');
      await pushImage(env.registry, 'public/any', 'v1', 'oci-manifest');
      await env.write('trusted_root.json', JSON.stringify(mock.trustedRoot));
      const host = env.registry.host;
      config = await env.write(
        'sigpin.yaml',
        [
          `registries: { allow: ["${host}"], insecure: ["${host}"] }`,
          'authorities:',
          '  - name: release',
          `    key: { path: ${join(FIXTURES, 'testbed-generated.pub')} }`,
          '  - name: ci',
          '    keyless:',
          '      trustedRoot: trusted_root.json',
          `      identities: [{ issuer: "${MOCK_ISSUER}", subjectRegExp: "^https://github\\\\.com/acme/" }]`,
          'policies:',
          '  - name: team',
          `    images: ["${host}/team/**"]`,
          '    authorities: [release]',
          '  - name: ci',
          `    images: ["${host}/ci/*"]`,
          '    authorities: [ci]',
          '    mode: validate-only',
          '  - name: rest',
          `    images: ["**"]`,
          '    verify: false',
          '',
        ].join('\n')
      );
    });
    after(async () => {
      await mock.stop();
      await env.stop();
    });

    test('trusted images: exit 0 with verdicts (key and keyless)', async () => {
      const { code, lines } = await sigpinVerify(config, [ref('team/keyed'), ref('ci/built')]);
      assert.equal(code, 0, JSON.stringify(lines));
      const [keyed, ci] = lines;
      assert.equal(keyed?.verified, true);
      assert.deepEqual(keyed?.signatures, [{ authority: 'release', kind: 'key' }]);
      assert.equal(ci?.mode, 'validate-only');
      const [signature] = ci?.signatures as Array<{ kind: string; identity: unknown }>;
      assert.equal(signature?.kind, 'keyless');
      assert.deepEqual(signature?.identity, { issuer: MOCK_ISSUER, subject: MOCK_SUBJECT });
    });

    test('unsigned image under a verifying policy: exit 1, UNSIGNED; verify: false policy is not verified', async () => {
      const { code, lines } = await sigpinVerify(config, [ref('team/unsigned'), ref('public/any')]);
      assert.equal(code, 1);
      assert.match(String(lines[0]?.error), /^UNSIGNED: /);
      assert.equal(lines[1]?.verified, false);
    });
  }
);
