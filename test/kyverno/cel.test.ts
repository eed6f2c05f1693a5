/**
 * The CEL generation (policies/kyverno/cel: MutatingPolicy + ValidatingPolicy) through the real Kyverno CLI
 * v1.19.0, with real HTTPS `http.Post` calls to the real provider.
 *
 * What the CLI cannot show, and how it is handled here:
 * - Kyverno blocks CEL HTTP calls to loopback by default (--httpBlocklist); the CLI is run with
 *   FLAG_HTTP_BLOCKLIST narrowed to the metadata addresses (harness.ts).
 * - `http.Client(caBundle)` cannot be called in v1.19.0 (see the last test), so the policies use `http.Post`,
 *   which trusts the process trust store: the CLI gets the test CA through SSL_CERT_FILE, as Kyverno's admission
 *   controller gets it through its chart's caCertificates.
 * - `kyverno test` makes oldObject a copy of object on UPDATE and values do not reach CEL's oldObject, so only
 *   unchanged-image UPDATEs can be run for CEL policies (changed images are covered by the ClusterPolicy tests).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
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
  YAMLText,
  applyPolicies,
  cliDocument,
  imagesOf,
  metricValue,
  providerCalls,
  requireKyverno,
  runKyvernoTest,
  type ApplyOutcome,
} from './harness.ts';
import { pod, podsOnlyMix, workloadMix, type Images } from './resources.ts';

const options = { ...requireKyverno(), ...requireBinary('docker-registry'), ...(await requireFixtures()) };

describe(
  'Kyverno CEL generation: MutatingPolicy + ValidatingPolicy (kyverno apply / kyverno test v1.19.0)',
  options,
  () => {
    let world: KyvernoWorld;
    let policy: Map<string, string>;
    let img: Images;
    let env: NodeJS.ProcessEnv;

    before(async () => {
      world = await startKyvernoWorld();
      const caFile = join(world.dir, 'sigpin-ca.pem');
      await writeFile(caFile, world.caPem);
      env = { SSL_CERT_FILE: caFile };
      policy = await pointedPolicies(world, 'cel');
      img = worldImages(world);
    });
    after(async () => {
      await world?.stop();
    });

    const calls = (route: string): Promise<number> => providerCalls(world.provider, route);

    describe('workload variant', () => {
      let run: ApplyOutcome;
      before(async () => {
        const resources = join(world.dir, 'cel-workloads.yaml');
        await writeFile(resources, YAMLText(workloadMix(img)));
        run = await applyPolicies(world.dir, pinAndVerify(policy, 'workloads'), [resources], { env });
      });

      test('signed Pod: every list pinned (tag kept), validate-only image left alone, verified', () => {
        assertSignedPodPinnedAndVerified(run, world);
      });

      test('unsigned and untrusted images: denied with the provider reason', () => {
        const unsigned = run.resultFor(VERIFY, 'Pod', 'unsigned');
        assert.equal(unsigned.result, 'fail', run.cli.transcript);
        assert.match(unsigned.message, /team\/unsigned:1\.0@sha256:[0-9a-f]{64}: UNSIGNED:/);
        const untrusted = run.resultFor(VERIFY, 'Pod', 'untrusted');
        assert.equal(untrusted.result, 'fail', run.cli.transcript);
        assert.match(untrusted.message, /team\/untrusted:1\.0@sha256:[0-9a-f]{64}: UNTRUSTED:/);
      });

      test('tag not found (422) and registry unreachable (503): the MutatingPolicy errors (blocked)', () => {
        const missing = run.resultFor(PIN, 'Pod', 'missing');
        assert.equal(missing.result, 'error', run.cli.transcript);
        assert.match(missing.message, /sigpin provider answered HTTP 422: .*NOT_FOUND:/);
        const unreachable = run.resultFor(PIN, 'Pod', 'unreachable');
        assert.equal(unreachable.result, 'error', run.cli.transcript);
        assert.match(unreachable.message, /sigpin provider answered HTTP 503: REGISTRY_UNAVAILABLE:/);
      });

      test('Deployment and CronJob: pod templates pinned and verified', () => {
        assert.deepEqual(imagesOf(run.patchedResource('Deployment', 'web')), {
          containers: [pinned(img.app2, world.images.app2.digest)],
          initContainers: [pinned(img.init, world.images.init.digest)],
        });
        assert.equal(run.resultFor(VERIFY, 'Deployment', 'web').result, 'pass', run.cli.transcript);
        const bad = run.resultFor(VERIFY, 'Deployment', 'web-unsigned');
        assert.equal(bad.result, 'fail', run.cli.transcript);
        assert.match(bad.message, /UNSIGNED:/);
        assert.deepEqual(imagesOf(run.patchedResource('CronJob', 'nightly')).containers, [
          pinned(img.app1, world.images.app1.digest),
        ]);
      });
    });

    test('verify: a transient provider failure (systemError) denies', async () => {
      const resources = join(world.dir, 'cel-transient.yaml');
      await writeFile(resources, YAMLText([pod('flaky', { containers: [img.app1, img.unreachable] })]));
      const run = await applyPolicies(world.dir, [policy.get('workloads/verify-images') ?? ''], [resources], {
        env,
      });
      const verdict = run.resultFor(VERIFY, 'Pod', 'flaky');
      assert.equal(verdict.result, 'fail', run.cli.transcript);
      assert.match(verdict.message, /sigpin could not verify the images now: REGISTRY_UNAVAILABLE:/);
    });

    test('one batch call per object; no mutate call when every image is already pinned', async () => {
      const resources = join(world.dir, 'cel-batch.yaml');
      const done = pinned(img.app1, world.images.app1.digest);
      await writeFile(
        resources,
        YAMLText([
          pod('many', { containers: [img.app1, img.app2, img.legacy], initContainers: [img.init] }),
          pod('done', { containers: [done] }),
        ])
      );
      const mutateBefore = await calls('mutate');
      const verifyBefore = await calls('verify');
      const pin = await applyPolicies(world.dir, [policy.get('pods-only/pin-images') ?? ''], [resources], {
        env,
      });
      assert.equal(pin.resultFor(PIN, 'Pod', 'many').result, 'pass', pin.cli.transcript);
      assert.equal(await calls('mutate'), mutateBefore + 1, pin.cli.transcript);
      assert.deepEqual(imagesOf(pin.patchedResource('Pod', 'done')).containers ?? [done], [done]);
      const verify = await applyPolicies(
        world.dir,
        [policy.get('pods-only/verify-images') ?? ''],
        [resources],
        {
          env,
        }
      );
      assert.equal(verify.resultFor(VERIFY, 'Pod', 'many').result, 'pass', verify.cli.transcript);
      assert.equal(verify.resultFor(VERIFY, 'Pod', 'done').result, 'pass', verify.cli.transcript);
      assert.equal(await calls('verify'), verifyBefore + 2, verify.cli.transcript);
    });

    test('pods-only variant: Deployments are not matched', async () => {
      const resources = join(world.dir, 'cel-pods-only.yaml');
      await writeFile(resources, YAMLText(podsOnlyMix(img)));
      const run = await applyPolicies(world.dir, pinAndVerify(policy, 'pods-only'), [resources], { env });
      assert.deepEqual(imagesOf(run.patchedResource('Pod', 'solo')).containers, [
        pinned(img.app1, world.images.app1.digest),
      ]);
      assert.equal(run.resultFor(VERIFY, 'Pod', 'solo').result, 'pass', run.cli.transcript);
      assert.deepEqual(
        run.results.filter((r) => r.kind === 'Deployment'),
        [],
        run.cli.transcript
      );
    });

    test('UPDATE with the image unchanged (kyverno test): no pin call, verification skipped as unchanged', async () => {
      const dir = join(world.dir, 'cel-update');
      await mkdir(dir);
      const signed = pinned(img.app1, world.images.app1.digest);
      await writeFile(
        join(dir, 'pin.yaml'),
        await readFile(policy.get('pods-only/pin-images') ?? '', 'utf8')
      );
      await writeFile(
        join(dir, 'verify.yaml'),
        await readFile(policy.get('pods-only/verify-images') ?? '', 'utf8')
      );
      await writeFile(join(dir, 'resource.yaml'), YAMLText([pod('steady', { containers: [signed] })]));
      await writeFile(
        join(dir, 'values.yaml'),
        YAMLText([
          cliDocument('Values', 'values', {
            globalValues: { 'request.operation': 'UPDATE' },
          }),
        ])
      );
      await writeFile(
        join(dir, 'kyverno-test.yaml'),
        YAMLText([
          cliDocument('Test', 'cel-update', {
            policies: ['pin.yaml', 'verify.yaml'],
            resources: ['resource.yaml'],
            variables: 'values.yaml',
            results: [{ policy: VERIFY, resources: ['team/steady'], kind: 'Pod', result: 'pass' }],
          }),
        ])
      );
      const skipped = await metricValue(world.provider, 'sigpin_verify_skipped_total');
      const mutateBefore = await calls('mutate');
      const out = await runKyvernoTest(dir, { env });
      assert.equal(out.failed, 0, out.cli.transcript);
      assert.equal(out.passed, 1, out.cli.transcript);
      assert.equal(await calls('mutate'), mutateBefore, out.cli.transcript);
      assert.equal(
        await metricValue(world.provider, 'sigpin_verify_skipped_total'),
        skipped + 1,
        out.cli.transcript
      );
    });

    test('Kyverno v1.19.0 cannot call http.Client(caBundle).Post: why the shipped policies use http.Post', async () => {
      // If this starts failing, Kyverno fixed http.Client: switch the policies to http.Client(caBundle) (README).
      const probe = join(world.dir, 'cel-client-probe.yaml');
      const pem = world.caPem.trimEnd().split('\n').join('\n        ');
      await writeFile(
        probe,
        [
          'apiVersion: policies.kyverno.io/v1',
          'kind: ValidatingPolicy',
          'metadata: { name: client-probe }',
          'spec:',
          '  validationActions: [Deny]',
          '  matchConstraints:',
          '    resourceRules:',
          '      - { apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods] }',
          '  variables:',
          '    - name: answer',
          '      expression: |-',
          "        http.Client('''",
          `        ${pem}''').Post('${world.provider.url}/kyverno/v1/resolve',`,
          "          {'request': {'keys': ['x']}}, {'Content-Type': 'application/json'})",
          '  validations:',
          '    - expression: "variables.answer.statusCode == 200"',
          '',
        ].join('\n')
      );
      const resources = join(world.dir, 'cel-client-probe-pod.yaml');
      await writeFile(resources, YAMLText([pod('probe', { containers: [img.app1] })]));
      const run = await applyPolicies(world.dir, [probe], [resources]);
      const result = run.resultFor('client-probe', 'Pod', 'probe');
      assert.equal(result.result, 'error', run.cli.transcript);
      assert.match(result.message, /no such overload: Post\(libs\.mockAwareHTTPContext, string, map, map\)/);
    });
  }
);
