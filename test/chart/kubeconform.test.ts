/**
 * The offline kubeconform schemas (scripts/setup-helm.sh, test/chart/tools/kube-schemas.ts) are not vacuous: they
 * reject unknown fields, wrong types and kinds without a schema, and accept what the API server accepts (labels on
 * custom resources, int-or-string ports).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { kindSuffix, toStrictJsonSchema } from './tools/kube-schemas.ts';
import { kubeconform, requireChartTools, type KubeconformResult } from './tools.ts';

const skip = requireChartTools();

function check(yaml: string): KubeconformResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigpin-kc-'));
  try {
    const file = path.join(dir, 'doc.yaml');
    writeFileSync(file, yaml);
    return kubeconform([file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const deployment = (container: string): string => `apiVersion: apps/v1
kind: Deployment
metadata: { name: d, labels: { app: d } }
spec:
  selector: { matchLabels: { app: d } }
  template:
    metadata: { labels: { app: d } }
    spec:
      containers:
        - ${container}
`;

describe('kubeconform with the offline schemas', skip, () => {
  test('a valid Deployment passes (int-or-string port name, quantities)', () => {
    const r = check(
      deployment(
        '{ name: c, image: x, ports: [{ name: https, containerPort: 8443 }], resources: { limits: { memory: 64Mi, cpu: 1 } }, livenessProbe: { httpGet: { path: /, port: https } } }'
      )
    );
    assert.ok(r.ok, r.problems.join('\n'));
  });

  test('an unknown container field is rejected (strict)', () => {
    const r = check(deployment('{ name: c, image: x, imagee: y }'));
    assert.ok(!r.ok);
    assert.match(r.problems.join('\n'), /additional properties 'imagee' not allowed/);
  });

  test('a wrong type is rejected', () => {
    const r = check(deployment('{ name: c, image: x, ports: [{ containerPort: "8443" }] }'));
    assert.ok(!r.ok);
    assert.match(r.problems.join('\n'), /containerPort/);
  });

  test('a custom resource: labels allowed, unknown spec fields rejected', () => {
    const provider = (extra: string): string => `apiVersion: externaldata.gatekeeper.sh/v1beta1
kind: Provider
metadata: { name: p, labels: { a: b }, annotations: { c: d } }
spec: { url: https://sigpin.sigpin.svc:8443/gatekeeper/v1/verify, timeout: 3, caBundle: Zm9v${extra} }
`;
    const good = check(provider(''));
    assert.ok(good.ok, good.problems.join('\n'));
    const bad = check(provider(', retries: 3'));
    assert.ok(!bad.ok);
    assert.match(bad.problems.join('\n'), /additional properties 'retries' not allowed/);
  });

  test('a kind without a schema is an error, never skipped', () => {
    const r = check('apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }\n');
    assert.ok(!r.ok);
    assert.equal(r.summary.skipped, 0);
  });
});

describe('schema conversion', () => {
  test("kindSuffix follows kubeconform's {{.KindSuffix}}", () => {
    assert.equal(kindSuffix('', 'v1'), '-v1');
    assert.equal(kindSuffix('apps', 'v1'), '-apps-v1');
    assert.equal(kindSuffix('rbac.authorization.k8s.io', 'v1'), '-rbac-v1');
  });

  test('objects with properties become strict, preserve-unknown-fields and int-or-string are honoured', () => {
    const out = toStrictJsonSchema({
      type: 'object',
      properties: {
        a: { type: 'object', properties: { b: { type: 'string' } } },
        free: {
          type: 'object',
          'x-kubernetes-preserve-unknown-fields': true,
          properties: { c: { type: 'string' } },
        },
        port: { 'x-kubernetes-int-or-string': true },
        maybe: { type: 'string', nullable: true },
      },
    }) as Record<string, Record<string, Record<string, unknown>>>;
    assert.equal(out.additionalProperties as unknown, false);
    assert.equal(out.properties?.a?.additionalProperties, false);
    assert.equal(out.properties?.free?.additionalProperties, undefined);
    assert.deepEqual(out.properties?.port?.anyOf, [{ type: 'integer' }, { type: 'string' }]);
    assert.deepEqual(out.properties?.maybe?.type, ['string', 'null']);
  });
});
