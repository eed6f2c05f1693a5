import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, type PushedImage } from '../support/images.ts';
import { providerRequest, startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { issueCertificate, createCertificateAuthority } from '../../provider/src/server/certificates.ts';

interface Response {
  apiVersion: string;
  kind: string;
  response: {
    idempotent: boolean;
    items: Array<{ key: string; value?: unknown; error?: string }>;
    systemError?: string;
  };
}

const skip = requireBinary('docker-registry').skip ?? requireBinary('skopeo').skip;

describe('provider against a real registry (no auth)', { skip }, () => {
  let registry: TestRegistry;
  let provider: TestProvider;
  const images: Record<string, PushedImage> = {};

  before(async () => {
    registry = await startRegistry();
    images['oci'] = await pushImage(registry, 'team/oci', 'v1', 'oci-manifest');
    images['docker'] = await pushImage(registry, 'team/docker', 'v1', 'docker-manifest');
    images['index'] = await pushImage(registry, 'team/index', 'v1', 'oci-index');
    images['list'] = await pushImage(registry, 'team/list', 'v1', 'docker-list');
    provider = await startProvider({
      config: {
        registries: { allow: [registry.host], insecure: [registry.host] },
        policies: [
          {
            name: 'readonly',
            images: [`${registry.host}/team/docker`],
            verify: false,
            mode: 'validate-only',
          },
          { name: 'local', images: [`${registry.host}/**`], verify: false },
        ],
      },
    });
  });
  after(async () => {
    await provider?.stop();
    await registry?.stop();
  });

  async function lookup(route: string, keys: string[]): Promise<Response> {
    const { status, body } = await provider.post(route, providerRequest(keys));
    assert.equal(status, 200, JSON.stringify(body));
    return body as Response;
  }

  test('resolve: OCI manifest, Docker schema2, OCI index and Docker list tags give their top-level digests', async () => {
    const keys = Object.values(images).map((i) => i.reference);
    for (const engine of ['gatekeeper', 'kyverno']) {
      const out = await lookup(`/${engine}/v1/resolve`, keys);
      assert.equal(out.kind, 'ProviderResponse');
      assert.equal(out.response.idempotent, true);
      assert.equal(out.response.systemError, undefined);
      assert.deepEqual(
        out.response.items,
        Object.values(images).map((i) => ({ key: i.reference, value: i.digest }))
      );
    }
  });

  test('mutate: the tag is kept and the digest appended; validate-only and pinned keys come back unchanged', async () => {
    const oci = images['oci'] as PushedImage;
    const docker = images['docker'] as PushedImage;
    const pinned = `${oci.reference}@${oci.digest}`;
    const out = await lookup('/gatekeeper/v1/mutate', [oci.reference, docker.reference, pinned]);
    assert.deepEqual(out.response.items, [
      { key: oci.reference, value: pinned },
      { key: docker.reference, value: docker.reference },
      { key: pinned, value: pinned },
    ]);
  });

  test('Kyverno routes accept a body without Content-Type', async () => {
    const oci = images['oci'] as PushedImage;
    const { status, body } = await provider.post(
      '/kyverno/v1/resolve',
      JSON.stringify(providerRequest([oci.reference])),
      {
        raw: true,
      }
    );
    assert.equal(status, 200);
    assert.deepEqual((body as Response).response.items, [{ key: oci.reference, value: oci.digest }]);
  });

  test('duplicate keys are answered once; prefixed keys are echoed exactly', async () => {
    const oci = images['oci'] as PushedImage;
    const prefixed = `[ns=default,old=${oci.reference}@${oci.digest}]${oci.reference}`;
    const out = await lookup('/gatekeeper/v1/resolve', [oci.reference, oci.reference, prefixed]);
    assert.deepEqual(out.response.items, [
      { key: oci.reference, value: oci.digest },
      { key: prefixed, value: oci.digest },
    ]);
  });

  test('definitive failures are item errors with stable codes; hosts not allowed are never contacted', async () => {
    const before = (await registry.requests()).length;
    const out = await lookup('/gatekeeper/v1/resolve', [
      `${registry.host}/team/missing:v1`,
      'UPPER/Case:bad',
      'a'.repeat(64),
      'ghcr.io/acme/app:1',
      '169.254.169.254/latest/meta-data:x',
      '127.0.0.1:1/app:1',
    ]);
    const codes = out.response.items.map((i) => i.error?.split(':')[0]);
    assert.deepEqual(codes, [
      'NOT_FOUND',
      'INVALID_REFERENCE',
      'INVALID_REFERENCE',
      'NOT_ALLOWED',
      'NOT_ALLOWED',
      'NOT_ALLOWED',
    ]);
    const after = await registry.requests();
    assert.equal(after.length - before, 1, 'only the allowed missing tag reached the registry');
  });

  test('malformed requests get HTTP 400 with a JSON message, and the server keeps serving', async () => {
    const cases: Array<[string, unknown, boolean, RegExp]> = [
      ['not JSON', '{"apiVersion":', true, /not JSON/],
      ['empty body', '', true, /empty request body/],
      ['wrong shape', { request: { keys: 'nginx' } }, false, /invalid ProviderRequest: request\.keys/],
      ['keys not strings', { request: { keys: [1, 2] } }, false, /invalid ProviderRequest/],
      ['no request', { apiVersion: 'x' }, false, /invalid ProviderRequest: request/],
      [
        '10,001 keys',
        providerRequest(Array.from({ length: 10_001 }, (_, i) => `app:${i}`)),
        false,
        /too many keys/,
      ],
      ['2 MiB body', 'x'.repeat(2 * 1024 * 1024), true, /larger than 1048576 bytes/],
    ];
    for (const [name, body, raw, message] of cases) {
      for (const engine of ['gatekeeper', 'kyverno']) {
        const res = await provider.post(`/${engine}/v1/resolve`, body, { raw });
        assert.equal(res.status, 400, `${name} on ${engine}: ${JSON.stringify(res.body)}`);
        assert.match((res.body as { error: string }).error, message, name);
      }
    }
    const oci = images['oci'] as PushedImage;
    const out = await lookup('/gatekeeper/v1/resolve', [oci.reference]);
    assert.equal(out.response.items[0]?.value, oci.digest);
    assert.equal((await provider.get('/healthz')).status, 200);
  });

  test('unknown routes and methods get a JSON 404', async () => {
    const res = await provider.post('/gatekeeper/v1/nope', providerRequest([]));
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { error: 'no such route' });
  });

  test('Gatekeeper routes refuse TLS 1.2; Kyverno routes accept it', async () => {
    const oci = images['oci'] as PushedImage;
    const gk = await provider.post('/gatekeeper/v1/resolve', providerRequest([oci.reference]), {
      maxVersion: 'TLSv1.2',
    });
    assert.equal(gk.status, 426);
    const ky = await provider.post('/kyverno/v1/resolve', providerRequest([oci.reference]), {
      maxVersion: 'TLSv1.2',
    });
    assert.equal(ky.status, 200);
  });

  test('Kyverno failOnError: 422 for a definitive item error, 200 when all keys answer', async () => {
    const oci = images['oci'] as PushedImage;
    const bad = await provider.post(
      '/kyverno/v1/mutate?failOnError=true',
      providerRequest([`${registry.host}/team/missing:v1`])
    );
    assert.equal(bad.status, 422);
    assert.match((bad.body as Response).response.items[0]?.error ?? '', /^NOT_FOUND: /);
    const good = await provider.post('/kyverno/v1/mutate?failOnError=true', providerRequest([oci.reference]));
    assert.equal(good.status, 200);
  });

  test('warm lookups make no registry request; metrics count lookups and registry requests', async () => {
    const index = images['index'] as PushedImage;
    await lookup('/gatekeeper/v1/resolve', [index.reference]);
    const before = (await registry.requests()).length;
    for (let i = 0; i < 5; i++) await lookup('/kyverno/v1/resolve', [index.reference]);
    assert.equal((await registry.requests()).length, before);
    assert.ok((await provider.metric('sigpin_lookups_total', { route: 'resolve', result: 'ok' })) >= 6);
    assert.ok((await provider.metric('sigpin_registry_requests_total', { method: 'HEAD' })) >= 1);
    assert.ok((await provider.metric('sigpin_cache_events_total', { layer: 'l1', result: 'hit' })) >= 5);
  });

  test('/healthz and /readyz answer; /metrics is Prometheus text', async () => {
    assert.equal((await provider.get('/healthz')).status, 200);
    assert.equal((await provider.get('/readyz')).status, 200);
    const metrics = await provider.get('/metrics');
    assert.match(metrics.text, /# TYPE sigpin_lookups_total counter/);
  });
});

describe('provider transient failures', { skip }, () => {
  test('a registry that is down gives systemError with the key left out, and nothing is cached', async () => {
    const registry = await startRegistry();
    const image = await pushImage(registry, 'team/app', 'v1', 'oci-manifest');
    const provider = await startProvider({
      config: {
        registries: { allow: [registry.host], insecure: [registry.host], timeout: '500ms', maxRetries: 0 },
        policies: [{ name: 'local', images: ['**'], verify: false }],
      },
    });
    try {
      await registry.stop();
      const down = (await provider.post('/gatekeeper/v1/mutate', providerRequest([image.reference])))
        .body as Response;
      assert.deepEqual(down.response.items, []);
      assert.match(down.response.systemError ?? '', /^REGISTRY_UNAVAILABLE: /);
      assert.ok(
        (await provider.metric('sigpin_lookups_total', { route: 'mutate', result: 'transient' })) >= 1
      );
    } finally {
      await provider.stop();
    }
  });
});

describe('Gatekeeper client certificates (clientCAFile set)', { skip }, () => {
  let registry: TestRegistry;
  let provider: TestProvider;
  let image: PushedImage;

  before(async () => {
    registry = await startRegistry();
    image = await pushImage(registry, 'team/app', 'v1', 'oci-manifest');
    const gatekeeperCa = await createCertificateAuthority('gatekeeper-ca');
    provider = await startProvider({
      config: {
        server: {
          tls: {
            clientCAFile: 'gatekeeper-ca.crt',
            clientNames: ['gatekeeper-webhook-service.gatekeeper-system.svc'],
          },
        },
        registries: { allow: [registry.host], insecure: [registry.host] },
        policies: [{ name: 'local', images: ['**'], verify: false }],
      },
      files: { 'gatekeeper-ca.crt': gatekeeperCa.certPem },
    });
    clients.good = await issueCertificate(gatekeeperCa, {
      commonName: 'gatekeeper-webhook-service.gatekeeper-system.svc',
      dnsNames: ['gatekeeper-webhook-service.gatekeeper-system.svc'],
      clientAuth: true,
    });
    clients.wrongName = await issueCertificate(gatekeeperCa, {
      commonName: 'someone-else',
      clientAuth: true,
    });
    clients.otherCa = await issueCertificate(await createCertificateAuthority('other'), {
      commonName: 'gatekeeper-webhook-service.gatekeeper-system.svc',
      dnsNames: ['gatekeeper-webhook-service.gatekeeper-system.svc'],
      clientAuth: true,
    });
  });
  const clients: Record<string, Awaited<ReturnType<typeof issueCertificate>>> = {};
  after(async () => {
    await provider?.stop();
    await registry?.stop();
  });

  test('no certificate: 401; untrusted CA: 403; wrong name: 403; Gatekeeper certificate: answered', async () => {
    const body = providerRequest([image.reference]);
    const none = await provider.post('/gatekeeper/v1/resolve', body);
    assert.equal(none.status, 401);
    assert.equal(
      (none.body as Response).response.systemError,
      'UNAUTHORIZED: a client certificate is required'
    );
    assert.deepEqual((none.body as Response).response.items, []);
    assert.equal(
      (await provider.post('/gatekeeper/v1/resolve', body, { clientCert: clients.otherCa })).status,
      403
    );
    assert.equal(
      (await provider.post('/gatekeeper/v1/resolve', body, { clientCert: clients.wrongName })).status,
      403
    );
    const ok = await provider.post('/gatekeeper/v1/resolve', body, { clientCert: clients.good });
    assert.equal(ok.status, 200);
    assert.equal((ok.body as Response).response.items[0]?.value, image.digest);
    // Kyverno never presents a certificate: its routes do not ask for one.
    assert.equal((await provider.post('/kyverno/v1/resolve', body)).status, 200);
  });
});
