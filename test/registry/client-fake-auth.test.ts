// RegistryClient credential forms and limits against fake loopback registries (node:http on 127.0.0.1):
// identity tokens (OAuth2 refresh grant), ready registry tokens, concurrency per registry, refused connections.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { SigpinError } from '../../provider/src/errors.ts';
import { RegistryClient, type RegistryClientOptions } from '../../provider/src/registry/index.ts';
import { MEDIA_TYPES, sha256Digest } from '../support/images.ts';
import { startLoopbackServer, type LoopbackServer } from './loopback-server.ts';

const silent = pino({ level: 'silent' });
const MANIFEST = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, layers: [] })
);
const signal = (): AbortSignal => AbortSignal.timeout(20_000);

/** Answers a manifest request with MANIFEST's headers (no body is needed to resolve a digest). */
function sendManifest(res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': MEDIA_TYPES.ociManifest,
    'Content-Length': MANIFEST.length,
    'Docker-Content-Digest': sha256Digest(MANIFEST),
  });
  res.end();
}

/** A client allowed to reach `host` over plain http, closed after the test. */
function insecureClient(
  t: TestContext,
  host: string,
  options: Omit<RegistryClientOptions, 'allow' | 'insecure' | 'logger'> = {}
): RegistryClient {
  const client = new RegistryClient({ allow: [host], insecure: [host], logger: silent, ...options });
  t.after(() => client.close());
  return client;
}

/** Resolves team/app:v1 for a Pod in namespace `ns` (so its pull secrets are looked up). */
function resolveForPod(client: RegistryClient, server: LoopbackServer) {
  return client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal(), namespace: 'ns' });
}

test('fake registry: an identity token is exchanged with the OAuth2 refresh-token grant', async (t) => {
  const forms: URLSearchParams[] = [];
  const server = await startLoopbackServer(async (req, res) => {
    if (req.url === '/oauth/token') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      forms.push(new URLSearchParams(body));
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end('{"access_token":"from-refresh","expires_in":120}');
      return;
    }
    if (req.headers.authorization !== 'Bearer from-refresh') {
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/oauth/token",service="svc"`,
      });
      res.end();
      return;
    }
    sendManifest(res);
  });
  t.after(() => server.stop());
  const client = insecureClient(t, server.host, {
    pullSecrets: async () => ({ identityToken: 'refresh-123' }),
  });
  const resolved = await resolveForPod(client, server);
  assert.equal(resolved.digest, sha256Digest(MANIFEST));
  assert.equal(forms.length, 1);
  assert.deepEqual(Object.fromEntries(forms[0] ?? []), {
    grant_type: 'refresh_token',
    refresh_token: 'refresh-123',
    service: 'svc',
    scope: 'repository:team/app:pull',
    client_id: 'sigpin',
  });
});

test('fake registry: a registry token is sent as the bearer token without a token exchange', async (t) => {
  const server = await startLoopbackServer((req, res) => {
    if (req.headers.authorization !== 'Bearer ready-token') {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token"` }).end();
      return;
    }
    sendManifest(res);
  });
  t.after(() => server.stop());
  const client = insecureClient(t, server.host, {
    pullSecrets: async () => ({ registryToken: 'ready-token' }),
  });
  const resolved = await resolveForPod(client, server);
  assert.equal(resolved.digest, sha256Digest(MANIFEST));
  assert.deepEqual(
    server.requests.map((r) => r.headers.authorization ?? '-'),
    ['-', 'Bearer ready-token']
  );
  assert.ok(server.requests.every((r) => !r.url.startsWith('/token')));
});

test('fake registry: at most maxConcurrencyPerRegistry requests are in flight', async (t) => {
  let inFlight = 0;
  let peak = 0;
  const server = await startLoopbackServer(async (req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 20));
    inFlight--;
    const digest = sha256Digest(req.url ?? '');
    res.writeHead(200, {
      'Content-Type': MEDIA_TYPES.ociManifest,
      'Content-Length': 10,
      'Docker-Content-Digest': digest,
    });
    res.end();
  });
  t.after(() => server.stop());
  const client = insecureClient(t, server.host, { maxConcurrencyPerRegistry: 3 });
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      client.resolveDigest(server.host, 'team/app', `t${i}`, { signal: signal() })
    )
  );
  assert.equal(new Set(results.map((r) => r.digest)).size, 12);
  assert.equal(server.requests.length, 12);
  assert.equal(peak, 3);
});

test('fake registry: a refused connection is retried, then REGISTRY_UNAVAILABLE', async (t) => {
  // a port that was just closed: nothing listens there
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const events: Array<number | 'error'> = [];
  const client = insecureClient(t, `127.0.0.1:${port}`, {
    maxRetries: 2,
    onRequest: (e) => events.push(e.status),
  });
  await assert.rejects(
    client.resolveDigest(`127.0.0.1:${port}`, 'team/app', 'v1', { signal: signal() }),
    (e: unknown) =>
      e instanceof SigpinError && e.code === 'REGISTRY_UNAVAILABLE' && /ECONNREFUSED/.test(e.message)
  );
  assert.deepEqual(events, ['error', 'error', 'error']);
});

test('fake registry: https is used unless the host is listed as insecure', async (t) => {
  const server = await startLoopbackServer((_req, res) => res.writeHead(200).end());
  t.after(() => server.stop());
  const client = new RegistryClient({ allow: [server.host], maxRetries: 0, logger: silent });
  t.after(() => client.close());
  // a TLS handshake against a plain HTTP server fails: the client did not fall back to http
  await assert.rejects(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    (e: unknown) => e instanceof SigpinError && e.code === 'REGISTRY_UNAVAILABLE'
  );
  assert.equal(server.requests.length, 0);
  assert.equal(server.connections(), 1);
});
