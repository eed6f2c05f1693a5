/**
 * Authentication of Kyverno's calls: the real Kyverno CLI v1.19.0 sends the projected-token file it finds at
 * KYVERNO_SCOPED_TOKEN_PATH (in a cluster: /var/run/secrets/kyverno/apicall/token) as a bearer token on ClusterPolicy
 * apiCalls; the real provider checks it with a TokenReview against a fake API server (none runs here).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { startFakeTokenReviewServer, type FakeTokenReviewServer } from './fake-token-review.ts';
import { requireFixtures, startKyvernoWorld, type KyvernoWorld } from './fixture.ts';
import { POLICIES_DIR, YAMLText, applyPolicies, pointPolicyAt, requireKyverno, tempDir } from './harness.ts';
import { pod } from './resources.ts';

const AUDIENCE = 'kyverno-svc.kyverno.io';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.kyverno-admission-controller-projected-token.signature';
const options = { ...requireKyverno(), ...requireBinary('docker-registry'), ...(await requireFixtures()) };

describe('Kyverno bearer token checked by TokenReview (fake API server)', options, () => {
  let api: FakeTokenReviewServer;
  let world: KyvernoWorld;
  let cleanup: () => Promise<void>;
  let dir: string;
  const files = new Map<string, string>();

  before(async () => {
    ({ dir, cleanup } = await tempDir('sigpin-kyverno-auth-'));
    api = await startFakeTokenReviewServer({
      token: TOKEN,
      audiences: [AUDIENCE],
      username: 'system:serviceaccount:kyverno:kyverno-admission-controller',
    });
    const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
    world = await startKyvernoWorld({ tokenReview: { audience: AUDIENCE, kubeconfig } });
    for (const [generation, file] of [
      ['clusterpolicy', 'pin-images'],
      ['clusterpolicy', 'verify-images'],
      ['cel', 'verify-images'],
    ] as const) {
      const path = join(dir, `${generation}-${file}.yaml`);
      await writeFile(
        path,
        await pointPolicyAt(
          join(POLICIES_DIR, generation, 'pods-only', `${file}.yaml`),
          world.provider.url,
          world.caPem
        )
      );
      files.set(`${generation}/${file}`, path);
    }
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    await writeFile(join(dir, 'wrong-token'), 'eyJhbGciOiJSUzI1NiJ9.someone-else.signature\n');
    await writeFile(join(dir, 'ca.pem'), world.caPem);
    await writeFile(
      join(dir, 'pod.yaml'),
      YAMLText([pod('app', { containers: [world.images.app1.reference] })])
    );
  });
  after(async () => {
    await world?.stop();
    await api?.close();
    await cleanup?.();
  });

  const clusterPolicies = (): string[] => [
    files.get('clusterpolicy/pin-images') ?? '',
    files.get('clusterpolicy/verify-images') ?? '',
  ];

  test('ClusterPolicy apiCalls carry the projected token: reviewed for the audience, allowed', async () => {
    const reviewsBefore = api.reviews.length;
    const run = await applyPolicies(dir, clusterPolicies(), [join(dir, 'pod.yaml')], {
      env: { KYVERNO_SCOPED_TOKEN_PATH: join(dir, 'token') },
    });
    assert.equal(run.resultFor('sigpin-pin-images', 'Pod', 'app').result, 'pass', run.cli.transcript);
    assert.equal(run.resultFor('sigpin-verify-images', 'Pod', 'app').result, 'pass', run.cli.transcript);
    assert.deepEqual(imagesPinned(run.patchedResource('Pod', 'app')), true);
    const reviews = api.reviews.slice(reviewsBefore);
    // the provider caches a positive review briefly, so one review covers both calls
    assert.deepEqual(reviews, [{ token: TOKEN, audiences: [AUDIENCE], authenticated: true }]);
  });

  test('no token file (Kyverno <= 1.17, or the mount missing): 401, the pin rule errors (blocked)', async () => {
    const run = await applyPolicies(dir, clusterPolicies(), [join(dir, 'pod.yaml')], {
      env: { KYVERNO_SCOPED_TOKEN_PATH: join(dir, 'no-such-token') },
    });
    const result = run.resultFor('sigpin-pin-images', 'Pod', 'app');
    assert.equal(result.result, 'error', run.cli.transcript);
    assert.match(result.message, /HTTP 401 Unauthorized/);
  });

  test('a token the API server does not vouch for: 401, blocked', async () => {
    const run = await applyPolicies(
      dir,
      [files.get('clusterpolicy/verify-images') ?? ''],
      [join(dir, 'pod.yaml')],
      {
        env: { KYVERNO_SCOPED_TOKEN_PATH: join(dir, 'wrong-token') },
      }
    );
    const result = run.resultFor('sigpin-verify-images', 'Pod', 'app');
    assert.equal(result.result, 'error', run.cli.transcript);
    assert.match(result.message, /failed to fetch data for APICall: HTTP 401 Unauthorized/);
    assert.equal(api.reviews.at(-1)?.authenticated, false);
  });

  test('CEL http.Post carries no token in v1.19.0: denied with 401 (why CEL needs a NetworkPolicy instead)', async () => {
    const run = await applyPolicies(dir, [files.get('cel/verify-images') ?? ''], [join(dir, 'pod.yaml')], {
      env: { KYVERNO_SCOPED_TOKEN_PATH: join(dir, 'token'), SSL_CERT_FILE: join(dir, 'ca.pem') },
    });
    const result = run.resultFor('sigpin-verify-images', 'Pod', 'app');
    assert.equal(result.result, 'fail', run.cli.transcript);
    assert.match(result.message, /sigpin provider answered HTTP 401/);
  });

  function imagesPinned(resource: Record<string, unknown>): boolean {
    return JSON.stringify(resource).includes(`${world.images.app1.reference}@${world.images.app1.digest}`);
  }
});
