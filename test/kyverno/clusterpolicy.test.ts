/**
 * The ClusterPolicy generation (policies/kyverno/clusterpolicy) through the real Kyverno CLI v1.19.0, with real
 * HTTPS apiCalls to the real provider, which resolves and verifies images in a real registry.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCertificateAuthority } from '../../provider/src/server/certificates.ts';
import { requireBinary } from '../support/binaries.ts';
import {
  assertSignedPodPinnedAndVerified,
  PIN,
  pinAndVerify,
  pinned,
  pointedPolicies,
  requireFixtures,
  startKyvernoWorld,
  worldImages,
  VERIFY,
  type KyvernoWorld,
} from './fixture.ts';
import {
  POLICIES_DIR,
  YAMLText,
  applyPolicies,
  cliDocument,
  imagesOf,
  metricValue,
  pointPolicyAt,
  providerCalls,
  requireKyverno,
  runKyvernoTest,
  type ApplyOutcome,
} from './harness.ts';
import { pod, podsOnlyMix, workloadMix, type Images } from './resources.ts';

const options = { ...requireKyverno(), ...requireBinary('docker-registry'), ...(await requireFixtures()) };

describe('Kyverno ClusterPolicy generation (kyverno apply / kyverno test v1.19.0)', options, () => {
  let world: KyvernoWorld;
  /** Temp copies of the shipped policies pointed at the test provider, by `variant/file`. */
  let policy: Map<string, string>;
  let img: Images;

  before(async () => {
    world = await startKyvernoWorld();
    policy = await pointedPolicies(world, 'clusterpolicy');
    img = worldImages(world);
  });
  after(async () => {
    await world?.stop();
  });

  describe('workload variant: Pods, Deployments and CronJobs', () => {
    let run: ApplyOutcome;
    before(async () => {
      const resources = join(world.dir, 'cp-workloads.yaml');
      await writeFile(resources, YAMLText(workloadMix(img)));
      run = await applyPolicies(world.dir, pinAndVerify(policy, 'workloads'), [resources]);
    });

    test('signed Pod: every list pinned (tag kept), validate-only image left alone, verified', () => {
      assertSignedPodPinnedAndVerified(run, world);
    });

    test('unsigned image: pinned by the mutate policy, denied by the verify policy with UNSIGNED', () => {
      assert.deepEqual(imagesOf(run.patchedResource('Pod', 'unsigned')).containers, [
        pinned(img.app1, world.images.app1.digest),
        pinned(img.unsigned, world.images.unsigned.digest),
      ]);
      const verdict = run.resultFor(VERIFY, 'Pod', 'unsigned');
      assert.equal(verdict.result, 'fail', run.cli.transcript);
      assert.match(verdict.message, /team\/unsigned:1\.0@sha256:[0-9a-f]{64}: UNSIGNED:/);
    });

    test('image signed by an untrusted key (initContainer): denied with UNTRUSTED', () => {
      const verdict = run.resultFor(VERIFY, 'Pod', 'untrusted');
      assert.equal(verdict.result, 'fail', run.cli.transcript);
      assert.match(verdict.message, /team\/untrusted:1\.0@sha256:[0-9a-f]{64}: UNTRUSTED:/);
    });

    test('tag that does not exist: the mutate call answers 422 and the rule errors (failurePolicy Fail blocks)', () => {
      const result = run.resultFor(PIN, 'Pod', 'missing');
      assert.equal(result.result, 'error', run.cli.transcript);
      assert.match(result.message, /HTTP 422 Unprocessable Entity: .*NOT_FOUND:/);
    });

    test('registry unreachable: the mutate call answers 503 and the rule errors (blocked)', () => {
      const result = run.resultFor(PIN, 'Pod', 'unreachable');
      assert.equal(result.result, 'error', run.cli.transcript);
      assert.match(result.message, /HTTP 503 Service Unavailable: .*"systemError":"REGISTRY_UNAVAILABLE:/);
    });

    test('Deployment: the autogen rules pin and verify the pod template', () => {
      assert.equal(run.resultFor(PIN, 'Deployment', 'web', 'autogen-pin-images').result, 'pass');
      assert.deepEqual(imagesOf(run.patchedResource('Deployment', 'web')), {
        containers: [pinned(img.app2, world.images.app2.digest)],
        initContainers: [pinned(img.init, world.images.init.digest)],
      });
      assert.equal(run.resultFor(VERIFY, 'Deployment', 'web', 'autogen-verify-images').result, 'pass');
      const bad = run.resultFor(VERIFY, 'Deployment', 'web-unsigned', 'autogen-verify-images');
      assert.equal(bad.result, 'fail', run.cli.transcript);
      assert.match(bad.message, /UNSIGNED:/);
    });

    test('CronJob: the autogen-cronjob rule pins the job template', () => {
      assert.equal(run.resultFor(PIN, 'CronJob', 'nightly', 'autogen-cronjob-pin-images').result, 'pass');
      assert.deepEqual(imagesOf(run.patchedResource('CronJob', 'nightly')).containers, [
        pinned(img.app1, world.images.app1.digest),
      ]);
    });
  });

  test('verify policy on its own: a transient provider failure (systemError) denies', async () => {
    const resources = join(world.dir, 'cp-transient.yaml');
    await writeFile(resources, YAMLText([pod('flaky', { containers: [img.app1, img.unreachable] })]));
    const run = await applyPolicies(world.dir, [policy.get('workloads/verify-images') ?? ''], [resources]);
    const verdict = run.resultFor(VERIFY, 'Pod', 'flaky');
    assert.equal(verdict.result, 'fail', run.cli.transcript);
    assert.match(verdict.message, /REGISTRY_UNAVAILABLE:/);
  });

  test('kubectl debug: an ephemeral container added through pods/ephemeralcontainers is pinned and verified', async () => {
    // The CLI simulates the subresource request from values (same GVK as the parent: Pod); the old Pod had no
    // ephemeral containers. (It cannot show that a rule without the Pod/ephemeralcontainers entry would miss
    // this request in a cluster, where webhooks only receive the subresources a policy lists.)
    const resources = join(world.dir, 'cp-debug.yaml');
    const running = pinned(img.app1, world.images.app1.digest);
    await writeFile(
      resources,
      YAMLText([pod('debugged', { containers: [running], ephemeralContainers: [img.unsigned] })])
    );
    const values = join(world.dir, 'cp-debug-values.yaml');
    await writeFile(
      values,
      YAMLText([
        cliDocument('Values', 'values', {
          subresources: [
            {
              subresource: { name: 'pods/ephemeralcontainers', kind: 'Pod', group: '', version: 'v1' },
              parentResource: { name: 'pods', kind: 'Pod', group: '', version: 'v1' },
            },
          ],
          globalValues: {
            'request.operation': 'UPDATE',
            'request.oldObject.spec.ephemeralContainers': [],
          },
        }),
      ])
    );
    const run = await applyPolicies(world.dir, pinAndVerify(policy, 'workloads'), [resources], {
      valuesFile: values,
    });
    assert.deepEqual(imagesOf(run.patchedResource('Pod', 'debugged')), {
      containers: [running],
      ephemeralContainers: [pinned(img.unsigned, world.images.unsigned.digest)],
    });
    const verdict = run.resultFor(VERIFY, 'Pod', 'debugged');
    assert.equal(verdict.result, 'fail', run.cli.transcript);
    assert.match(verdict.message, /team\/unsigned:1\.0@sha256:[0-9a-f]{64}: UNSIGNED:/);
  });

  test('one provider call per container that needs one (foreach), none for pinned images', async () => {
    const calls = (route: string): Promise<number> => providerCalls(world.provider, route);
    const resources = join(world.dir, 'cp-calls.yaml');
    const done = pinned(img.app2, world.images.app2.digest);
    await writeFile(
      resources,
      YAMLText([pod('four', { containers: [img.app1, done, img.legacy], initContainers: [img.init] })])
    );
    const mutateBefore = await calls('mutate');
    const verifyBefore = await calls('verify');
    const run = await applyPolicies(world.dir, pinAndVerify(policy, 'pods-only'), [resources]);
    assert.equal(run.resultFor(VERIFY, 'Pod', 'four').result, 'pass', run.cli.transcript);
    assert.equal(await calls('mutate'), mutateBefore + 3, 'app1, legacy and init need a pin; app2 is pinned');
    assert.equal(await calls('verify'), verifyBefore + 4, 'every image is verified, one call each');
  });

  test('pods-only variant: Pods are pinned and verified, Deployments are not touched', async () => {
    const resources = join(world.dir, 'cp-pods-only.yaml');
    await writeFile(resources, YAMLText(podsOnlyMix(img)));
    const run = await applyPolicies(world.dir, pinAndVerify(policy, 'pods-only'), [resources]);
    assert.equal(run.resultFor(PIN, 'Pod', 'solo').result, 'pass', run.cli.transcript);
    assert.deepEqual(imagesOf(run.patchedResource('Pod', 'solo')).containers, [
      pinned(img.app1, world.images.app1.digest),
    ]);
    assert.equal(run.resultFor(VERIFY, 'Pod', 'solo').result, 'pass', run.cli.transcript);
    assert.deepEqual(
      run.results.filter((r) => r.kind === 'Deployment'),
      [],
      `no rule may apply to the Deployment\n${run.cli.transcript}`
    );
  });

  test('a provider whose certificate the caBundle does not vouch for: both rules error (blocked)', async () => {
    const stranger = (await createCertificateAuthority('not the sigpin CA', 1)).certPem;
    const resources = join(world.dir, 'cp-wrong-ca.yaml');
    await writeFile(resources, YAMLText([pod('tls', { containers: [img.app1] })]));
    // one run per policy: after a mutate error the CLI does not go on to validate the resource
    for (const [file, name] of [
      ['pin-images', PIN],
      ['verify-images', VERIFY],
    ] as const) {
      const path = join(world.dir, `cp-wrong-ca-${file}.yaml`);
      await writeFile(
        path,
        await pointPolicyAt(
          join(POLICIES_DIR, 'clusterpolicy', 'pods-only', `${file}.yaml`),
          world.provider.url,
          stranger
        )
      );
      const run = await applyPolicies(world.dir, [path], [resources]);
      const result = run.resultFor(name, 'Pod', 'tls');
      assert.equal(result.result, 'error', run.cli.transcript);
      assert.match(result.message, /x509: certificate signed by unknown authority/);
    }
  });

  describe('UPDATE (kyverno test: old object fields set through values)', () => {
    /**
     * Writes a `kyverno test` folder for one Pod UPDATE: the new Pod is the resource, the old Pod's containers
     * come from values (the CLI copies the object into oldObject, globalValues then replace its containers).
     */
    async function updateCase(
      name: string,
      newImage: string,
      oldImage: string,
      expect: { pin: 'pass' | 'skip' | 'error'; patchedImage?: string; verify: 'pass' | 'fail' }
    ): Promise<string> {
      const dir = join(world.dir, `update-${name}`);
      await mkdir(dir);
      await writeFile(join(dir, 'pin.yaml'), await readPolicy('pods-only/pin-images'));
      await writeFile(join(dir, 'verify.yaml'), await readPolicy('pods-only/verify-images'));
      await writeFile(join(dir, 'resource.yaml'), YAMLText([pod(name, { containers: [newImage] })]));
      await writeFile(
        join(dir, 'values.yaml'),
        YAMLText([
          cliDocument('Values', 'values', {
            globalValues: {
              'request.operation': 'UPDATE',
              'request.oldObject.spec.containers': [{ name: 'c0', image: oldImage }],
            },
          }),
        ])
      );
      // apiCalls run in `kyverno test` only when cluster resources are given; the Pod's namespace is one.
      await writeFile(
        join(dir, 'cluster.yaml'),
        YAMLText([
          cliDocument('ClusterResource', 'cluster', {
            spec: { resources: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }] },
          }),
        ])
      );
      const results: Array<Record<string, unknown>> = [
        {
          policy: PIN,
          rule: 'pin-images',
          resources: [`team/${name}`],
          kind: 'Pod',
          result: expect.pin,
          ...(expect.patchedImage ? { patchedResources: 'patched.yaml' } : {}),
        },
        {
          policy: VERIFY,
          rule: 'verify-images',
          resources: [`team/${name}`],
          kind: 'Pod',
          result: expect.verify,
        },
      ];
      if (expect.patchedImage) {
        await writeFile(
          join(dir, 'patched.yaml'),
          YAMLText([pod(name, { containers: [expect.patchedImage] })])
        );
      }
      await writeFile(
        join(dir, 'kyverno-test.yaml'),
        YAMLText([
          cliDocument('Test', `update-${name}`, {
            policies: ['pin.yaml', 'verify.yaml'],
            resources: ['resource.yaml'],
            clusterResources: ['cluster.yaml'],
            variables: 'values.yaml',
            results,
          }),
        ])
      );
      return dir;
    }

    async function readPolicy(key: string): Promise<string> {
      return readFile(policy.get(key) ?? '', 'utf8');
    }

    async function runCase(dir: string): Promise<void> {
      const out = await runKyvernoTest(dir);
      assert.equal(out.failed, 0, out.cli.transcript);
      assert.equal(out.passed, 2, out.cli.transcript);
      assert.equal(out.cli.code, 0, out.cli.transcript);
    }

    test('GitOps re-send: app:1.0 over app:1.0@D is re-pinned to D and verification is skipped (unchanged)', async () => {
      const skipped = await metricValue(world.provider, 'sigpin_verify_skipped_total');
      const old = pinned(img.app1, world.images.app1.digest);
      await runCase(
        await updateCase('resend', img.app1, old, { pin: 'pass', patchedImage: old, verify: 'pass' })
      );
      assert.equal(await metricValue(world.provider, 'sigpin_verify_skipped_total'), skipped + 1);
    });

    test('image changed to another signed tag: pinned to the new digest and verified in full', async () => {
      const skipped = await metricValue(world.provider, 'sigpin_verify_skipped_total');
      const dir = await updateCase('upgrade', img.app2, pinned(img.app1, world.images.app1.digest), {
        pin: 'pass',
        patchedImage: pinned(img.app2, world.images.app2.digest),
        verify: 'pass',
      });
      await runCase(dir);
      assert.equal(await metricValue(world.provider, 'sigpin_verify_skipped_total'), skipped);
    });

    test('image changed to an unsigned one: pinned, then denied (the old signed image does not help)', async () => {
      const dir = await updateCase('downgrade', img.unsigned, pinned(img.app1, world.images.app1.digest), {
        pin: 'pass',
        patchedImage: pinned(img.unsigned, world.images.unsigned.digest),
        verify: 'fail',
      });
      await runCase(dir);
    });

    test('unchanged unpinned image text: not rewritten (no restart), verified in full', async () => {
      const skipped = await metricValue(world.provider, 'sigpin_verify_skipped_total');
      await runCase(await updateCase('same-text', img.app1, img.app1, { pin: 'skip', verify: 'pass' }));
      assert.equal(await metricValue(world.provider, 'sigpin_verify_skipped_total'), skipped);
    });
  });
});
