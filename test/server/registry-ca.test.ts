import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createCertificateAuthority, issueCertificate } from '../../provider/src/server/certificates.ts';
import { providerRequest, startProvider } from '../support/provider.ts';

interface Response {
  response: { items: Array<{ key: string; value?: unknown; error?: string }>; systemError?: string };
}

const DIGEST = `sha256:${'c'.repeat(64)}`;

// docker-registry here serves plain HTTP in the other tests; a fake HTTPS registry with a certificate from a
// private CA shows what registries.caFile changes.
describe('registries.caFile: a registry with a private CA (fake HTTPS registry)', () => {
  let registry: Server;
  let host = '';
  let caPem = '';

  before(async () => {
    const ca = await createCertificateAuthority('private registry CA');
    caPem = ca.certPem;
    const serving = await issueCertificate(ca, { commonName: 'registry', ipAddresses: ['127.0.0.1'] });
    registry = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      if (req.method === 'HEAD' && req.url === '/v2/team/app/manifests/v1') {
        res.writeHead(200, {
          'docker-content-digest': DIGEST,
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'content-length': '512',
        });
        res.end();
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => registry?.close(r));
  });

  const config = (extra: Record<string, unknown>) => ({
    registries: { allow: [host], maxRetries: 0, timeout: '2s', ...extra },
    policies: [{ name: 'all', images: ['**'], verify: false }],
  });

  test('without the CA the certificate is refused (transient, key left out); with caFile the tag resolves', async () => {
    const image = `${host}/team/app:v1`;
    const without = await startProvider({ config: config({}) });
    try {
      const body = (await without.post('/gatekeeper/v1/resolve', providerRequest([image]))).body as Response;
      assert.deepEqual(body.response.items, []);
      assert.match(body.response.systemError ?? '', /^REGISTRY_UNAVAILABLE: /);
    } finally {
      await without.stop();
    }
    const withCa = await startProvider({
      config: config({ caFile: 'registry-ca.pem' }),
      files: { 'registry-ca.pem': caPem },
    });
    try {
      const body = (await withCa.post('/gatekeeper/v1/resolve', providerRequest([image]))).body as Response;
      assert.deepEqual(body.response.items, [{ key: image, value: DIGEST }]);
    } finally {
      await withCa.stop();
    }
  });
});
