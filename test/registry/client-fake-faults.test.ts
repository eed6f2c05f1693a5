// RegistryClient behaviours a real registry cannot be made to show, against a fake loopback registry
// (node:http on 127.0.0.1): retries and Retry-After, digest and size checks, deadlines, redirects, auth edge cases.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { pino } from 'pino';
import { SigpinError } from '../../provider/src/errors.ts';
import { RegistryClient } from '../../provider/src/registry/index.ts';
import type { RegistryClientOptions } from '../../provider/src/registry/index.ts';
import { MEDIA_TYPES, sha256Digest } from '../support/images.ts';
import { startLoopbackServer } from './loopback-server.ts';
import type { Handler, LoopbackServer } from './loopback-server.ts';

const silent = pino({ level: 'silent' });
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256Digest('{}'), size: 2 },
    layers: [],
  })
);
const DIGEST = sha256Digest(MANIFEST);
const signal = (): AbortSignal => AbortSignal.timeout(20_000);

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SigpinError, `expected SigpinError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

function sendManifest(
  res: ServerResponse,
  method: string | undefined,
  options: { digest?: string | null; contentType?: string; body?: Buffer } = {}
): void {
  const body = options.body ?? MANIFEST;
  const headers: Record<string, string | number> = {
    'Content-Type': options.contentType ?? MEDIA_TYPES.ociManifest,
    'Content-Length': body.length,
  };
  if (options.digest !== null) headers['Docker-Content-Digest'] = options.digest ?? sha256Digest(body);
  res.writeHead(200, headers);
  res.end(method === 'HEAD' ? undefined : body);
}

async function fake(
  t: { after: (fn: () => Promise<void>) => void },
  handler: Handler,
  extra: Partial<RegistryClientOptions> = {}
): Promise<{ server: LoopbackServer; client: RegistryClient }> {
  const server = await startLoopbackServer(handler);
  const client = new RegistryClient({
    allow: [server.host],
    insecure: [server.host],
    logger: silent,
    ...extra,
  });
  t.after(async () => {
    await client.close();
    await server.stop();
  });
  return { server, client };
}

test('fake registry: 503 with Retry-After: 0 is retried, then succeeds', async (t) => {
  const { server, client } = await fake(t, (req, res, i) => {
    if (i === 0) res.writeHead(503, { 'Retry-After': '0' }).end();
    else sendManifest(res, req.method);
  });
  const resolved = await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() });
  assert.equal(resolved.digest, DIGEST);
  assert.deepEqual(
    server.requests.map((r) => r.method),
    ['HEAD', 'HEAD']
  );
});

test('fake registry: 429 with Retry-After: 1 waits and retries', async (t) => {
  const { server, client } = await fake(t, (req, res, i) => {
    if (i === 0) res.writeHead(429, { 'Retry-After': '1' }).end();
    else sendManifest(res, req.method);
  });
  assert.equal(
    (await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() })).digest,
    DIGEST
  );
  assert.equal(server.requests.length, 2);
});

test('fake registry: 404 is not retried', async (t) => {
  const { server, client } = await fake(t, (_req, res) => res.writeHead(404).end());
  await rejectsWith(client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }), 'NOT_FOUND');
  assert.equal(server.requests.length, 1);
});

test('fake registry: retries are bounded by maxRetries, then REGISTRY_UNAVAILABLE', async (t) => {
  const { server, client } = await fake(t, (_req, res) => res.writeHead(500, { 'Retry-After': '0' }).end(), {
    maxRetries: 2,
  });
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE'
  );
  assert.equal(server.requests.length, 3);
});

test('fake registry: a Retry-After beyond the deadline is not waited for', async (t) => {
  const { server, client } = await fake(t, (_req, res) =>
    res.writeHead(503, { 'Retry-After': '3600' }).end()
  );
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE'
  );
  assert.equal(server.requests.length, 1);
});

test('fake registry: HEAD without Docker-Content-Digest falls back to GET and hashes the bytes', async (t) => {
  const { server, client } = await fake(t, (req, res) => sendManifest(res, req.method, { digest: null }));
  const resolved = await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() });
  assert.deepEqual(resolved, { digest: DIGEST, mediaType: MEDIA_TYPES.ociManifest, size: MANIFEST.length });
  assert.deepEqual(
    server.requests.map((r) => r.method),
    ['HEAD', 'GET']
  );
  assert.match(String(server.requests[0]?.headers.accept), /application\/vnd\.oci\.image\.index\.v1\+json/);
  assert.match(String(server.requests[0]?.headers.accept), /manifest\.list\.v2\+json/);
});

test('fake registry: HEAD 405 falls back to GET', async (t) => {
  const { server, client } = await fake(t, (req, res) => {
    if (req.method === 'HEAD') res.writeHead(405).end();
    else sendManifest(res, req.method);
  });
  assert.equal(
    (await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() })).digest,
    DIGEST
  );
  assert.equal(server.requests.length, 2);
});

test('fake registry: a wrong Docker-Content-Digest on GET is rejected', async (t) => {
  const wrong = sha256Digest('something else');
  const { server, client } = await fake(t, (req, res) =>
    sendManifest(res, req.method, req.method === 'HEAD' ? { digest: null } : { digest: wrong })
  );
  await rejectsWith(
    client.getManifest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE',
    /Docker-Content-Digest/
  );
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE'
  );
});

test('fake registry: HEAD reporting another digest than the one asked for is rejected', async (t) => {
  const { server, client } = await fake(t, (req, res) =>
    sendManifest(res, req.method, { digest: sha256Digest('other') })
  );
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', DIGEST, { signal: signal() }),
    'REGISTRY_UNAVAILABLE'
  );
});

test('fake registry: manifest bytes that do not match the requested digest are rejected', async (t) => {
  const other = Buffer.from(MANIFEST.toString().replace('"layers":[]', '"layers":[ ]'));
  const { server, client } = await fake(t, (req, res) =>
    sendManifest(res, req.method, { body: other, digest: null })
  );
  await rejectsWith(
    client.getManifest(server.host, 'team/app', DIGEST, { signal: signal() }),
    'REGISTRY_UNAVAILABLE',
    /does not match the digest/
  );
});

test('fake registry: Content-Type that contradicts the manifest mediaType is rejected', async (t) => {
  const { server, client } = await fake(t, (req, res) =>
    sendManifest(res, req.method, { contentType: MEDIA_TYPES.dockerManifest })
  );
  await rejectsWith(
    client.getManifest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE'
  );
});

test('fake registry: a truncated body is rejected (and retried as a network failure)', async (t) => {
  const { server, client } = await fake(
    t,
    (_req, res) => {
      res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest, 'Content-Length': MANIFEST.length });
      res.write(MANIFEST.subarray(0, 20));
      setTimeout(() => res.socket?.destroy(), 20);
    },
    { maxRetries: 1 }
  );
  await rejectsWith(
    client.getManifest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE'
  );
  assert.equal(server.requests.length, 2);
});

test('fake registry: manifests over 4 MiB are refused without retry', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
  const { server, client } = await fake(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest, 'Content-Length': big.length });
    res.end(big);
  });
  await rejectsWith(
    client.getManifest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE',
    /too large/
  );
  assert.equal(server.requests.length, 1);
});

test('fake registry: a blob larger than maxBytes without Content-Length is cut off', async (t) => {
  const blob = Buffer.alloc(100_000, 1);
  const { server, client } = await fake(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); // chunked, no length
    res.end(blob);
  });
  await rejectsWith(
    client.getBlob(server.host, 'team/app', sha256Digest(blob), { signal: signal() }, 1000),
    'REGISTRY_UNAVAILABLE',
    /exceeds 1000 bytes/
  );
});

test('fake registry: the caller aborting is DEADLINE_EXCEEDED, our own timeout is REGISTRY_UNAVAILABLE', async (t) => {
  const { server, client } = await fake(t, () => undefined /* never answers */, { timeoutMs: 300 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: controller.signal }),
    'DEADLINE_EXCEEDED'
  );
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    'REGISTRY_UNAVAILABLE',
    /timed out/
  );
});

test('fake registry: an already aborted caller signal sends nothing', async (t) => {
  const { server, client } = await fake(t, (req, res) => sendManifest(res, req.method));
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: AbortSignal.abort() }),
    'DEADLINE_EXCEEDED'
  );
  assert.equal(server.connections(), 0);
});

/** A fake registry that wants Basic credentials and redirects every request to `location`. */
function redirectingRegistry(location: string): Handler {
  return (req, res) => {
    if (!req.headers.authorization) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"' }).end();
      return;
    }
    res.writeHead(307, { Location: location }).end();
  };
}

test('fake registries: a redirect to another host drops Authorization', async (t) => {
  const blob = Buffer.from('blob content');
  const storage = await startLoopbackServer((_req, res) => res.writeHead(200).end(blob));
  t.after(() => storage.stop());
  const storageHost = `localhost:${storage.port}`; // another host name than 127.0.0.1
  const registry = await startLoopbackServer(redirectingRegistry(`http://${storageHost}/storage/blob?sig=1`));
  t.after(() => registry.stop());
  const client = new RegistryClient({
    allow: [registry.host, storageHost],
    insecure: [registry.host, storageHost],
    credentials: [{ registry: registry.host, username: 'u', password: 'secret' }],
    logger: silent,
  });
  t.after(() => client.close());
  const got = await client.getBlob(registry.host, 'team/app', sha256Digest(blob), { signal: signal() }, 1024);
  assert.deepEqual(got, blob);
  assert.equal(
    registry.requests[1]?.headers.authorization,
    `Basic ${Buffer.from('u:secret').toString('base64')}`
  );
  assert.equal(storage.requests.length, 1);
  assert.equal(storage.requests[0]?.url, '/storage/blob?sig=1');
  assert.equal(storage.requests[0]?.headers.authorization, undefined);
});

test('fake registries: a redirect to an unlisted loopback host is refused before connecting', async (t) => {
  const internal = await startLoopbackServer((_req, res) => res.writeHead(200).end('secret'));
  t.after(() => internal.stop());
  const registry = await startLoopbackServer(
    redirectingRegistry(`http://localhost:${internal.port}/latest/meta-data`)
  );
  t.after(() => registry.stop());
  const client = new RegistryClient({
    allow: [registry.host],
    insecure: [registry.host, `localhost:${internal.port}`],
    credentials: [{ registry: registry.host, username: 'u', password: 'p' }],
    logger: silent,
  });
  t.after(() => client.close());
  await rejectsWith(
    client.getBlob(registry.host, 'team/app', sha256Digest('x'), { signal: signal() }, 1024),
    'NOT_ALLOWED'
  );
  assert.equal(internal.connections(), 0);
});

test('fake registry: a token realm on an unlisted host is refused and never contacted', async (t) => {
  const tokens = await startLoopbackServer((_req, res) => res.writeHead(200).end('{"token":"t"}'));
  t.after(() => tokens.stop());
  const { server, client } = await fake(t, (_req, res) => {
    res
      .writeHead(401, {
        'WWW-Authenticate': `Bearer realm="http://localhost:${tokens.port}/token",service="s"`,
      })
      .end();
  });
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    'NOT_ALLOWED',
    /realm/
  );
  assert.equal(tokens.connections(), 0);
});

/**
 * A fake bearer registry with its token endpoint on the same host: issues t1, t2, ...; accepts the tokens in
 * `valid`; the challenge names `scope`.
 */
function bearerRegistry(valid: Set<string>, issued: string[], scope = 'repository:team/app:pull'): Handler {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      const token = `t${issued.length + 1}`;
      issued.push(
        `${token} ${url.searchParams.getAll('scope').join('|')} ${url.searchParams.get('service')}`
      );
      valid.add(token);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
      return;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !valid.has(bearer)) {
      const realm = `http://${req.headers.host}/token`;
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="${realm}",service="fake registry",scope="${scope}"`,
      });
      res.end();
      return;
    }
    sendManifest(res, req.method);
  };
}

test('fake registry: a revoked cached token is renewed once on 401', async (t) => {
  const valid = new Set<string>();
  const issued: string[] = [];
  const { server, client } = await fake(t, bearerRegistry(valid, issued));
  await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() });
  assert.deepEqual(issued, ['t1 repository:team/app:pull fake registry']);
  valid.clear(); // the registry no longer accepts t1
  await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() });
  assert.equal(issued.length, 2);
  const heads = server.requests.filter((r) => r.method === 'HEAD').map((r) => r.headers.authorization ?? '-');
  assert.deepEqual(heads, ['-', 'Bearer t1', 'Bearer t1', 'Bearer t2']);
});

test('fake registry: a challenge scope with a comma reaches the token server intact', async (t) => {
  const issued: string[] = [];
  const { server, client } = await fake(
    t,
    bearerRegistry(new Set(), issued, 'repository:team/app:pull,push')
  );
  await client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() });
  assert.deepEqual(issued, ['t1 repository:team/app:pull,push fake registry']);
});

test('fake registry: a token the registry refuses right after issuing is UNAUTHORIZED (no loop)', async (t) => {
  const { server, client } = await fake(t, (req, res) => {
    if (req.url?.startsWith('/token')) res.writeHead(200).end('{"token":"useless"}');
    else res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token"` }).end();
  });
  await rejectsWith(
    client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }),
    'UNAUTHORIZED'
  );
  assert.equal(server.requests.filter((r) => r.method === 'HEAD').length, 2);
});

test('fake registry: referrers API pages are followed and filtered client-side', async (t) => {
  const sig = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  const d = (n: number, artifactType: string): object => ({
    mediaType: MEDIA_TYPES.ociManifest,
    digest: sha256Digest(`referrer ${n}`),
    size: 10 + n,
    artifactType,
  });
  const { server, client } = await fake(t, (req, res) => {
    const headers: Record<string, string> = { 'Content-Type': MEDIA_TYPES.ociIndex };
    let manifests: object[];
    if (req.url?.includes('page=2')) manifests = [d(3, sig), { digest: 'not-a-digest' }];
    else {
      manifests = [d(1, sig), d(2, 'application/vnd.cncf.notary.signature')];
      headers.Link = `</v2/team/app/referrers/${DIGEST}?page=2>; rel="next"`;
    }
    res
      .writeHead(200, headers)
      .end(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }));
  });
  const found = await client.listReferrers(server.host, 'team/app', DIGEST, { signal: signal() }, sig);
  assert.deepEqual(
    found.map((x) => x.size),
    [11, 13]
  );
  assert.equal(server.requests.length, 2);
  assert.match(server.requests[0]?.url ?? '', /\?artifactType=application%2Fvnd\.dev\.sigstore/);
});

test('fake registry: a referrers next page on another origin is not followed', async (t) => {
  const { server, client } = await fake(t, (_req, res) => {
    res
      .writeHead(200, {
        'Content-Type': MEDIA_TYPES.ociIndex,
        Link: '<http://169.254.169.254/latest/meta-data>; rel="next"',
      })
      .end(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  });
  assert.deepEqual(await client.listReferrers(server.host, 'team/app', DIGEST, { signal: signal() }), []);
  assert.equal(server.requests.length, 1);
});

test('allowlist: a host not listed is NOT_ALLOWED with no connection attempted (fake registry)', async (t) => {
  const server = await startLoopbackServer((req, res) => sendManifest(res, req.method));
  t.after(() => server.stop());
  let attempts = 0;
  const client = new RegistryClient({
    allow: ['ghcr.io', '127.0.0.1:1'],
    insecure: [server.host],
    logger: silent,
    onRequest: () => attempts++,
  });
  t.after(() => client.close());
  assert.throws(
    () => client.assertAllowed(server.host),
    (e: unknown) => e instanceof SigpinError && e.code === 'NOT_ALLOWED'
  );
  await rejectsWith(client.resolveDigest(server.host, 'team/app', 'v1', { signal: signal() }), 'NOT_ALLOWED');
  await rejectsWith(client.getManifest(server.host, 'team/app', 'v1', { signal: signal() }), 'NOT_ALLOWED');
  await rejectsWith(client.getBlob(server.host, 'team/app', DIGEST, { signal: signal() }, 10), 'NOT_ALLOWED');
  await rejectsWith(
    client.listReferrers(server.host, 'team/app', DIGEST, { signal: signal() }),
    'NOT_ALLOWED'
  );
  assert.equal(server.connections(), 0);
  assert.equal(attempts, 0);
});

test('allowlist: metadata, private, CGNAT, unique-local and loopback literals need explicit listing', async (t) => {
  let attempts = 0;
  const client = new RegistryClient({ allow: ['*'], logger: silent, onRequest: () => attempts++ });
  t.after(() => client.close());
  for (const host of [
    '169.254.169.254',
    '169.254.169.254:80',
    '10.0.0.1',
    '10.0.0.1:5000',
    '192.168.1.1',
    '172.16.0.1',
    '100.64.0.1',
    '127.0.0.1:5000',
    '[::1]',
    '[::1]:5000',
    '[fd00:ec2::254]',
    '[fe80::1]',
    '[::ffff:10.0.0.1]',
    '0.0.0.0',
  ]) {
    await rejectsWith(client.resolveDigest(host, 'team/app', 'v1', { signal: signal() }), 'NOT_ALLOWED');
  }
  assert.equal(attempts, 0, 'nothing was sent');
});

test('invalid repository names and references are INVALID_REFERENCE before any traffic', async (t) => {
  let attempts = 0;
  const client = new RegistryClient({ allow: ['*'], logger: silent, onRequest: () => attempts++ });
  t.after(() => client.close());
  for (const [repository, reference] of [
    ['Team/App', 'v1'],
    ['team/../admin', 'v1'],
    ['team/app', '../../v2'],
    ['team/app', 'sha256:abc'],
    ['team/app?x=1', 'v1'],
  ] as const) {
    await rejectsWith(
      client.resolveDigest('ghcr.io', repository, reference, { signal: signal() }),
      'INVALID_REFERENCE'
    );
  }
  assert.equal(attempts, 0);
});
