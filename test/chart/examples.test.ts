/**
 * Every YAML file in examples/ is validated, by what it is:
 *   values*.yaml               sigpin chart values: helm template with them, kubeconform -strict on the output, and
 *                              the rendered config accepted by the provider's config schema
 *   gatekeeper-values.yaml     values for Gatekeeper's own chart (from its module): rendered, webhooks fail closed
 *   github-workflow/*.yml      GitHub Actions workflows: structure, and every signing step signs a digest
 *   anything else              Kubernetes / CRD objects: kubeconform -strict (Kubernetes, Flux, Argo CD schemas)
 * A YAML file that fits none of these fails the test, so no example escapes validation.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../provider/src/config/index.ts';
import {
  KUBE_VERSION,
  ROOT,
  find,
  helm,
  kubeconform,
  parseObjects,
  renderChart,
  requireChartTools,
  tools,
  validateRendered,
  type KubeObject,
} from './tools.ts';

const skip = requireChartTools();
const EXAMPLES = path.join(ROOT, 'examples');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(e.name) ? [full] : [];
  });
}

type Kind = 'chart-values' | 'gatekeeper-values' | 'workflow' | 'manifests';

function kindOf(file: string): Kind {
  const base = path.basename(file);
  if (base === 'gatekeeper-values.yaml') return 'gatekeeper-values';
  if (/^values.*\.ya?ml$/.test(base)) return 'chart-values';
  if (path.basename(path.dirname(file)) === 'github-workflow') return 'workflow';
  return 'manifests';
}

const files = yamlFiles(EXAMPLES);
const rel = (f: string): string => path.relative(ROOT, f);

/** Trust files an example passes with --set-file: a stand-in with the same name so the chart renders. */
function withTrustFiles(values: Record<string, unknown>): Record<string, unknown> {
  const text = JSON.stringify(values);
  const names = [...text.matchAll(/\/etc\/sigpin\/trust\/([-._a-zA-Z0-9]+)/g)].map((m) => m[1] as string);
  if (names.length === 0) return values;
  const config = (values.config ?? {}) as Record<string, unknown>;
  const trustFiles = Object.fromEntries(names.map((n) => [n, `stand-in for ${n}`]));
  return { ...values, config: { ...config, trustFiles } };
}

describe('examples: every YAML file is validated', skip, () => {
  test('examples/ has the five walkthroughs, each with a README and YAML', () => {
    for (const dir of ['quickstart', 'flux', 'argocd', 'keyed-cosign', 'keyless']) {
      assert.ok(
        readFileSync(path.join(EXAMPLES, dir, 'README.md'), 'utf8').includes('```sh'),
        `${dir}: commands`
      );
      assert.ok(
        files.some((f) => f.startsWith(path.join(EXAMPLES, dir) + path.sep)),
        `${dir}: YAML`
      );
    }
  });

  test('Kubernetes, Flux and Argo CD objects pass kubeconform -strict', () => {
    const manifests = files.filter((f) => kindOf(f) === 'manifests');
    assert.ok(manifests.length >= 7, manifests.map(rel).join(', '));
    for (const f of manifests) {
      const docs = parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as unknown);
      for (const d of docs) {
        assert.ok(
          d && typeof d === 'object' && 'kind' in d && 'apiVersion' in d,
          `${rel(f)}: not a Kubernetes object`
        );
      }
    }
    const result = kubeconform(manifests);
    assert.ok(result.ok, `kubeconform:\n${result.problems.join('\n')}\n${JSON.stringify(result.summary)}`);
    assert.ok(result.summary.valid >= manifests.length);
  });

  for (const f of files.filter((x) => kindOf(x) === 'chart-values')) {
    test(`${rel(f)}: the chart renders with it and the output validates`, () => {
      const values = withTrustFiles(parseYaml(readFileSync(f, 'utf8')) as Record<string, unknown>);
      const namespace = values.engine === 'kyverno' ? 'sigpin' : 'gatekeeper-system';
      const { text, objects } = renderChart(values, namespace);
      const result = validateRendered(text, objects);
      assert.ok(result.ok, `kubeconform:\n${result.problems.join('\n')}`);
      const secret = find(objects, 'Secret', 'sigpin-config') as KubeObject & {
        stringData: Record<string, string>;
      };
      const config = parseConfig(parseYaml(secret.stringData['config.yaml'] ?? ''), rel(f));
      assert.ok(config.policies.length >= 1);
      if (values.engine === 'kyverno') assert.ok(objects.some((o) => o.kind === 'ClusterPolicy'));
      else assert.ok(objects.some((o) => o.kind === 'Provider'));
    });
  }

  test('gatekeeper-values.yaml renders Gatekeeper 3.23.0 with fail-closed webhooks above the Provider timeouts', () => {
    const f = files.find((x) => kindOf(x) === 'gatekeeper-values');
    assert.ok(f, 'examples/quickstart/gatekeeper-values.yaml');
    const values = parseYaml(readFileSync(f, 'utf8')) as Record<string, unknown>;
    const r = helm(
      ['template', 'gatekeeper', tools.gatekeeperChart, '--namespace', 'gatekeeper-system', ...KUBE_VERSION],
      values
    );
    assert.equal(r.status, 0, r.stderr);
    const objects = parseObjects(r.stdout);
    const webhooks = objects
      .filter((o) => o.kind === 'ValidatingWebhookConfiguration' || o.kind === 'MutatingWebhookConfiguration')
      .flatMap((o) =>
        (
          (o as KubeObject & { webhooks: { name: string; failurePolicy: string; timeoutSeconds: number }[] })
            .webhooks ?? []
        )
          .filter((w) => w.name === 'validation.gatekeeper.sh' || w.name === 'mutation.gatekeeper.sh')
          .map((w) => ({ kind: o.kind, ...w }))
      );
    assert.equal(webhooks.length, 2, JSON.stringify(webhooks));
    // the shipped Providers: mutate 3 s, verify 5 s; the webhook must outlast them
    const providerTimeout = { mutation: 3, validation: 5 };
    for (const w of webhooks) {
      assert.equal(w.failurePolicy, 'Fail', w.name);
      const limit = w.name.startsWith('mutation') ? providerTimeout.mutation : providerTimeout.validation;
      assert.ok(w.timeoutSeconds > limit, `${w.name} timeout ${w.timeoutSeconds}s must exceed ${limit}s`);
    }
  });

  for (const f of files.filter((x) => kindOf(x) === 'workflow')) {
    test(`${rel(f)}: a GitHub Actions workflow that signs a digest`, () => {
      const wf = parseYaml(readFileSync(f, 'utf8')) as {
        on?: unknown;
        permissions?: Record<string, string>;
        jobs?: Record<string, { 'runs-on'?: string; steps?: { uses?: string; run?: string }[] }>;
      };
      assert.ok(wf.on, 'on:');
      const jobs = Object.entries(wf.jobs ?? {});
      assert.ok(jobs.length > 0, 'jobs:');
      const signs: string[] = [];
      for (const [name, job] of jobs) {
        assert.ok(job['runs-on'], `${name}: runs-on`);
        assert.ok(Array.isArray(job.steps) && job.steps.length > 0, `${name}: steps`);
        for (const step of job.steps ?? []) {
          assert.ok(step.uses || step.run, `${name}: a step without uses or run`);
          if (step.run?.includes('cosign sign')) signs.push(step.run);
        }
      }
      assert.ok(signs.length > 0, 'signs with cosign');
      for (const s of signs)
        assert.match(s, /@\$\{\{ steps\.\w+\.outputs\.digest \}\}/, 'signs the pushed digest');
      if (f.includes(`${path.sep}keyless${path.sep}`)) assert.equal(wf.permissions?.['id-token'], 'write');
    });
  }

  test('no YAML file in examples/ is left unvalidated', () => {
    const kinds = new Set<Kind>(['chart-values', 'gatekeeper-values', 'workflow', 'manifests']);
    for (const f of files) assert.ok(kinds.has(kindOf(f)), rel(f));
    assert.ok(files.length >= 15, `${files.length} YAML files`);
  });
});
