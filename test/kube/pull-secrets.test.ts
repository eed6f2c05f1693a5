// Pull secrets and Secret keys read through @kubernetes/client-node from a fake API server (no Kubernetes API
// server runs here); the end-to-end case authenticates against the real docker-registry with them.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { SigpinError } from '../../provider/src/errors.ts';
import { createPullSecretLookup, createSecretReader } from '../../provider/src/kube/index.ts';
import { RegistryClient } from '../../provider/src/registry/index.ts';
import { requireBinary } from '../support/binaries.ts';
import { pushImage } from '../support/images.ts';
import { startRegistry } from '../support/registry.ts';
import { dockerConfigSecret, serviceAccount, startFakeApiServer } from './fake-api-server.ts';
import type { FakeApiServer } from './fake-api-server.ts';

const silent = pino({ level: 'silent' });
const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function fakeApi(t: { after: (fn: () => Promise<void>) => void }): Promise<FakeApiServer> {
  const api = await startFakeApiServer();
  t.after(() => api.stop());
  return api;
}

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
  return { logger, lines };
}

test('fake API server: credentials from the default ServiceAccount pull secrets (dockerconfigjson and dockercfg)', async (t) => {
  const api = await fakeApi(t);
  api.put(serviceAccount('team', ['regcred', 'legacy', 'hub']));
  api.put(dockerConfigSecret('team', 'regcred', { 'registry.example.com:5000': { auth: b64('u1:p1') } }));
  api.put({
    kind: 'Secret',
    namespace: 'team',
    name: 'legacy',
    body: {
      type: 'kubernetes.io/dockercfg',
      data: { '.dockercfg': b64(JSON.stringify({ 'https://quay.io': { username: 'u2', password: 'p2' } })) },
    },
  });
  api.put(dockerConfigSecret('team', 'hub', { 'https://index.docker.io/v1/': { auth: b64('u3:p3') } }));
  const lookup = createPullSecretLookup({ kubeConfig: api.kubeConfig, ttlMs: 60_000, logger: silent });
  assert.deepEqual(await lookup('registry.example.com:5000', 'team'), { username: 'u1', password: 'p1' });
  assert.deepEqual(await lookup('quay.io', 'team'), { username: 'u2', password: 'p2' });
  assert.deepEqual(await lookup('index.docker.io', 'team'), { username: 'u3', password: 'p3' });
  assert.equal(await lookup('ghcr.io', 'team'), undefined);
  assert.deepEqual(api.requests, [
    'GET /api/v1/namespaces/team/serviceaccounts/default',
    'GET /api/v1/namespaces/team/secrets/regcred',
    'GET /api/v1/namespaces/team/secrets/legacy',
    'GET /api/v1/namespaces/team/secrets/hub',
  ]);
});

test('fake API server: reached through a kubeconfig file', async (t) => {
  const api = await fakeApi(t);
  api.put(serviceAccount('team', ['regcred']));
  api.put(dockerConfigSecret('team', 'regcred', { 'r.example': { auth: b64('u:p') } }));
  const dir = await mkdtemp(join(tmpdir(), 'sigpin-kubeconfig-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'kubeconfig');
  await writeFile(file, api.kubeConfig.exportConfig());
  const lookup = createPullSecretLookup({ kubeconfigFile: file, ttlMs: 60_000, logger: silent });
  assert.deepEqual(await lookup('r.example', 'team'), { username: 'u', password: 'p' });
  const reader = createSecretReader({ kubeconfigFile: file });
  assert.equal(
    (await reader.readSecretKey('team', 'regcred', '.dockerconfigjson')).toString().includes('auths'),
    true
  );
});

test('fake API server: cached per namespace for the TTL, then read again', async (t) => {
  const api = await fakeApi(t);
  api.put(serviceAccount('team', ['regcred']));
  api.put(dockerConfigSecret('team', 'regcred', { 'r.example': { auth: b64('u:old') } }));
  const lookup = createPullSecretLookup({ kubeConfig: api.kubeConfig, ttlMs: 200, logger: silent });
  assert.deepEqual(await lookup('r.example', 'team'), { username: 'u', password: 'old' });
  api.put(dockerConfigSecret('team', 'regcred', { 'r.example': { auth: b64('u:new') } }));
  assert.deepEqual(await lookup('r.example', 'team'), { username: 'u', password: 'old' });
  assert.equal(api.requests.length, 2);
  await sleep(250);
  assert.deepEqual(await lookup('r.example', 'team'), { username: 'u', password: 'new' });
  assert.equal(api.requests.length, 4);
});

test('fake API server: concurrent lookups for one namespace share one set of API calls', async (t) => {
  const api = await fakeApi(t);
  api.put(serviceAccount('team', ['regcred']));
  api.put(dockerConfigSecret('team', 'regcred', { 'r.example': { auth: b64('u:p') } }));
  const lookup = createPullSecretLookup({ kubeConfig: api.kubeConfig, ttlMs: 60_000, logger: silent });
  const results = await Promise.all(Array.from({ length: 10 }, () => lookup('r.example', 'team')));
  assert.ok(results.every((r) => r?.password === 'p'));
  assert.equal(api.requests.length, 2);
});

test('fake API server: missing namespace, forbidden and missing secrets mean no credentials, logged without contents', async (t) => {
  const api = await fakeApi(t);
  api.put(serviceAccount('team', ['gone', 'notdocker', 'regcred']));
  api.put({
    kind: 'Secret',
    namespace: 'team',
    name: 'notdocker',
    body: { type: 'Opaque', data: { x: b64('s3cr3t') } },
  });
  api.put(dockerConfigSecret('team', 'regcred', { 'r.example': { auth: b64('u:topsecret') } }));
  api.put(serviceAccount('locked', ['x']));
  api.failures.set('/api/v1/namespaces/locked/', 403);
  const { logger, lines } = capture();
  const lookup = createPullSecretLookup({ kubeConfig: api.kubeConfig, ttlMs: 60_000, logger });
  assert.equal(await lookup('r.example', 'nowhere'), undefined);
  assert.equal(await lookup('r.example', 'locked'), undefined);
  assert.deepEqual(await lookup('r.example', 'team'), { username: 'u', password: 'topsecret' });
  const warnings = lines.map((l) => JSON.parse(l) as { level: number; namespace?: string; status?: number });
  assert.ok(warnings.some((w) => w.level === 40 && w.namespace === 'nowhere' && w.status === 404));
  assert.ok(warnings.some((w) => w.level === 40 && w.namespace === 'locked' && w.status === 403));
  assert.ok(warnings.some((w) => w.level === 40 && JSON.stringify(w).includes('"secret":"gone"')));
  const text = lines.join('\n');
  assert.ok(!text.includes('topsecret') && !text.includes('s3cr3t') && !text.includes(b64('s3cr3t')));
});

test('fake API server: an API failure is a transient error, not "no credentials", and is not cached', async (t) => {
  const api = await fakeApi(t);
  api.put(serviceAccount('team', ['regcred']));
  api.put(dockerConfigSecret('team', 'regcred', { 'r.example': { auth: b64('u:p') } }));
  api.failures.set('/api/v1/namespaces/team/serviceaccounts', 500);
  const lookup = createPullSecretLookup({ kubeConfig: api.kubeConfig, ttlMs: 60_000, logger: silent });
  await assert.rejects(lookup('r.example', 'team'), (e: unknown) => e instanceof SigpinError && e.transient);
  api.failures.clear();
  assert.deepEqual(await lookup('r.example', 'team'), { username: 'u', password: 'p' });
});

test('fake API server: readSecretKey returns bytes; a missing Secret or key is NOT_FOUND', async (t) => {
  const api = await fakeApi(t);
  const pem = '-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n';
  api.put({
    kind: 'Secret',
    namespace: 'sigpin',
    name: 'keys',
    body: { type: 'Opaque', data: { 'cosign.pub': b64(pem) } },
  });
  const reader = createSecretReader({ kubeConfig: api.kubeConfig });
  assert.equal((await reader.readSecretKey('sigpin', 'keys', 'cosign.pub')).toString(), pem);
  for (const [name, key] of [
    ['keys', 'other.pub'],
    ['absent', 'cosign.pub'],
  ] as const) {
    await assert.rejects(reader.readSecretKey('sigpin', name, key), (e: unknown) => {
      assert.ok(e instanceof SigpinError);
      assert.equal(e.code, 'NOT_FOUND');
      return true;
    });
  }
});

test(
  'fake API server pull secrets authenticate against the real docker-registry (htpasswd)',
  requireBinary('docker-registry'),
  async (t) => {
    requireBinary('skopeo');
    const registry = await startRegistry({ auth: 'htpasswd' });
    t.after(() => registry.stop());
    const image = await pushImage(registry, 'team/app', 'v1', 'oci-manifest');
    const api = await fakeApi(t);
    api.put(serviceAccount('team', ['regcred']));
    api.put(
      dockerConfigSecret('team', 'regcred', {
        [registry.host]: { auth: b64(`${registry.username}:${registry.password}`) },
      })
    );
    const client = new RegistryClient({
      allow: [registry.host],
      insecure: [registry.host],
      pullSecrets: createPullSecretLookup({ kubeConfig: api.kubeConfig, ttlMs: 60_000, logger: silent }),
      logger: silent,
    });
    t.after(() => client.close());
    const signal = AbortSignal.timeout(20_000);
    const resolved = await client.resolveDigest(registry.host, 'team/app', 'v1', {
      signal,
      namespace: 'team',
    });
    assert.equal(resolved.digest, image.digest);
    await assert.rejects(
      client.resolveDigest(registry.host, 'team/app', 'v1', { signal, namespace: 'other' }),
      (e: unknown) => e instanceof SigpinError && e.code === 'UNAUTHORIZED'
    );
  }
);
