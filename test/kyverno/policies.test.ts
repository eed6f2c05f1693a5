/**
 * Static checks of the shipped Kyverno policies (no CLI needed): the contract every installation relies on
 * (fail closed, timeouts in Kyverno's range, the right routes, raw-PEM caBundle, no fail-open defaults) and that
 * the pods-only and workload variants differ only where they must.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { POLICIES_DIR, SHIPPED_BASE_URL, SHIPPED_CA_PLACEHOLDER } from './harness.ts';

type Doc = Record<string, unknown>;
const VARIANTS = ['pods-only', 'workloads'] as const;
const FILES = ['pin-images', 'verify-images'] as const;
const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'];

async function load(generation: string, variant: string, file: string): Promise<Doc> {
  const docs = YAML.parseAllDocuments(
    await readFile(join(POLICIES_DIR, generation, variant, `${file}.yaml`), 'utf8')
  );
  assert.equal(docs.length, 1, `${generation}/${variant}/${file}.yaml holds one policy`);
  const doc: unknown = docs[0]?.toJS();
  assert.ok(doc && typeof doc === 'object' && !Array.isArray(doc));
  return doc as Doc;
}

/** Every object under `value` (depth first), for finding apiCalls and expressions wherever they sit. */
function* walk(value: unknown): Generator<Doc> {
  if (Array.isArray(value)) for (const v of value) yield* walk(v);
  else if (value && typeof value === 'object') {
    yield value as Doc;
    for (const v of Object.values(value)) yield* walk(v);
  }
}

const get = (doc: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Doc)[k] : undefined), doc);

describe('ClusterPolicy generation (policies/kyverno/clusterpolicy)', () => {
  for (const variant of VARIANTS) {
    for (const file of FILES) {
      test(`${variant}/${file}: fails closed, admission only, timeout within 1-30 s`, async () => {
        const doc = await load('clusterpolicy', variant, file);
        assert.equal(doc.apiVersion, 'kyverno.io/v1');
        assert.equal(doc.kind, 'ClusterPolicy');
        assert.equal(get(doc, 'spec', 'background'), false);
        assert.equal(get(doc, 'spec', 'webhookConfiguration', 'failurePolicy'), 'Fail');
        const timeout = get(doc, 'spec', 'webhookConfiguration', 'timeoutSeconds');
        assert.ok(typeof timeout === 'number' && timeout >= 1 && timeout <= 30, `timeoutSeconds ${timeout}`);
        const autogen = get(doc, 'metadata', 'annotations', 'pod-policies.kyverno.io/autogen-controllers');
        if (variant === 'pods-only') assert.equal(autogen, 'none');
        else
          assert.equal(
            autogen,
            'DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,ReplicationController,CronJob'
          );
      });

      test(`${variant}/${file}: every container list, one POST per element to the right route`, async () => {
        const doc = await load('clusterpolicy', variant, file);
        const rules = get(doc, 'spec', 'rules') as Doc[];
        assert.equal(rules.length, 1);
        // Pods, and kubectl debug's subresource in an entry of its own (autogen rejects mixed kinds)
        assert.deepEqual(
          (get(rules[0], 'match', 'any') as Doc[]).map((m) => get(m, 'resources', 'kinds')),
          [['Pod'], ['Pod/ephemeralcontainers']]
        );
        const body = file === 'pin-images' ? get(rules[0], 'mutate') : get(rules[0], 'validate');
        const foreach = get(body, 'foreach') as Doc[];
        assert.deepEqual(
          foreach.map((f) => f.list),
          [
            'request.object.spec.containers',
            'request.object.spec.initContainers || `[]`',
            'request.object.spec.ephemeralContainers || `[]`',
          ]
        );
        const route = file === 'pin-images' ? '/kyverno/v1/mutate?failOnError=true' : '/kyverno/v1/verify';
        const calls = [...walk(doc)].filter((o) => 'apiCall' in o).map((o) => o.apiCall as Doc);
        assert.equal(calls.length, 3);
        for (const call of calls) {
          assert.equal(call.method, 'POST');
          assert.equal(get(call, 'service', 'url'), `${SHIPPED_BASE_URL}${route}`);
          // raw PEM (Kyverno), not base64 (Gatekeeper)
          assert.equal(get(call, 'service', 'caBundle'), SHIPPED_CA_PLACEHOLDER);
          // a default would turn a failed call into an allowed, unpinned or unverified image
          assert.equal('default' in call, false);
          assert.deepEqual(get(call, 'data'), [
            { key: 'apiVersion', value: 'externaldata.gatekeeper.sh/v1beta1' },
            { key: 'kind', value: 'ProviderRequest' },
            { key: 'request', value: { keys: ['{{ sigpinKey }}'] } },
          ]);
        }
        if (file === 'verify-images') {
          assert.equal(get(body, 'failureAction'), 'Enforce');
          assert.equal(get(body, 'allowExistingViolations'), false);
          for (const f of foreach) {
            const conditions = get(f, 'deny', 'conditions', 'any') as Doc[];
            assert.equal(conditions.length, 3, 'systemError, unanswered, item error');
          }
        } else {
          assert.deepEqual(
            foreach.map((f) => Object.keys(get(f, 'patchStrategicMerge', 'spec') as Doc)),
            CONTAINER_LISTS.map((l) => [l])
          );
        }
      });
    }

    test(`${variant}: verify keys carry the old image, pin keys only the namespace`, async () => {
      const pin = JSON.stringify(await load('clusterpolicy', variant, 'pin-images'));
      const verify = JSON.stringify(await load('clusterpolicy', variant, 'verify-images'));
      assert.doesNotMatch(pin, /old=/);
      for (const list of CONTAINER_LISTS) {
        assert.ok(
          verify.includes(`request.oldObject.spec.${list}[?name == '{{ element.name }}'].image | [0]`)
        );
      }
    });
  }

  for (const file of FILES) {
    test(`${file}: pods-only and workloads differ only in the autogen annotation`, async () => {
      const pods = await load('clusterpolicy', 'pods-only', file);
      const workloads = await load('clusterpolicy', 'workloads', file);
      const strip = (d: Doc): Doc => {
        const copy = structuredClone(d);
        delete (get(copy, 'metadata', 'annotations') as Doc)['pod-policies.kyverno.io/autogen-controllers'];
        return copy;
      };
      assert.deepEqual(strip(pods), strip(workloads));
    });
  }
});

describe('CEL generation (policies/kyverno/cel)', () => {
  for (const variant of VARIANTS) {
    for (const file of FILES) {
      test(`${variant}/${file}: fails closed, admission only, no autogen, timeout within 1-30 s`, async () => {
        const doc = await load('cel', variant, file);
        assert.equal(doc.apiVersion, 'policies.kyverno.io/v1');
        assert.equal(doc.kind, file === 'pin-images' ? 'MutatingPolicy' : 'ValidatingPolicy');
        assert.equal(get(doc, 'spec', 'failurePolicy'), 'Fail');
        const timeout = get(doc, 'spec', 'webhookConfiguration', 'timeoutSeconds');
        assert.ok(typeof timeout === 'number' && timeout >= 1 && timeout <= 30, `timeoutSeconds ${timeout}`);
        assert.equal(get(doc, 'spec', 'evaluation', 'background', 'enabled'), false);
        assert.deepEqual(get(doc, 'spec', 'autogen', 'podControllers', 'controllers'), []);
        if (file === 'verify-images') assert.deepEqual(get(doc, 'spec', 'validationActions'), ['Deny']);
      });

      test(`${variant}/${file}: one http.Post to the right route, status checked`, async () => {
        const doc = await load('cel', variant, file);
        const variables = get(doc, 'spec', 'variables') as Array<{ name: string; expression: string }>;
        const byName = new Map(variables.map((v) => [v.name, v.expression]));
        assert.equal(byName.get('sigpinURL'), `'${SHIPPED_BASE_URL}'`);
        const text = JSON.stringify(doc);
        const route = file === 'pin-images' ? '/kyverno/v1/mutate?failOnError=true' : '/kyverno/v1/verify';
        assert.equal(text.split('http.Post(').length - 1, 1);
        assert.ok(byName.get('answer')?.startsWith(`http.Post(variables.sigpinURL + '${route}',`));
        // a non-2xx answer is a value in CEL, not an error: the policy must look at it
        assert.match(text, /variables\.answer\.statusCode == 200/);
        for (const list of CONTAINER_LISTS) assert.ok(text.includes(`'${list}'`), list);
      });
    }
  }

  for (const file of FILES) {
    test(`${file}: pods-only and workloads differ only in the matched resources`, async () => {
      const pods = await load('cel', 'pods-only', file);
      const workloads = await load('cel', 'workloads', file);
      const rules = (d: Doc): Doc[] => get(d, 'spec', 'matchConstraints', 'resourceRules') as Doc[];
      assert.deepEqual(rules(pods), [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE', 'UPDATE'],
          resources: ['pods', 'pods/ephemeralcontainers'],
        },
      ]);
      assert.deepEqual(
        rules(workloads).flatMap((r) => r.resources),
        [
          'pods',
          'pods/ephemeralcontainers',
          'replicationcontrollers',
          'deployments',
          'statefulsets',
          'daemonsets',
          'replicasets',
          'jobs',
          'cronjobs',
        ]
      );
      const strip = (d: Doc): Doc => {
        const copy = structuredClone(d);
        delete (get(copy, 'spec', 'matchConstraints') as Doc).resourceRules;
        return copy;
      };
      assert.deepEqual(strip(pods), strip(workloads));
    });
  }
});
