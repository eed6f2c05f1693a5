/**
 * charts/sigpin: helm lint and helm template for every values profile, kubeconform -strict on every rendered object
 * (Kubernetes schemas and the CRD schemas of Gatekeeper, Kyverno, cert-manager and prometheus-operator, made offline
 * by scripts/setup-helm.sh), and the properties the issue asks for asserted on the rendered objects.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../provider/src/config/index.ts';
import {
  CHART,
  KUBE_VERSION,
  NAMESPACE,
  ROOT,
  find,
  helm,
  parseObjects,
  renderChart,
  requireChartTools,
  validateRendered,
  type KubeObject,
} from './tools.ts';

const skip = requireChartTools();

/** Whether policies/kyverno ships the CEL generation yet (MutatingPolicy/ValidatingPolicy files). */
function shippedKinds(dir: string): Set<string> {
  const kinds = new Set<string>();
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !/\.ya?ml$/.test(e.name)) continue;
    const m = /^kind:\s*(\w+)/m.exec(readFileSync(path.join(e.parentPath, e.name), 'utf8'));
    if (m?.[1]) kinds.add(m[1]);
  }
  return kinds;
}
const celShipped = shippedKinds(path.join(ROOT, 'policies/kyverno')).has('MutatingPolicy');

/** Profiles: the list (Gatekeeper, Kyverno ClusterPolicy, Kyverno CEL, Redis on/off, cert-manager on/off,
 * validate-only, podsOnly) plus the TLS and RBAC variants. */
export const PROFILES: Record<string, Record<string, unknown>> = {
  'gatekeeper (defaults)': {},
  'gatekeeper validate-only, verify timeout 7 s': {
    mode: 'validate-only',
    gatekeeper: { timeouts: { verify: 7 } },
  },
  'gatekeeper podsOnly, CREATE-only pinning': { podsOnly: true, gatekeeper: { mutateOnCreateOnly: true } },
  'kyverno clusterpolicy with TokenReview auth and pull secrets': {
    engine: 'kyverno',
    kyverno: { generation: 'clusterpolicy', auth: { enabled: true } },
    pullSecrets: { enabled: true },
  },
  'kyverno clusterpolicy podsOnly validate-only': {
    engine: 'kyverno',
    podsOnly: true,
    mode: 'validate-only',
  },
  ...(celShipped
    ? {
        'kyverno cel': { engine: 'kyverno', kyverno: { generation: 'cel' } },
        'kyverno cel podsOnly': { engine: 'kyverno', kyverno: { generation: 'cel' }, podsOnly: true },
      }
    : {}),
  'redis bundled with TLS, ServiceMonitor, HPA': {
    redis: { enabled: true, tls: { enabled: true }, required: true },
    serviceMonitor: { enabled: true },
    autoscaling: { enabled: true },
  },
  'redis external URL': { redis: { externalURL: 'rediss://:secret@redis.example.internal:6380' } },
  'cert-manager with the chart CA': { tls: { source: 'cert-manager' } },
  'cert-manager with a ClusterIssuer': {
    tls: { source: 'cert-manager', certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } } },
    caBundleFromTest: true,
  },
  'existing TLS Secret': { tls: { source: 'existing', existingSecret: 'my-tls' }, caBundleFromTest: true },
  'pull secrets in listed namespaces, key from a Secret, no NetworkPolicy, no PDB': {
    pullSecrets: { enabled: true, namespaces: ['team-a', 'team-b'] },
    networkPolicy: { enabled: false },
    podDisruptionBudget: { enabled: false },
    config: {
      registries: {
        allow: ['ghcr.io', 'registry.example.com:5000'],
        insecure: ['registry.example.com:5000'],
      },
      authorities: [
        {
          name: 'release',
          key: { secretRef: { namespace: 'sigpin-keys', name: 'cosign-pub', key: 'cosign.pub' } },
        },
        {
          name: 'ci',
          keyless: {
            trustedRoot: '/etc/sigpin/trust/trusted_root.json',
            identities: [
              {
                issuer: 'https://token.actions.githubusercontent.com',
                subjectRegExp: '^https://github.com/acme/',
              },
            ],
          },
        },
      ],
      policies: [
        { name: 'acme', images: ['ghcr.io/acme/**'], authorities: ['release', 'ci'] },
        { name: 'rest', images: ['**'], verify: false, mode: 'validate-only' },
      ],
      trustFiles: {
        'trusted_root.json': '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}',
      },
    },
    installPolicies: false,
  },
  'config from an existing ConfigMap, HMAC key from an existing Secret': {
    config: { existingConfigMap: 'my-sigpin-config' },
    cache: { hmacKey: { existingSecret: 'my-hmac' } },
  },
  'installPolicies off, external engine namespaces': {
    installPolicies: false,
    gatekeeper: { namespace: 'opa' },
    excludedNamespaces: ['kube-system', 'monitoring'],
  },
};

/** A CA PEM for the profiles that bring their own CA (any valid certificate will do for rendering). */
let testCA = '';
async function caPem(): Promise<string> {
  if (!testCA) {
    const { createCertificateAuthority } = await import('../../provider/src/server/certificates.ts');
    testCA = (await createCertificateAuthority('sigpin chart test CA')).certPem;
  }
  return testCA;
}

async function valuesOf(profile: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { caBundleFromTest, ...values } = profile;
  if (!caBundleFromTest) return values;
  const tls = (values.tls ?? {}) as Record<string, unknown>;
  return { ...values, tls: { ...tls, caBundle: await caPem() } };
}

function podSpec(deploy: KubeObject): {
  securityContext: Record<string, unknown>;
  containers: Record<string, unknown>[];
  volumes: Record<string, unknown>[];
  topologySpreadConstraints?: unknown[];
  automountServiceAccountToken?: boolean;
} {
  return (deploy.spec as { template: { spec: ReturnType<typeof podSpec> } }).template.spec;
}

function configOf(objects: KubeObject[]): Record<string, unknown> {
  const secret = find(objects, 'Secret', 'sigpin-config') as KubeObject & {
    stringData: Record<string, string>;
  };
  return parseYaml(secret.stringData['config.yaml'] ?? '') as Record<string, unknown>;
}

function caOf(objects: KubeObject[]): string {
  const cm = find(objects, 'ConfigMap', 'sigpin-ca') as KubeObject & { data: Record<string, string> };
  return cm.data['ca.crt'] ?? '';
}

/** Every string in a document, with its path, for "which strings hold a CA / a URL" assertions. */
function strings(node: unknown, at = ''): { path: string; value: string }[] {
  if (typeof node === 'string') return [{ path: at, value: node }];
  if (Array.isArray(node)) return node.flatMap((n, i) => strings(n, `${at}[${i}]`));
  if (typeof node === 'object' && node !== null) {
    return Object.entries(node).flatMap(([k, v]) => strings(v, at ? `${at}.${k}` : k));
  }
  return [];
}

describe('chart: helm lint', skip, () => {
  test('helm lint --strict passes with the default values and with the Kyverno values', () => {
    const profiles = [
      {},
      { engine: 'kyverno' },
      ...(celShipped ? [{ engine: 'kyverno', kyverno: { generation: 'cel' } }] : []),
    ];
    for (const values of profiles) {
      const r = helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, ...KUBE_VERSION], values);
      assert.equal(r.status, 0, `helm lint ${JSON.stringify(values)}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });
});

for (const [name, profile] of Object.entries(PROFILES)) {
  describe(`chart profile: ${name}`, skip, () => {
    let rendered: { text: string; objects: KubeObject[] } | undefined;
    const render = async (): Promise<{ text: string; objects: KubeObject[] }> =>
      (rendered ??= renderChart(await valuesOf(profile)));

    test('helm lint passes and every rendered object validates with kubeconform -strict', async () => {
      const lint = helm(
        ['lint', '--strict', CHART, '--namespace', NAMESPACE, ...KUBE_VERSION],
        await valuesOf(profile)
      );
      assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);
      const { text, objects } = await render();
      assert.ok(objects.length >= 8, `only ${objects.length} objects rendered`);
      const result = validateRendered(text, objects);
      assert.ok(result.ok, `kubeconform:\n${result.problems.join('\n')}\n${JSON.stringify(result.summary)}`);
      assert.equal(result.summary.valid, objects.length);
    });

    test('the Deployment is hardened: non-root, read-only root FS, no escalation, no capabilities, seccomp', async () => {
      const { objects } = await render();
      const spec = podSpec(find(objects, 'Deployment', 'sigpin'));
      assert.equal(spec.securityContext.runAsNonRoot, true);
      assert.deepEqual(spec.securityContext.seccompProfile, { type: 'RuntimeDefault' });
      const [container] = spec.containers;
      assert.ok(container);
      const sc = container.securityContext as Record<string, unknown>;
      assert.equal(sc.runAsNonRoot, true);
      assert.equal(sc.readOnlyRootFilesystem, true);
      assert.equal(sc.allowPrivilegeEscalation, false);
      assert.equal(sc.privileged, false);
      assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
      assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' });
      const resources = container.resources as { requests?: object; limits?: { memory?: string } };
      assert.ok(resources.requests && resources.limits?.memory, 'requests and a memory limit');
      assert.deepEqual((container.livenessProbe as { httpGet: unknown }).httpGet, {
        path: '/healthz',
        port: 'https',
        scheme: 'HTTPS',
      });
      assert.deepEqual((container.readinessProbe as { httpGet: unknown }).httpGet, {
        path: '/readyz',
        port: 'https',
        scheme: 'HTTPS',
      });
      assert.deepEqual(container.args, ['serve', '--config', '/etc/sigpin/config.yaml']);
      assert.ok((spec.topologySpreadConstraints ?? []).length >= 1, 'topology spread');
      // only the public ca.crt of Gatekeeper's Secret is mounted, never its keys
      const gkVolume = spec.volumes.find((v) => v.name === 'gatekeeper-ca') as
        { secret: { items: { key: string }[] } } | undefined;
      if (gkVolume)
        assert.deepEqual(
          gkVolume.secret.items.map((i) => i.key),
          ['ca.crt']
        );
      // every other workload in the chart (the bundled Redis) is hardened the same way
      for (const deploy of objects.filter((o) => o.kind === 'Deployment')) {
        const s = podSpec(deploy);
        assert.equal(s.securityContext.runAsNonRoot, true, deploy.metadata.name);
        for (const c of s.containers) {
          const csc = c.securityContext as Record<string, unknown>;
          assert.equal(csc.readOnlyRootFilesystem, true, `${deploy.metadata.name} read-only root`);
          assert.equal(csc.allowPrivilegeEscalation, false, `${deploy.metadata.name} escalation`);
          assert.deepEqual(csc.capabilities, { drop: ['ALL'] });
        }
      }
    });

    test('the rendered config file is accepted by the provider config schema', async () => {
      const { objects } = await render();
      const volumes = podSpec(find(objects, 'Deployment', 'sigpin')).volumes as {
        name: string;
        configMap?: { name: string };
        secret?: { secretName: string };
      }[];
      const existing = (profile as { config?: { existingConfigMap?: string } }).config?.existingConfigMap;
      const hmacSecret = (profile as { cache?: { hmacKey?: { existingSecret?: string } } }).cache?.hmacKey
        ?.existingSecret;
      assert.equal(
        volumes.find((v) => v.name === 'cache-hmac')?.secret?.secretName,
        hmacSecret ?? 'sigpin-cache-hmac'
      );
      assert.equal(
        objects.some((o) => o.metadata.name === 'sigpin-cache-hmac'),
        hmacSecret === undefined
      );
      if (existing) {
        // the user's ConfigMap is the whole config file: nothing of the chart's own is rendered
        assert.deepEqual(volumes.find((v) => v.name === 'config')?.configMap, { name: existing });
        assert.ok(!objects.some((o) => o.metadata.name === 'sigpin-config'), 'no config Secret');
        return;
      }
      assert.equal(volumes.find((v) => v.name === 'config')?.secret?.secretName, 'sigpin-config');
      const config = parseConfig(configOf(objects), 'rendered config');
      assert.equal(config.server.tls.certFile, '/etc/sigpin/tls/tls.crt');
      assert.equal(config.cache.hmacKeyFile, '/etc/sigpin/cache/hmac-key');
      const values = profile as { engine?: string; redis?: { enabled?: boolean; externalURL?: string } };
      if (values.redis?.externalURL) assert.equal(config.cache.url, values.redis.externalURL);
      else if (values.redis?.enabled)
        assert.match(config.cache.url, /^rediss:\/\/:[A-Za-z0-9]{48}@sigpin-redis\./);
      else assert.equal(config.cache.url, 'memory://');
      if ((values.engine ?? 'gatekeeper') === 'gatekeeper') {
        assert.equal(config.server.tls.clientCAFile, '/etc/sigpin/gatekeeper-ca/ca.crt');
        const gkNs =
          (profile as { gatekeeper?: { namespace?: string } }).gatekeeper?.namespace ?? 'gatekeeper-system';
        assert.deepEqual(config.server.tls.clientNames, [`gatekeeper-webhook-service.${gkNs}.svc`]);
      } else {
        assert.equal(config.server.tls.clientCAFile, undefined);
      }
    });

    test('RBAC is least privilege: only what the enabled features need', async () => {
      const { objects } = await render();
      type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
      const roles = objects.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole') as (KubeObject & {
        rules: Rule[];
      })[];
      const v = profile as {
        engine?: string;
        pullSecrets?: { enabled?: boolean; namespaces?: string[] };
        kyverno?: { auth?: { enabled?: boolean } };
        config?: { authorities?: { key?: { secretRef?: { namespace: string; name: string } } }[] };
      };
      const expected: string[] = [];
      if (v.pullSecrets?.enabled) {
        if (v.pullSecrets.namespaces?.length) {
          for (const ns of v.pullSecrets.namespaces) expected.push(`Role ${ns} get secrets,serviceaccounts`);
        } else expected.push('ClusterRole - get secrets,serviceaccounts');
      }
      for (const a of v.config?.authorities ?? []) {
        const ref = a.key?.secretRef;
        if (ref) expected.push(`Role ${ref.namespace} get secrets [${ref.name}]`);
      }
      if (v.engine === 'kyverno' && v.kyverno?.auth?.enabled)
        expected.push('ClusterRole - create tokenreviews');
      const actual = roles.flatMap((r) =>
        r.rules.map(
          (rule) =>
            `${r.kind} ${r.metadata.namespace ?? '-'} ${rule.verbs.join(',')} ${rule.resources.join(',')}` +
            (rule.resourceNames ? ` [${rule.resourceNames.join(',')}]` : '')
        )
      );
      assert.deepEqual(actual.sort(), expected.sort());
      for (const r of roles)
        for (const rule of r.rules) assert.ok(!rule.verbs.includes('*') && !rule.resources.includes('*'));
      const bindings = objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding');
      assert.equal(bindings.length, roles.length, 'one binding per role');
      const deploy = podSpec(find(objects, 'Deployment', 'sigpin'));
      assert.equal(
        deploy.automountServiceAccountToken,
        expected.length > 0,
        'API token mounted only when used'
      );
    });

    test('the NetworkPolicy admits only the engine namespace and limits egress', async () => {
      const { objects } = await render();
      const np = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'sigpin') as
        | (KubeObject & {
            spec: {
              ingress: { from: { namespaceSelector?: { matchLabels: Record<string, string> } }[] }[];
              egress: { ports: { port: number | string; protocol: string }[]; to?: unknown[] }[];
            };
          })
        | undefined;
      const v = profile as {
        engine?: string;
        networkPolicy?: { enabled?: boolean };
        gatekeeper?: { namespace?: string };
      };
      if (v.networkPolicy?.enabled === false) {
        assert.equal(np, undefined);
        return;
      }
      assert.ok(np, 'NetworkPolicy rendered');
      const engineNs =
        (v.engine ?? 'gatekeeper') === 'gatekeeper'
          ? (v.gatekeeper?.namespace ?? 'gatekeeper-system')
          : 'kyverno';
      assert.deepEqual(np.spec.ingress[0]?.from, [
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': engineNs } } },
      ]);
      const ports = np.spec.egress.flatMap((e) => e.ports.map((p) => `${p.protocol}/${p.port}`)).sort();
      assert.deepEqual([...new Set(ports)].filter((p) => !['TCP/6379'].includes(p)).sort(), [
        'TCP/443',
        'TCP/53',
        'TCP/6443',
        'UDP/53',
      ]);
    });

    test('policies leave the release namespace, the engine namespace and excludedNamespaces alone', async () => {
      const { objects } = await render();
      const v = profile as {
        engine?: string;
        excludedNamespaces?: string[];
        gatekeeper?: { namespace?: string };
      };
      const engineNs =
        (v.engine ?? 'gatekeeper') === 'gatekeeper'
          ? (v.gatekeeper?.namespace ?? 'gatekeeper-system')
          : 'kyverno';
      const expected = [NAMESPACE, engineNs, ...(v.excludedNamespaces ?? ['kube-system'])];
      let checked = 0;
      for (const o of objects) {
        const spec = o.spec as {
          match?: { excludedNamespaces?: string[] };
          rules?: { exclude?: { any?: { resources?: { namespaces?: string[] } }[] } }[];
          matchConstraints?: { namespaceSelector?: unknown };
        };
        if (o.kind === 'Assign' || o.kind === 'SigpinVerifiedImages') {
          assert.deepEqual(spec.match?.excludedNamespaces, expected, `${o.kind} ${o.metadata.name}`);
          checked++;
        }
        if (o.kind === 'MutatingPolicy' || o.kind === 'ValidatingPolicy') {
          const selector = (
            o.spec as { matchConstraints?: { namespaceSelector?: { matchExpressions?: unknown[] } } }
          ).matchConstraints?.namespaceSelector?.matchExpressions;
          assert.deepEqual(
            selector,
            [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: expected }],
            `${o.kind} ${o.metadata.name}: namespaceSelector`
          );
          checked++;
        }
        if (o.kind === 'ClusterPolicy') {
          for (const rule of spec.rules ?? []) {
            const lists = (rule.exclude?.any ?? []).map((a) => a.resources?.namespaces).filter((n) => n);
            assert.deepEqual(lists, [expected], `${o.metadata.name}: rule exclude`);
            checked++;
          }
        }
      }
      const policies = objects.some((o) =>
        ['Provider', 'ClusterPolicy', 'MutatingPolicy', 'ValidatingPolicy'].includes(o.kind)
      );
      if (policies) assert.ok(checked > 0, 'exclusions checked');
    });

    test('policy objects trust the one CA of the serving certificate and call this release', async () => {
      const { objects } = await render();
      const ca = caOf(objects).trim();
      assert.match(ca, /^-----BEGIN CERTIFICATE-----/);
      const caCert = new X509Certificate(ca);
      assert.ok(caCert.ca, 'the CA ConfigMap holds a CA certificate');
      const tlsSecret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'sigpin-tls') as
        (KubeObject & { data: Record<string, string> }) | undefined;
      if (tlsSecret) {
        const leaf = new X509Certificate(Buffer.from(tlsSecret.data['tls.crt'] ?? '', 'base64'));
        assert.ok(leaf.verify(caCert.publicKey), 'serving certificate signed by the CA in the policies');
        assert.ok(leaf.checkHost('sigpin.sigpin-system.svc'), `SANs: ${leaf.subjectAltName}`);
        assert.equal(
          Buffer.from(tlsSecret.data['ca.crt'] ?? '', 'base64')
            .toString()
            .trim(),
          ca
        );
      }
      const policyKinds = new Set(['Provider', 'ClusterPolicy', 'MutatingPolicy', 'ValidatingPolicy']);
      const policies = objects.filter((o) => policyKinds.has(o.kind));
      const mode = (profile as { mode?: string }).mode ?? 'mutate';
      const mutating = policies.filter(
        (p) => /mutate/.test(JSON.stringify(p)) && p.kind !== 'ValidatingPolicy'
      );
      if (mode === 'validate-only')
        assert.deepEqual(
          mutating.map((p) => p.metadata.name),
          [],
          'nothing pins'
        );
      assert.equal(
        objects.some((o) => o.kind === 'Assign'),
        mode === 'mutate' && policies.some((p) => p.kind === 'Provider')
      );
      if ((profile as { installPolicies?: boolean }).installPolicies === false) {
        assert.deepEqual(policies, []);
        return;
      }
      assert.ok(policies.length >= 1, 'policy objects rendered');
      for (const policy of policies) {
        const all = strings(policy);
        const leftovers = all.filter((s) =>
          /REPLACE|sigpin-system\.svc:8443\/(?!gatekeeper|kyverno)/.test(s.value)
        );
        assert.deepEqual(leftovers, [], `${policy.kind} ${policy.metadata.name}: placeholders left`);
        const urls = all.filter((s) => /https:\/\/[^\s"']+\.svc/.test(s.value));
        assert.ok(urls.length > 0, `${policy.kind} ${policy.metadata.name} names sigpin's URL`);
        for (const u of urls)
          assert.match(u.value, /https:\/\/sigpin\.sigpin-system\.svc:8443(\/|'|$)/, u.path);
        if (policy.kind === 'Provider') {
          const spec = policy.spec as { caBundle: string; timeout: number; url: string };
          assert.equal(
            Buffer.from(spec.caBundle, 'base64').toString().trim(),
            ca,
            'Provider caBundle: base64 PEM'
          );
          assert.ok(spec.timeout >= 1);
          const route = /\/gatekeeper\/v1\/(\w+)$/.exec(spec.url)?.[1] ?? '';
          const timeouts = (profile as { gatekeeper?: { timeouts?: Record<string, number> } }).gatekeeper
            ?.timeouts;
          if (timeouts?.[route] !== undefined)
            assert.equal(spec.timeout, timeouts[route], `${route} timeout`);
        } else {
          const bundles = all.filter((s) => s.value.includes('-----BEGIN CERTIFICATE-----'));
          // ClusterPolicy apiCalls carry the CA; the CEL policies call http.Post and rely on Kyverno's trust store
          // (Kyverno 1.19's http.Client(caBundle) is unusable), which the chart feeds with ConfigMap sigpin-ca.
          if (policy.kind === 'ClusterPolicy') {
            assert.ok(bundles.length > 0, `${policy.kind} ${policy.metadata.name} carries the CA`);
          }
          // raw PEM: as is in a caBundle, with escaped newlines inside a CEL string literal
          for (const b of bundles) {
            assert.ok(b.value.replaceAll('\\n', '\n').includes(ca), `${b.path}: raw PEM of the chart's CA`);
          }
        }
      }
    });
  });
}

describe('chart: Kyverno CEL generation', skip, () => {
  test(
    celShipped
      ? 'policies/kyverno ships the CEL policies (rendered by the profiles above)'
      : 'until policies/kyverno ships MutatingPolicy/ValidatingPolicy files, the chart refuses generation cel clearly',
    () => {
      const r = helm(['template', 'sigpin', CHART, '--namespace', NAMESPACE, ...KUBE_VERSION], {
        engine: 'kyverno',
        kyverno: { generation: 'cel' },
      });
      if (celShipped) assert.equal(r.status, 0, r.stderr);
      else {
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /no Kyverno MutatingPolicy\/ValidatingPolicy policies for workloads found/);
      }
    }
  );
});

/** A CEL ValidatingPolicy shaped like protocols.md 2.7 (the CA inline in http.Client, lines as `\n` escapes). */
const FAKE_CEL_POLICY = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: sigpin-verify-images
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["pods"]
  variables:
    - name: resp
      expression: >-
        http.Client("-----BEGIN CERTIFICATE-----\\nREPLACE-ME\\n-----END CERTIFICATE-----\\n").Post(
        "https://sigpin.sigpin.svc:8443/kyverno/v1/verify",
        {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
        "request": {"keys": object.spec.containers.map(c, c.image)}}, {"Content-Type": "application/json"})
  validations:
    - expression: "variables.resp.statusCode == 200 && !has(variables.resp.response.systemError)"
      message: sigpin failed
`;

describe('chart: CEL policy rendering mechanics (fake CEL policy file in a copy of the chart)', skip, () => {
  test('the CA goes into the http.Client string literal with escaped newlines, and the URL is this release', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigpin-chart-copy-'));
    try {
      const chart = path.join(dir, 'sigpin');
      cpSync(CHART, chart, { recursive: true, verbatimSymlinks: true });
      rmSync(path.join(chart, 'files/policies'));
      cpSync(path.join(ROOT, 'policies'), path.join(chart, 'files/policies'), { recursive: true });
      // only the fake CEL policy: the shipped CEL files are checked by the profiles above
      rmSync(path.join(chart, 'files/policies/kyverno/cel'), { recursive: true, force: true });
      mkdirSync(path.join(chart, 'files/policies/kyverno/cel-fake/workloads'), { recursive: true });
      writeFileSync(
        path.join(chart, 'files/policies/kyverno/cel-fake/workloads/verify.yaml'),
        FAKE_CEL_POLICY
      );
      const r = helm(['template', 'sigpin', chart, '--namespace', NAMESPACE, ...KUBE_VERSION], {
        engine: 'kyverno',
        kyverno: { generation: 'cel' },
        mode: 'validate-only',
      });
      assert.equal(r.status, 0, r.stderr);
      const objects = parseObjects(r.stdout);
      assert.deepEqual(
        objects.filter((o) => /^(Cluster|Mutating|Validating)Policy$/.test(o.kind)).map((o) => o.kind),
        ['ValidatingPolicy'],
        'only the CEL kinds, no ClusterPolicy'
      );
      const policy = find(objects, 'ValidatingPolicy');
      const variables = (policy.spec as { variables: { name: string; expression: string }[] }).variables;
      const expression = variables.find((v) => v.name === 'resp')?.expression ?? '';
      const literal = /http\.Client\("([^"]*)"\)/.exec(expression)?.[1] ?? '';
      assert.ok(
        literal.startsWith('-----BEGIN CERTIFICATE-----\\n'),
        `one CEL line, newlines escaped: ${literal}`
      );
      assert.equal(
        literal.replaceAll('\\n', '\n').trim(),
        caOf(objects).trim(),
        'the CEL literal holds the chart CA'
      );
      assert.match(
        JSON.stringify(policy.spec),
        /https:\/\/sigpin\.sigpin-system\.svc:8443\/kyverno\/v1\/verify/
      );
      const result = validateRendered(r.stdout, objects);
      assert.ok(result.ok, result.problems.join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chart: packaged chart (what a chart repository serves)', skip, () => {
  test('helm package resolves files/policies; the .tgz renders the same objects, without the Rego sources', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigpin-package-'));
    try {
      const pkg = helm(['package', CHART, '--destination', dir]);
      assert.equal(pkg.status, 0, pkg.stderr);
      const tgz = path.join(dir, 'sigpin-0.1.0.tgz');
      const list = spawnSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).stdout.split('\n');
      assert.ok(
        list.includes('sigpin/files/policies/gatekeeper/template/constrainttemplate.yaml'),
        'policies packaged'
      );
      assert.ok(!list.some((f) => f.endsWith('.rego')), 'no Rego sources');
      for (const values of [{}, { engine: 'kyverno' }]) {
        const fromDir = renderChart(values).objects.map((o) => `${o.kind}/${o.metadata.name}`);
        const r = helm(['template', 'sigpin', tgz, '--namespace', NAMESPACE, ...KUBE_VERSION], values);
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(
          parseObjects(r.stdout).map((o) => `${o.kind}/${o.metadata.name}`),
          fromDir
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
