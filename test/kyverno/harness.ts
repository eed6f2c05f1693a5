/**
 * Test harness for the Kyverno policy bundle: the real Kyverno CLI (built by scripts/setup-kyverno.sh), the real
 * provider on 127.0.0.1 over HTTPS, and copies of the shipped policies pointed at that provider.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import YAML from 'yaml';
import { createCertificateAuthority, issueCertificate } from '../../provider/src/server/certificates.ts';
import { missingComponent } from '../support/binaries.ts';

export const KYVERNO_VERSION = 'v1.19.0';
export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const POLICIES_DIR = join(REPO_ROOT, 'policies/kyverno');

/** What the shipped policies contain and the tests replace: the in-cluster URL and the placeholder PEM. */
export const SHIPPED_BASE_URL = 'https://sigpin.sigpin.svc:8443';
export const SHIPPED_CA_PLACEHOLDER = [
  '-----BEGIN CERTIFICATE-----',
  'REPLACE-WITH-THE-SIGPIN-CA-CERTIFICATE',
  '-----END CERTIFICATE-----',
].join('\n');

export function kyvernoBinary(): string {
  const tools = process.env.SIGPIN_TOOLS ?? join(process.env.HOME ?? tmpdir(), '.cache', 'sigpin-tools');
  return join(tools, `kyverno-${KYVERNO_VERSION}`, 'kyverno');
}

/** node:test option: skip locally when the CLI is not built yet; under CI a missing CLI is a failure. */
export function requireKyverno(): { skip?: string } {
  try {
    accessSync(kyvernoBinary(), constants.X_OK);
    return {};
  } catch {
    const reason = `Kyverno CLI ${KYVERNO_VERSION} not built at ${kyvernoBinary()}: run bash scripts/setup-kyverno.sh`;
    return missingComponent(reason);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Command line and both streams, for assertion messages. */
  transcript: string;
}

/**
 * Runs the Kyverno CLI. CEL `http.*` calls are SSRF-filtered by default (loopback blocked); the tests talk to a
 * provider on 127.0.0.1, so the blocklist is narrowed to the metadata endpoints through Kyverno's own variable.
 */
export async function runKyverno(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}
): Promise<CliResult> {
  const child = spawn(kyvernoBinary(), args, {
    cwd: options.cwd,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      FLAG_HTTP_BLOCKLIST: '169.254.169.254/32,169.254.169.253/32,metadata.google.internal',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  const transcript = `$ kyverno ${args.join(' ')}\n(exit ${code})\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  return { code, stdout, stderr, transcript };
}

export interface TestCertificates {
  caPem: string;
  certFile: string;
  keyFile: string;
}

/** A CA and a serving certificate for 127.0.0.1, written to `dir`. */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  const ca = await createCertificateAuthority('sigpin kyverno test CA', 1);
  const leaf = await issueCertificate(ca, {
    commonName: '127.0.0.1',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  await writeFile(certFile, leaf.certPem);
  await writeFile(keyFile, leaf.keyPem, { mode: 0o600 });
  return { caPem: ca.certPem, certFile, keyFile };
}

export interface RunningProvider {
  /** `https://127.0.0.1:PORT` */
  url: string;
  /** Everything the provider wrote so far (pino JSON lines and stderr). */
  output(): string;
  /** GET a path over HTTPS trusting the test CA; returns status and text. */
  get(path: string): Promise<{ status: number; text: string }>;
  stop(): Promise<void>;
}

const PROVIDER_READY_TIMEOUT_MS = 30_000;

/**
 * Starts `node provider/bin/sigpin.js serve --config FILE --port 0` and waits until /readyz answers 200. The
 * port is read from the provider's "listening" log line, so nothing races for it.
 */
export async function startProvider(configFile: string, caPem: string): Promise<RunningProvider> {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'provider/bin/sigpin.js'), 'serve', '--config', configFile, '--port', '0'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = once(child, 'exit');
  const dispatcher = new Agent({ connect: { ca: caPem } });
  const get = async (path: string, base: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${base}${path}`, { dispatcher } as RequestInit);
    return { status: res.status, text: await res.text() };
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await dispatcher.close();
  };
  const deadline = Date.now() + PROVIDER_READY_TIMEOUT_MS;
  let url: string | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    url ??= /"url":"(https:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1];
    if (url) {
      const ready = await get('/readyz', url).catch(() => undefined);
      if (ready?.status === 200) {
        const base = url;
        return { url: base, output: () => output, get: (p) => get(p, base), stop };
      }
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`provider did not become ready (exit ${child.exitCode}):\n${output}`);
}

/** Replaces every occurrence of the shipped URL and placeholder PEM in every string of a YAML document. */
function rewriteStrings(value: unknown, baseUrl: string, caPem: string): unknown {
  if (typeof value === 'string') {
    return value.split(SHIPPED_BASE_URL).join(baseUrl).split(SHIPPED_CA_PLACEHOLDER).join(caPem.trimEnd());
  }
  if (Array.isArray(value)) return value.map((v) => rewriteStrings(v, baseUrl, caPem));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteStrings(v, baseUrl, caPem)]));
  }
  return value;
}

/**
 * Reads a shipped policy file and returns it pointed at the test provider: what an operator does when
 * installing (set the Service URL and, where the policy carries one, the caBundle PEM).
 */
export async function pointPolicyAt(policyFile: string, baseUrl: string, caPem: string): Promise<string> {
  const text = await readFile(policyFile, 'utf8');
  if (!text.includes(SHIPPED_BASE_URL)) throw new Error(`${policyFile} has no provider URL to rewrite`);
  return YAML.parseAllDocuments(text)
    .map((doc) => YAML.stringify(rewriteStrings(doc.toJS(), baseUrl, caPem), { lineWidth: 0 }))
    .join('---\n');
}

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Parses a multi-document YAML stream (as the CLI prints resources) into plain objects, skipping empty ones. */
export function parseYamlStream(text: string): Array<Record<string, unknown>> {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((d): d is Record<string, unknown> => d !== null && typeof d === 'object' && !Array.isArray(d));
}

/** One result of a `kyverno apply --policy-report` run (openreports ClusterReport). */
export interface ApplyResult {
  policy: string;
  /** ClusterPolicy rule (autogen rules are prefixed `autogen-`); absent for CEL policies. */
  rule?: string;
  result: 'pass' | 'fail' | 'error' | 'skip' | 'warn';
  message: string;
  kind: string;
  name: string;
}

export interface ApplyOutcome {
  results: ApplyResult[];
  /** Resources as patched by the mutating policies, by `Kind/name`. */
  patched: Map<string, Record<string, unknown>>;
  cli: CliResult;
  /** The one result for this policy and resource (rule optional); throws with the transcript if not exactly one. */
  resultFor(policy: string, kind: string, name: string, rule?: string): ApplyResult;
  /** The patched resource; throws with the transcript when the CLI wrote none. */
  patchedResource(kind: string, name: string): Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Reads the ClusterReport JSON the CLI prints after its text output. */
function parseReport(cli: CliResult): ApplyResult[] {
  const start = cli.stdout.indexOf('{"kind":"ClusterReport"');
  if (start < 0) throw new Error(`kyverno apply printed no policy report\n${cli.transcript}`);
  const report: unknown = JSON.parse(cli.stdout.slice(start).trim());
  if (!isRecord(report) || !Array.isArray(report.results)) {
    throw new Error(`unexpected policy report shape\n${cli.transcript}`);
  }
  return report.results.map((r: unknown): ApplyResult => {
    if (!isRecord(r) || typeof r.policy !== 'string' || typeof r.result !== 'string') {
      throw new Error(`unexpected report result ${JSON.stringify(r)}\n${cli.transcript}`);
    }
    const resource: unknown = Array.isArray(r.resources) ? r.resources[0] : undefined;
    return {
      policy: r.policy,
      ...(typeof r.rule === 'string' ? { rule: r.rule } : {}),
      result: r.result as ApplyResult['result'],
      message: typeof r.message === 'string' ? r.message : '',
      kind: isRecord(resource) && typeof resource.kind === 'string' ? resource.kind : '',
      name: isRecord(resource) && typeof resource.name === 'string' ? resource.name : '',
    };
  });
}

/**
 * `kyverno apply POLICIES --resource RESOURCES -o DIR --policy-report --output-format json`: the report says
 * what passed, failed (validation denial) or errored (a failed apiCall or CEL evaluation, which
 * failurePolicy Fail turns into a denial); DIR receives the patched resources.
 */
export async function applyPolicies(
  dir: string,
  policies: string[],
  resources: string[],
  options: { env?: NodeJS.ProcessEnv; valuesFile?: string } = {}
): Promise<ApplyOutcome> {
  const outDir = await mkdtemp(join(dir, 'out-'));
  const args = [
    'apply',
    ...policies,
    ...resources.flatMap((r) => ['--resource', r]),
    ...(options.valuesFile ? ['--values-file', options.valuesFile] : []),
    '--output',
    `${outDir}/`,
    '--policy-report',
    '--output-format',
    'json',
    '--remove-color',
  ];
  const cli = await runKyverno(args, options.env ? { env: options.env } : {});
  const results = parseReport(cli);
  const patched = new Map<string, Record<string, unknown>>();
  await mkdir(outDir, { recursive: true });
  for (const file of (await readdir(outDir)).sort()) {
    for (const doc of parseYamlStream(await readFile(join(outDir, file), 'utf8'))) {
      const meta = doc.metadata;
      if (typeof doc.kind === 'string' && isRecord(meta) && typeof meta.name === 'string') {
        patched.set(`${doc.kind}/${meta.name}`, doc);
      }
    }
  }
  return {
    results,
    patched,
    cli,
    resultFor(policy, kind, name, rule) {
      const found = results.filter(
        (r) =>
          r.policy === policy && r.kind === kind && r.name === name && (rule === undefined || r.rule === rule)
      );
      if (found.length !== 1) {
        throw new Error(
          `expected one result for ${policy}${rule ? `/${rule}` : ''} on ${kind}/${name}, got ${found.length}\n${cli.transcript}`
        );
      }
      return found[0] as ApplyResult;
    },
    patchedResource(kind, name) {
      const doc = patched.get(`${kind}/${name}`);
      if (!doc) throw new Error(`no patched ${kind}/${name} written\n${cli.transcript}`);
      return doc;
    },
  };
}

/** Container images of a Pod or of a workload's pod template, by list (containers, initContainers, ...). */
export function imagesOf(resource: Record<string, unknown>): Record<string, string[]> {
  let spec: unknown = resource.spec;
  if (resource.kind === 'CronJob') {
    for (const key of ['jobTemplate', 'spec', 'template', 'spec'])
      spec = isRecord(spec) ? spec[key] : undefined;
  } else if (resource.kind !== 'Pod') {
    for (const key of ['template', 'spec']) spec = isRecord(spec) ? spec[key] : undefined;
  }
  const out: Record<string, string[]> = {};
  for (const list of ['containers', 'initContainers', 'ephemeralContainers']) {
    const items: unknown = isRecord(spec) ? spec[list] : undefined;
    if (Array.isArray(items)) {
      out[list] = items.map((c: unknown) => (isRecord(c) && typeof c.image === 'string' ? c.image : ''));
    }
  }
  return out;
}

/** One row of `kyverno test -o json`. */
export interface TestRow {
  policy: string;
  rule: string;
  resource: string;
  result: string;
  reason: string;
}

/**
 * `kyverno test DIR -o json`: returns the rows and the summary counts. A run that prints no rows or no summary
 * (a CLI or test-file error) throws with the transcript.
 */
export async function runKyvernoTest(
  dir: string,
  options: { env?: NodeJS.ProcessEnv } = {}
): Promise<{ rows: TestRow[]; passed: number; failed: number; cli: CliResult }> {
  const cli = await runKyverno(
    ['test', dir, '--output-format', 'json', '--remove-color', '--require-tests'],
    options.env ? { env: options.env } : {}
  );
  const summary = /Test Summary: (\d+) tests? passed and (\d+) tests? failed/.exec(cli.stdout);
  const start = cli.stdout.indexOf('\n[');
  const end = cli.stdout.indexOf('\n]', start);
  if (!summary || start < 0 || end < 0) throw new Error(`kyverno test printed no results\n${cli.transcript}`);
  const parsed: unknown = JSON.parse(cli.stdout.slice(start + 1, end + 2));
  if (!Array.isArray(parsed)) throw new Error(`unexpected kyverno test output\n${cli.transcript}`);
  const rows = parsed.map((r: unknown): TestRow => {
    const row = isRecord(r) ? r : {};
    const str = (k: string): string => (typeof row[k] === 'string' ? row[k] : '');
    return {
      policy: str('POLICY'),
      rule: str('RULE'),
      resource: str('RESOURCE'),
      result: str('RESULT'),
      reason: str('REASON'),
    };
  });
  return { rows, passed: Number(summary[1]), failed: Number(summary[2]), cli };
}

/**
 * Sum of a Prometheus metric's samples on the provider's /metrics whose labels include all of `labels`
 * (0 when there are none).
 */
export async function metricValue(
  provider: RunningProvider,
  name: string,
  labels: Record<string, string> = {}
): Promise<number> {
  const { text } = await provider.get('/metrics');
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.split(',').includes(`${k}=${JSON.stringify(v)}`))) {
      sum += Number(m[3]);
    }
  }
  return sum;
}

/** How many calls the provider has answered on one Kyverno route (`mutate`, `verify`) so far. */
export function providerCalls(provider: RunningProvider, route: string): Promise<number> {
  return metricValue(provider, 'sigpin_request_duration_seconds_count', { engine: 'kyverno', route });
}

/** A document of the Kyverno CLI's own kinds (cli.kyverno.io/v1alpha1: Values, Test, ClusterResource). */
export function cliDocument(
  kind: 'Values' | 'Test' | 'ClusterResource',
  name: string,
  fields: Record<string, unknown>
): Record<string, unknown> {
  return { apiVersion: 'cli.kyverno.io/v1alpha1', kind, metadata: { name }, ...fields };
}

export const YAMLText = (docs: unknown[]): string => docs.map((d) => YAML.stringify(d)).join('---\n');
