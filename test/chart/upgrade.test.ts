/**
 * Upgrades keep the generated secrets: the chart's `lookup` reads what an earlier install stored, so the CA (and
 * with it the caBundle in every policy object), the serving certificate, the cache HMAC key and the Redis password
 * survive `helm upgrade`. Rendered with `helm template --dry-run=server` against a fake API server (none runs
 * here) that serves the Secrets of a first render.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  kubeconfigFor,
  startFakeApiServer,
  type FakeApiServer,
  type FakeKind,
  type FakeSecret,
} from './fake-apiserver.ts';
import {
  CHART,
  KUBE_VERSION,
  NAMESPACE,
  RELEASE,
  find,
  parseObjects,
  renderChart,
  requireChartTools,
  tools,
  type KubeObject,
} from './tools.ts';

const skip = requireChartTools();
const run = promisify(execFile);

type WithData = KubeObject & { data?: Record<string, string>; stringData?: Record<string, string> };

/** The Secrets of a render, as an API server would store them (stringData folded into data). */
function storedSecrets(objects: KubeObject[]): FakeSecret[] {
  return objects
    .filter((o) => o.kind === 'Secret')
    .map((o) => {
      const s = o as WithData;
      const data = Object.fromEntries(
        Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])
      );
      return { namespace: NAMESPACE, name: s.metadata.name, data: { ...data, ...s.stringData } };
    });
}

/** Every kind of a render, for the fake server's discovery (cluster-scoped: no metadata.namespace). */
function kindsOf(objects: KubeObject[]): FakeKind[] {
  return objects.map((o) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    namespaced: o.metadata.namespace !== undefined,
  }));
}

/** helm template with lookup against the fake API server (async: the server runs in this process). */
async function renderAgainst(server: FakeApiServer, values: unknown, dir: string): Promise<KubeObject[]> {
  const kubeconfig = path.join(dir, 'kubeconfig.json');
  const valuesFile = path.join(dir, 'values.json');
  writeFileSync(kubeconfig, kubeconfigFor(server.url));
  writeFileSync(valuesFile, JSON.stringify(values));
  const { stdout } = await run(
    tools.helm,
    [
      'template',
      RELEASE,
      CHART,
      '--namespace',
      NAMESPACE,
      ...KUBE_VERSION,
      '--dry-run=server',
      '--disable-openapi-validation',
    ].concat(['--kubeconfig', kubeconfig, '-f', valuesFile]),
    {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir },
    }
  );
  return parseObjects(stdout);
}

const secretValue = (objects: KubeObject[], name: string, key: string): string => {
  const s = find(objects, 'Secret', name) as WithData;
  const b64 = s.data?.[key];
  return b64 !== undefined ? Buffer.from(b64, 'base64').toString() : (s.stringData?.[key] ?? '');
};

const providerCaBundles = (objects: KubeObject[]): string[] =>
  objects.filter((o) => o.kind === 'Provider').map((o) => (o.spec as { caBundle: string }).caBundle);

describe('chart upgrades keep generated secrets (fake API server)', skip, () => {
  const values = { redis: { enabled: true } };
  let dir = '';
  let server: FakeApiServer | undefined;
  let first: KubeObject[] = [];
  let upgraded: KubeObject[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sigpin-upgrade-'));
    first = renderChart(values).objects;
    server = await startFakeApiServer(storedSecrets(first), kindsOf(first));
    upgraded = await renderAgainst(server, values, dir);
  });

  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('without stored Secrets each render makes a new CA (what lookup prevents)', () => {
    const again = renderChart(values).objects;
    assert.notEqual(secretValue(again, 'sigpin-tls', 'ca.crt'), secretValue(first, 'sigpin-tls', 'ca.crt'));
  });

  test('the upgrade looked the Secrets up', () => {
    for (const name of ['sigpin-tls', 'sigpin-cache-hmac', 'sigpin-redis']) {
      assert.ok(
        server?.requests.includes(`GET /api/v1/namespaces/${NAMESPACE}/secrets/${name}`),
        `${name}: ${server?.requests.join(', ')}`
      );
    }
  });

  test('CA, serving certificate and key are the stored ones; the Providers keep their caBundle', () => {
    for (const key of ['ca.crt', 'tls.crt', 'tls.key']) {
      assert.equal(secretValue(upgraded, 'sigpin-tls', key), secretValue(first, 'sigpin-tls', key), key);
    }
    assert.deepEqual(providerCaBundles(upgraded), providerCaBundles(first));
    assert.equal(providerCaBundles(first).length, 3);
  });

  test('the cache HMAC key and the Redis password (also inside the config cache URL) are kept', () => {
    assert.equal(
      secretValue(upgraded, 'sigpin-cache-hmac', 'hmac-key'),
      secretValue(first, 'sigpin-cache-hmac', 'hmac-key')
    );
    const password = secretValue(first, 'sigpin-redis', 'redis-password');
    assert.match(password, /^[A-Za-z0-9]{48}$/);
    assert.equal(secretValue(upgraded, 'sigpin-redis', 'redis-password'), password);
    const config = parseYaml(secretValue(upgraded, 'sigpin-config', 'config.yaml')) as {
      cache: { url: string };
    };
    assert.equal(config.cache.url, `redis://:${password}@sigpin-redis.${NAMESPACE}.svc:6379`);
  });
});

describe('cert-manager upgrades keep the chart CA that the Issuer signs with (fake API server)', skip, () => {
  test('Secret sigpin-ca is looked up and reused; the Providers keep their caBundle', async () => {
    const values = { tls: { source: 'cert-manager' } };
    const dir = mkdtempSync(path.join(tmpdir(), 'sigpin-upgrade-cm-'));
    const first = renderChart(values).objects;
    const server = await startFakeApiServer(storedSecrets(first), kindsOf(first));
    try {
      const upgraded = await renderAgainst(server, values, dir);
      assert.ok(server.requests.includes(`GET /api/v1/namespaces/${NAMESPACE}/secrets/sigpin-ca`));
      assert.equal(secretValue(upgraded, 'sigpin-ca', 'tls.crt'), secretValue(first, 'sigpin-ca', 'tls.crt'));
      assert.equal(secretValue(upgraded, 'sigpin-ca', 'tls.key'), secretValue(first, 'sigpin-ca', 'tls.key'));
      assert.deepEqual(providerCaBundles(upgraded), providerCaBundles(first));
      assert.equal(find(upgraded, 'Issuer', 'sigpin-ca').kind, 'Issuer');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
