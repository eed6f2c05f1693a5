/**
 * The chart test tools (helm, kubeconform, offline kube schemas), installed by scripts/setup-helm.sh into the tools
 * cache. Locally a missing tool skips with the setup command; under CI it fails (like requireBinary).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { toStrictJsonSchema } from './tools/kube-schemas.ts';
import { missingComponent } from '../support/binaries.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CHART = path.join(ROOT, 'charts/sigpin');

export interface ChartTools {
  helm: string;
  kubeconform: string;
  schemas: string;
  /** Gatekeeper's own Helm chart inside its module (downloaded by setup-helm.sh). */
  gatekeeperChart: string;
}

function readToolPaths(): ChartTools {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts/setup-helm.sh'), '--print-env'], {
    encoding: 'utf8',
  });
  const env = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string])
  );
  return {
    // SIGPIN_HELM in the environment runs the tests with another helm (e.g. Helm 4)
    helm: process.env.SIGPIN_HELM ?? env.SIGPIN_HELM ?? '',
    kubeconform: env.SIGPIN_KUBECONFORM ?? '',
    schemas: env.SIGPIN_KUBE_SCHEMAS ?? '',
    gatekeeperChart: env.SIGPIN_GATEKEEPER_CHART ?? '',
  };
}

export const tools: ChartTools = readToolPaths();

/** node:test option: `{}` when the tools are installed, `{ skip }` locally when not; throws under CI. */
export function requireChartTools(): { skip?: string } {
  const missing = [tools.helm, tools.kubeconform, path.join(tools.schemas, '.complete')].filter(
    (f) => !existsSync(f)
  );
  if (missing.length === 0) return {};
  const reason = `chart tools missing (${missing.join(', ')}): run bash scripts/setup-helm.sh`;
  return missingComponent(reason);
}

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
};

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with a values document (written to a temp file) and extra args. */
export function helm(args: string[], values?: unknown): HelmResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigpin-chart-'));
  try {
    const valueArgs: string[] = [];
    if (values !== undefined) {
      const file = path.join(dir, 'values.json');
      writeFileSync(file, JSON.stringify(values));
      valueArgs.push('-f', file);
    }
    const r = spawnSync(tools.helm, [...args, ...valueArgs], {
      encoding: 'utf8',
      // helm keeps its cache/config under HOME; keep tests away from the user's.
      env: { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const RELEASE = 'sigpin';
/** The Kubernetes version of the offline schemas (k8s.io/kubernetes in setup-helm.sh); helm built with `go install`
 * would otherwise assume v1.20.0 and fail the chart's kubeVersion. */
export const KUBE_VERSION = ['--kube-version', '1.35.0'];
export const NAMESPACE = 'sigpin-system';

/** `helm template` of the chart; throws with helm's message on failure. */
export function renderChart(values: unknown, namespace = NAMESPACE): { text: string; objects: KubeObject[] } {
  const r = helm(['template', RELEASE, CHART, '--namespace', namespace, ...KUBE_VERSION], values);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  return { text: r.stdout, objects: parseObjects(r.stdout) };
}

export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((o): o is KubeObject => typeof o === 'object' && o !== null && 'kind' in o);
}

export function find(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found)
    throw new Error(`no ${kind}${name ? ` ${name}` : ''} in ${objects.map((o) => o.kind).join(', ')}`);
  return found;
}

/**
 * Gatekeeper makes one CRD per ConstraintTemplate; build kubeconform's schema for that constraint kind from the
 * rendered template (its parameters schema) and Gatekeeper's match schema (extracted by setup-helm.sh).
 */
export function constraintSchemas(objects: KubeObject[], dir: string): void {
  const match = JSON.parse(
    readFileSync(path.join(tools.schemas, 'gatekeeper-match.json'), 'utf8')
  ) as unknown;
  for (const template of objects.filter((o) => o.kind === 'ConstraintTemplate')) {
    const spec = template.spec as {
      crd: { spec: { names: { kind: string }; validation?: { openAPIV3Schema?: unknown } } };
    };
    const parameters = toStrictJsonSchema(
      (spec.crd.spec.validation?.openAPIV3Schema ?? { type: 'object' }) as Parameters<
        typeof toStrictJsonSchema
      >[0]
    );
    const schema = {
      type: 'object',
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
      additionalProperties: false,
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object' },
        spec: {
          type: 'object',
          additionalProperties: false,
          properties: {
            match,
            enforcementAction: { type: 'string' },
            scopedEnforcementActions: { type: 'array', items: { type: 'object' } },
            parameters,
          },
        },
        status: { type: 'object' },
      },
    };
    const target = path.join(dir, 'crd', 'constraints.gatekeeper.sh');
    mkdirSync(target, { recursive: true });
    writeFileSync(
      path.join(target, `${spec.crd.spec.names.kind.toLowerCase()}_v1beta1.json`),
      JSON.stringify(schema)
    );
  }
}

export interface KubeconformResult {
  ok: boolean;
  summary: { valid: number; invalid: number; errors: number; skipped: number };
  problems: string[];
}

/**
 * kubeconform -strict over files, with the offline schemas only (no schema location on the network). A kind
 * without a schema is an error, never skipped. `extraSchemas` is a folder laid out like the cache (crd/<group>/...).
 */
export function kubeconform(files: string[], extraSchemas?: string): KubeconformResult {
  const locations = [
    `${tools.schemas}/k8s/{{.ResourceKind}}{{.KindSuffix}}.json`,
    `${tools.schemas}/crd/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json`,
    ...(extraSchemas
      ? [`${extraSchemas}/crd/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json`]
      : []),
  ];
  const r = spawnSync(
    tools.kubeconform,
    [
      '-strict',
      '-summary',
      '-output',
      'json',
      ...locations.flatMap((l) => ['-schema-location', l]),
      ...files,
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }
  );
  const parsed = JSON.parse(r.stdout) as {
    resources?: { filename: string; kind: string; name: string; status: string; msg: string }[];
    summary: { valid: number; invalid: number; errors: number; skipped: number };
  };
  const problems = (parsed.resources ?? [])
    .filter((res) => res.status !== 'statusValid')
    .map((res) => `${path.relative(ROOT, res.filename)}: ${res.kind} ${res.name}: ${res.status} ${res.msg}`);
  const ok = r.status === 0 && problems.length === 0 && parsed.summary.skipped === 0;
  return { ok, summary: parsed.summary, problems };
}

/** Renders, writes to a temp folder and validates with kubeconform (constraint kinds from their templates). */
export function validateRendered(text: string, objects: KubeObject[]): KubeconformResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigpin-kubeconform-'));
  try {
    const file = path.join(dir, 'rendered.yaml');
    writeFileSync(file, text);
    constraintSchemas(objects, dir);
    return kubeconform([file], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
