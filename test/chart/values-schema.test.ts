/**
 * values.schema.json and the chart's cross-value checks reject wrong values with a message naming the value:
 * asserted on helm's own error output (helm template), so what a user sees is what is tested.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CHART, KUBE_VERSION, NAMESPACE, helm, requireChartTools } from './tools.ts';

const skip = requireChartTools();

/** [values, what helm's error must say] */
const BAD: [string, Record<string, unknown>, RegExp][] = [
  ['unknown engine', { engine: 'opa' }, /engine.*(must be one of|value must be).*gatekeeper.*kyverno/s],
  ['unknown mode', { mode: 'audit' }, /mode.*mutate.*validate-only/s],
  ['misspelt top-level value', { podOnly: true }, /additional propert(y|ies) .?podOnly.? not allowed/],
  ['unknown Kyverno generation', { kyverno: { generation: 'v2' } }, /generation.*clusterpolicy.*cel/s],
  [
    'Provider timeout 0',
    { gatekeeper: { timeouts: { resolve: 2, mutate: 0, verify: 3 } } },
    /timeouts\/mutate.*(minimum|>=|1)/s,
  ],
  [
    'image digest not sha256',
    { image: { repository: 'ghcr.io/sigpin/sigpin', digest: 'md5:abc' } },
    /digest.*(pattern|match)/s,
  ],
  [
    'TLS source unknown',
    { tls: { source: 'self-signed' } },
    /tls\/source.*generate.*cert-manager.*existing/s,
  ],
  [
    'caBundle not PEM',
    { tls: { source: 'existing', existingSecret: 'x', caBundle: 'LS0tLS1CRUdJTi==' } },
    /caBundle.*(pattern|match)/s,
  ],
  ['duration without unit', { cache: { digestTTL: '60' } }, /digestTTL.*(pattern|match)/s],
  [
    'registry with a scheme',
    { config: { registries: { allow: ['https://ghcr.io'] } } },
    /allow\/0.*(pattern|match)/s,
  ],
  [
    'policy without images',
    { config: { policies: [{ name: 'p' }] } },
    /policies\/0.*(missing|required).*images/s,
  ],
  [
    'redis URL without scheme',
    { redis: { externalURL: 'redis.example:6379' } },
    /externalURL.*(pattern|match)/s,
  ],
  ['root container', { securityContext: { runAsNonRoot: false } }, /runAsNonRoot.*(const|true)/s],
  ['replicas 0', { replicaCount: 0 }, /replicaCount.*(minimum|>=)/s],
  [
    'TokenReview with CEL policies',
    { engine: 'kyverno', kyverno: { generation: 'cel', auth: { enabled: true } } },
    /kyverno\.auth\.enabled requires kyverno\.generation=clusterpolicy/,
  ],
  ['existing TLS without Secret', { tls: { source: 'existing' } }, /existingSecret/],
  [
    'issuerRef without caBundle',
    { tls: { source: 'cert-manager', certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'corp' } } } },
    /tls\.caBundle .*is required/,
  ],
  [
    'Redis TLS without Redis',
    { redis: { tls: { enabled: true } } },
    /redis\.tls\.enabled applies to the bundled Redis/,
  ],
  [
    'PDB blocks drains',
    { replicaCount: 1 },
    /podDisruptionBudget\.minAvailable \(1\) must be below replicaCount \(1\)/,
  ],
  [
    'HPA min above max',
    { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 } },
    /autoscaling\.minReplicas \(5\) must not exceed autoscaling\.maxReplicas \(3\)/,
  ],
];

describe('chart: wrong values are rejected with a clear message', skip, () => {
  for (const [name, values, message] of BAD) {
    test(name, () => {
      const r = helm(['template', 'sigpin', CHART, '--namespace', NAMESPACE, ...KUBE_VERSION], values);
      assert.notEqual(r.status, 0, `helm accepted ${JSON.stringify(values)}`);
      assert.match(r.stderr, message);
    });
  }

  test('the default values are accepted (the schema is not simply rejecting everything)', () => {
    const r = helm(['template', 'sigpin', CHART, '--namespace', NAMESPACE, ...KUBE_VERSION], {});
    assert.equal(r.status, 0, r.stderr);
  });
});

/** Leaf paths of values.yaml (objects that are themselves a value, like resources, count as one leaf). */
function valuePaths(node: unknown, at = ''): string[] {
  const opaque = new Set([
    'resources',
    'podSecurityContext',
    'securityContext',
    'livenessProbe',
    'readinessProbe',
    'issuerRef',
    'timeouts',
  ]);
  const key = at.split('.').pop() ?? '';
  if (
    node &&
    typeof node === 'object' &&
    !Array.isArray(node) &&
    Object.keys(node).length > 0 &&
    !opaque.has(key)
  ) {
    return Object.entries(node).flatMap(([k, v]) => valuePaths(v, at ? `${at}.${k}` : k));
  }
  return [at];
}

describe('chart: values.yaml, values.schema.json and README.md agree', () => {
  const values = parseYaml(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as unknown;
  const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
  const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
  const paths = valuePaths(values);

  test('every value is in the README values table', () => {
    assert.ok(paths.length > 60, `${paths.length} values`);
    const missing = paths.filter((p) => !readme.includes(`| \`${p}\` |`));
    assert.deepEqual(missing, []);
  });

  test('every value has a schema (typos and unknown values are rejected)', () => {
    const missing = paths.filter((p) => {
      let node: SchemaNode | undefined = schema;
      for (const part of p.split('.')) {
        if (node?.$ref) node = schema.definitions?.[node.$ref.replace('#/definitions/', '')];
        node = node?.properties?.[part];
      }
      return node === undefined;
    });
    assert.deepEqual(missing, []);
  });
});

interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  definitions?: Record<string, SchemaNode>;
}
