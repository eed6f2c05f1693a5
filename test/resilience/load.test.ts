/**
 * The real provider under concurrent load: 1,000 concurrent requests for one cold tag cost one registry request
 * (singleflight + cache), and the serving certificate rotates under load without a failed request.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { issueCertificate } from '../../provider/src/server/certificates.ts';
import { requireBinary } from '../support/binaries.ts';
import { startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { manifestRequests, startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import {
  assertHealthy,
  boundedLoad,
  itemFor,
  providerConfig,
  providerResponseOf,
  pushTags,
  request,
  seedImages,
  trustedVerdict,
  type SeededImages,
} from './support.ts';

describe('resilience: concurrent load', requireBinary('docker-registry'), () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let images: SeededImages;
  let fresh: string[];
  const providers: TestProvider[] = [];

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.url);
    images = await seedImages(registry, { signed: 1, unsigned: 1 });
    fresh = await pushTags(registry, 'l', 3);
  });

  after(async () => {
    for (const p of providers) await p.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  it('1,000 concurrent requests for the same cold tag make exactly one registry request', async () => {
    // Generous deadlines: 1,000 TLS handshakes on a busy 2-core machine take a while, and a request that gave up
    // would let a later one start a second load.
    const { config, files } = providerConfig(proxy.host, images.signer.publicKeyPem, {
      server: { timeouts: { resolve: '30s', mutate: '30s', verify: '30s' } },
      registries: { timeout: '20s' },
    });
    const provider = await startProvider({ config, files });
    providers.push(provider);
    const tag = fresh[0] as string;
    const key = `${proxy.host}/${tag}`;
    const [signedName, signedDigest] = [...images.signed.entries()][0] as [string, string];
    const signedKey = `${proxy.host}/${signedName}`;
    // Hold the registry's answer a little so the requests really overlap the load.
    proxy.setFault({ kind: 'slow', delayMs: 300 }, manifestRequests);
    proxy.resetLog();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1_000, ca: provider.ca.certPem });
    const send = (route: string, keys: string[]) => postWith(agent, provider.port, route, keys);
    const answers = await Promise.all([
      ...Array.from({ length: 700 }, () => send('resolve', [key])),
      ...Array.from({ length: 300 }, () => send('verify', [signedKey])),
    ]);
    agent.destroy();
    proxy.clear();
    const digests = new Set<unknown>();
    answers.slice(0, 700).forEach(({ status, body }) => {
      const r = providerResponseOf(status, body);
      digests.add(itemFor(r, key)?.value);
    });
    answers.slice(700).forEach(({ status, body }) => {
      const r = providerResponseOf(status, body);
      assert.equal(trustedVerdict(itemFor(r, signedKey))?.digest, signedDigest);
    });
    assert.equal(digests.size, 1, `answers disagree: ${[...digests].join(', ')}`);
    assert.match(String([...digests][0]), /^sha256:[0-9a-f]{64}$/);
    const seen = proxy.log();
    const tagHeads = seen.filter(
      (r) => r.method === 'HEAD' && r.path.endsWith(`/manifests/${tag.split(':')[1]}`)
    );
    assert.equal(tagHeads.length, 1, `${tagHeads.length} registry requests for the cold tag`);
    // Verification of one digest: one HEAD of the tag and one fetch of each signature object, not 300.
    const signedTag = signedName.split(':')[1] as string;
    const signedHeads = seen.filter((r) => r.method === 'HEAD' && r.path.endsWith(`/manifests/${signedTag}`));
    const sigGets = seen.filter((r) => r.method === 'GET' && r.path.endsWith('.sig'));
    assert.equal(signedHeads.length, 1);
    assert.equal(sigGets.length, 1);
    // 1,000 TLS connections at once: their buffers, not the cache, set the peak here.
    await assertHealthy(provider, 600);
  });

  it('the serving certificate rotates under load without a failed request', async () => {
    const { config, files } = providerConfig(registry.host, images.signer.publicKeyPem, {
      server: { tls: { reloadInterval: '200ms' } },
    });
    const provider = await startProvider({ config, files });
    providers.push(provider);
    const key = `${registry.host}/${fresh[1] as string}`;
    const unsignedKey = `${registry.host}/${[...images.unsigned.keys()][0] as string}`;
    // Renewed by the same CA (what cert-manager does); told apart from the first by serial number.
    const next = await issueCertificate(provider.ca, {
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const nextSerial = new X509Certificate(next.certPem).serialNumber;
    const trust = [provider.ca.certPem];
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 2, ca: trust });
    const serials = new Set<string>();
    const results = await boundedLoad(
      24,
      4,
      async (_round, slot) => {
        // Half over fresh connections (each one shows the certificate served now), half over kept-alive ones.
        const answer = await postWith(
          slot % 2 === 0 ? undefined : keepAlive,
          provider.port,
          'verify',
          [key, unsignedKey],
          trust
        );
        if (answer.serial) serials.add(answer.serial);
        return answer;
      },
      async (round) => {
        if (round === 6) {
          // A half-finished rotation (new certificate, old key) must be skipped, not applied or fatal.
          await writeFile(path.join(provider.dir, 'tls.crt'), next.certPem);
          await sleep(700); // several reload intervals: the watcher sees the mismatched pair
        }
        if (round === 10) await writeFile(path.join(provider.dir, 'tls.key'), next.keyPem);
        if (round === 7) assert.ok(!serials.has(nextSerial), 'a certificate without its key was served');
        if (round >= 10 && round < 23 && !serials.has(nextSerial)) await sleep(100);
      }
    );
    keepAlive.destroy();
    for (const { status, body } of results) {
      const r = providerResponseOf(status, body);
      assert.equal(trustedVerdict(itemFor(r, unsignedKey)), undefined);
      assert.match(String((itemFor(r, key)?.value as { digest?: string } | undefined)?.digest), /^sha256:/);
    }
    assert.equal(serials.size, 2, 'expected the original and the renewed certificate');
    assert.ok(serials.has(nextSerial), 'the renewed certificate was never served');
    assert.match(provider.logs(), /TLS material not reloaded/);
    // New connections now all get the renewed certificate.
    const last = await postWith(undefined, provider.port, 'resolve', [key], trust);
    assert.equal(last.serial, nextSerial);
    await assertHealthy(provider);
  });
});

interface Answer {
  status: number;
  body: unknown;
  /** Serial number of the server certificate, on a new connection. */
  serial?: string;
}

function postWith(
  agent: https.Agent | undefined,
  port: number,
  route: string,
  keys: string[],
  ca?: string[]
): Promise<Answer> {
  const body = JSON.stringify(request(keys));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/gatekeeper/v1/${route}`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        ...(agent ? { agent } : { agent: false, ca }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        const cert = agent ? undefined : (res.socket as TLSSocket).getPeerCertificate();
        const serial = cert?.serialNumber;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as unknown,
              ...(serial ? { serial } : {}),
            });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: text });
          }
        });
        res.on('error', reject);
      }
    );
    req.on('error', reject);
    req.end(body);
  });
}
