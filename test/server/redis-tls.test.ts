import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCertificateAuthority, issueCertificate } from '../../provider/src/server/certificates.ts';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, type PushedImage } from '../support/images.ts';
import { freePort } from '../support/ports.ts';
import { providerRequest, startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';

interface Response {
  response: { items: Array<{ key: string; value?: unknown; error?: string }>; systemError?: string };
}

const skip = requireBinary('docker-registry').skip ?? requireBinary('redis-server').skip;

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not listen');
}

// The chart's bundled Redis speaks TLS with a password and a certificate from the chart's CA, which the provider
// trusts through NODE_EXTRA_CA_CERTS: the same set-up with a real redis-server.
describe('shared cache over rediss:// with a password and a private CA (real redis-server)', { skip }, () => {
  let dir: string;
  let redis: ChildProcess;
  let registry: TestRegistry;
  let image: PushedImage;
  const providers: TestProvider[] = [];
  const password = randomBytes(12).toString('hex');
  const hmac = randomBytes(32);
  let redisUrl = '';
  const providerOptions = () => ({
    config: {
      registries: { allow: [registry.host], insecure: [registry.host] },
      cache: { url: redisUrl, hmacKeyFile: 'hmac.key', required: true },
      policies: [{ name: 'all', images: ['**'], verify: false }],
      log: { level: 'debug' },
    },
    files: { 'hmac.key': hmac },
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sigpin-redis-tls-'));
    const ca = await createCertificateAuthority('redis CA');
    const serving = await issueCertificate(ca, { commonName: 'redis', ipAddresses: ['127.0.0.1'] });
    await writeFile(path.join(dir, 'ca.crt'), ca.certPem);
    await writeFile(path.join(dir, 'redis.crt'), serving.certPem);
    await writeFile(path.join(dir, 'redis.key'), serving.keyPem);
    const port = await freePort();
    redis = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        path.join(dir, 'redis.crt'),
        '--tls-key-file',
        path.join(dir, 'redis.key'),
        '--tls-auth-clients',
        'no',
        '--requirepass',
        password,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' }
    );
    await waitForPort(port, redis);
    registry = await startRegistry();
    image = await pushImage(registry, 'team/app', 'v1', 'oci-manifest');
    redisUrl = `rediss://:${password}@127.0.0.1:${port}`;
    for (let i = 0; i < 2; i++) {
      providers.push(
        await startProvider({ ...providerOptions(), env: { NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.crt') } })
      );
    }
  });
  after(async () => {
    for (const p of providers) await p.stop();
    redis?.kill('SIGKILL');
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('both replicas are ready; the second answers from the TLS Redis with no registry request', async () => {
    const [first, second] = providers as [TestProvider, TestProvider];
    assert.equal((await first.get('/readyz')).status, 200);
    assert.equal((await second.get('/readyz')).status, 200);
    const a = (await first.post('/gatekeeper/v1/resolve', providerRequest([image.reference])))
      .body as Response;
    assert.equal(a.response.items[0]?.value, image.digest);
    const before = (await registry.requests()).length;
    const b = (await second.post('/gatekeeper/v1/resolve', providerRequest([image.reference])))
      .body as Response;
    assert.equal(b.response.items[0]?.value, image.digest);
    assert.equal((await registry.requests()).length, before);
    assert.equal(await second.metric('sigpin_cache_events_total', { layer: 'l2', result: 'hit' }), 1);
    assert.equal(first.logs().includes(password), false, 'the Redis password never reaches the logs');
  });

  test('without the CA the Redis certificate is refused: not ready, and lookups still answer from memory', async () => {
    const untrusting = await startProvider(providerOptions());
    try {
      assert.equal((await untrusting.get('/readyz')).status, 503);
      const out = (await untrusting.post('/kyverno/v1/resolve', providerRequest([image.reference])))
        .body as Response;
      assert.equal(out.response.items[0]?.value, image.digest);
      assert.equal(await untrusting.metric('sigpin_cache_events_total', { layer: 'l2', result: 'hit' }), 0);
    } finally {
      await untrusting.stop();
    }
  });
});
