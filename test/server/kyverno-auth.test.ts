import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { providerRequest, startProvider, type TestProvider } from '../support/provider.ts';
import { createCertificateAuthority, issueCertificate } from '../../provider/src/server/certificates.ts';

// No Kubernetes API server runs here: a fake one answers TokenReviews on loopback.
describe('Kyverno bearer tokens checked by TokenReview (fake API server)', () => {
  let api: Server;
  let provider: TestProvider;
  const reviews: Array<{ token: string; audiences: string[] }> = [];
  const GOOD = 'good-token-0123456789';
  const OTHER_AUDIENCE = 'audience-token-0123456789';
  const OTHER_USER = 'other-user-token-0123456789';

  before(async () => {
    const ca = await createCertificateAuthority('fake kubernetes CA');
    const serving = await issueCertificate(ca, { commonName: 'kubernetes', ipAddresses: ['127.0.0.1'] });
    api = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
          res.writeHead(404).end();
          return;
        }
        const review = JSON.parse(body) as { spec: { token: string; audiences: string[] } };
        reviews.push(review.spec);
        const authenticated = [GOOD, OTHER_AUDIENCE, OTHER_USER].includes(review.spec.token);
        const audiences = review.spec.token === OTHER_AUDIENCE ? ['kubernetes'] : review.spec.audiences;
        const username =
          review.spec.token === OTHER_USER
            ? 'system:serviceaccount:default:someone'
            : 'system:serviceaccount:kyverno:kyverno-admission-controller';
        res.writeHead(201, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            status: {
              authenticated,
              audiences,
              user: { username },
            },
          })
        );
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as AddressInfo).port;
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: fake, cluster: {server: "https://127.0.0.1:${port}", certificate-authority-data: ${Buffer.from(ca.certPem).toString('base64')}}}]`,
      'users: [{name: sigpin, user: {token: provider-sa-token}}]',
      'contexts: [{name: fake, context: {cluster: fake, user: sigpin}}]',
      'current-context: fake',
    ].join('\n');
    provider = await startProvider({
      config: {
        server: {
          kyvernoAuth: {
            tokenReview: true,
            audience: 'sigpin.example',
            usernames: ['system:serviceaccount:kyverno:kyverno-admission-controller'],
          },
        },
        kubernetes: { kubeconfig: 'kubeconfig' },
        registries: { allow: [] },
        policies: [{ name: 'all', images: ['**'], verify: false }],
      },
      files: { kubeconfig },
    });
  });
  after(async () => {
    await provider?.stop();
    await new Promise((r) => api?.close(r));
  });

  const body = providerRequest(['ghcr.io/acme/app:1']);

  test('no token or a malformed header: 401 without asking the API server', async () => {
    assert.equal((await provider.post('/kyverno/v1/resolve', body)).status, 401);
    assert.equal(
      (await provider.post('/kyverno/v1/resolve', body, { headers: { authorization: 'Basic x' } })).status,
      401
    );
    assert.equal(reviews.length, 0);
  });

  test('a token the API server rejects, one for another audience, or of another ServiceAccount: 401', async () => {
    const user = await provider.post('/kyverno/v1/resolve', body, {
      headers: { authorization: `Bearer ${OTHER_USER}` },
    });
    assert.equal(user.status, 401);
    const bad = await provider.post('/kyverno/v1/resolve', body, {
      headers: { authorization: 'Bearer bad-token-0123456789' },
    });
    assert.equal(bad.status, 401);
    const aud = await provider.post('/kyverno/v1/resolve', body, {
      headers: { authorization: `Bearer ${OTHER_AUDIENCE}` },
    });
    assert.equal(aud.status, 401);
  });

  test('a valid token for the audience is answered, and reviewed once while cached', async () => {
    const before = reviews.length;
    for (let i = 0; i < 3; i++) {
      const ok = await provider.post('/kyverno/v1/resolve', body, {
        headers: { authorization: `Bearer ${GOOD}` },
      });
      assert.equal(ok.status, 200);
    }
    assert.equal(reviews.length - before, 1);
    assert.deepEqual(reviews.at(-1), { token: GOOD, audiences: ['sigpin.example'] });
    assert.doesNotMatch(provider.logs(), new RegExp(GOOD));
  });

  test('Gatekeeper routes do not take bearer tokens (they use client certificates)', async () => {
    const gk = await provider.post('/gatekeeper/v1/resolve', body);
    assert.equal(gk.status, 200);
  });
});
