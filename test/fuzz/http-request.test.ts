/**
 * Fuzzing the real provider's HTTP request handling (child process, real docker-registry behind it): arbitrary
 * bodies, content types, encodings and keys are POSTed to every lookup route. Each answer must be a 400 with a
 * JSON error, a 404 JSON error for an unknown route, or a well-formed ProviderResponse (one item per distinct key,
 * value xor definitive error, transient failures only as systemError); never a 5xx, never a hang, and the
 * server keeps serving. On the verify routes nothing but the one signed image may be trusted.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { requireBinary } from '../support/binaries.ts';
import { startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { providerConfig, providerResponseOf, seedImages, trustedVerdict } from '../resilience/support.ts';

const ROUTES = ['resolve', 'mutate', 'verify'].flatMap((r) => [`/gatekeeper/v1/${r}`, `/kyverno/v1/${r}`]);

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

describe('fuzz: HTTP requests to the real provider', requireBinary('docker-registry'), () => {
  let registry: TestRegistry;
  let provider: TestProvider;
  let agent: https.Agent;
  let signedKey: string;
  let signedDigest: string;
  let knownKeys: string[];

  before(async () => {
    registry = await startRegistry();
    const images = await seedImages(registry, { signed: 1, unsigned: 1 });
    const [signedName, digest] = [...images.signed.entries()][0] as [string, string];
    signedKey = `${registry.host}/${signedName}`;
    signedDigest = digest;
    knownKeys = [signedKey, `${registry.host}/${[...images.unsigned.keys()][0] as string}`];
    const { config, files } = providerConfig(registry.host, images.signer.publicKeyPem, {
      server: { maxKeys: 50, bodyLimitBytes: 16 * 1024 },
    });
    provider = await startProvider({ config, files });
    agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: provider.ca.certPem });
  });

  after(async () => {
    agent?.destroy();
    await provider?.stop();
    await registry?.stop();
  });

  function send(path: string, body: Buffer, headers: Record<string, string>): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: provider.port,
          method: 'POST',
          path,
          agent,
          timeout: 15_000,
          headers: { ...headers, 'content-length': String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: String(res.headers['content-type'] ?? ''),
              text: Buffer.concat(chunks).toString('utf8'),
            })
          );
          res.on('error', reject);
        }
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within 15 s for ${path}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** The contract for any answer; returns the keys answered when it was a ProviderResponse. */
  function checkAnswer(a: Answer, path: string, sentKeys?: string[]): void {
    assert.ok(a.status < 500, `HTTP ${a.status} for ${path}: ${a.text.slice(0, 300)}`);
    assert.match(a.contentType, /^application\/json/, `not JSON: ${a.contentType} ${a.text.slice(0, 200)}`);
    const body = JSON.parse(a.text) as unknown;
    if (a.status !== 200) {
      // Kyverno routes may answer 422/503 only with ?failOnError=true, which this fuzzer never sets.
      assert.ok(a.status === 400 || a.status === 404, `unexpected status ${a.status}`);
      assert.equal(typeof (body as { error?: unknown }).error, 'string');
      assert.ok((body as { error: string }).error.length > 0);
      return;
    }
    const response = providerResponseOf(a.status, body);
    if (sentKeys) {
      const distinct = new Set(sentKeys);
      for (const item of response.items)
        assert.ok(distinct.has(item.key), `answered a key not asked: ${item.key}`);
      const answered = new Set(response.items.map((i) => i.key));
      assert.equal(answered.size, response.items.length, 'one item per distinct key');
      // Every key is answered, unless it was left out because of a transient failure (then systemError says so).
      if (answered.size < distinct.size)
        assert.ok(response.systemError, 'keys missing without a systemError');
    }
    if (path.endsWith('/verify')) {
      for (const item of response.items) {
        const verdict = trustedVerdict(item);
        if (verdict) assert.equal(verdict.digest, signedDigest, `trusted something unsigned: ${item.key}`);
      }
    }
  }

  const header = fc.record(
    {
      'content-type': fc.constantFrom(
        'application/json',
        'application/json; charset=utf-16',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        '',
        'application/json; charset=bogus'
      ),
      'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'bogus'),
      authorization: fc.constantFrom('Bearer x', 'Basic Og==', ''),
      'x-anything': fc.stringMatching(/^[ -~]{0,40}$/),
    },
    { requiredKeys: [] }
  );

  it('arbitrary bodies and headers: 400 JSON or a valid ProviderResponse, never a 5xx', async (t) => {
    const statuses = new Map<number, number>();
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v))),
      fc.constant(Buffer.alloc(20 * 1024, 0x20)), // over the body limit
      // A valid request under the same odd headers: answered unless an encoding makes it unreadable.
      fc.constant(Buffer.from(JSON.stringify({ request: { keys: knownKeys } }))),
      fc.constant(Buffer.from('{"request":{"keys":' + '['.repeat(5000) + ']'.repeat(5000) + '}}'))
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), body, header, async (path, b, h) => {
        const answer = await send(path, b, h);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        checkAnswer(answer, path);
      }),
      { numRuns: 250 }
    );
    t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok((statuses.get(400) ?? 0) > 0 && (statuses.get(200) ?? 0) > 0);
  });

  it('ProviderRequests with arbitrary keys: every distinct key answered or left out with a systemError', async () => {
    let answered = 0;
    const key = fc.oneof(
      fc.constantFrom(...knownKeys),
      fc.string({ maxLength: 60 }),
      fc.stringMatching(/^\[(ns|old)=[^\]]{0,40}\][ -~]{0,40}$/),
      fc.constantFrom(
        '[::1]:5000/app',
        'ghcr.io/acme/app:1',
        'a'.repeat(600),
        '',
        `[old=${signedKey}]${signedKey}`
      ),
      fc.stringMatching(/^[a-z0-9]{1,8}$/).map((t) => `${registry.host}/fuzz/${t}:${t}`)
    );
    const request = fc.record(
      {
        apiVersion: fc.oneof(fc.constant('externaldata.gatekeeper.sh/v1beta1'), fc.string({ maxLength: 10 })),
        kind: fc.constant('ProviderRequest'),
        request: fc.record({ keys: fc.array(key, { maxLength: 60 }) }),
      },
      { requiredKeys: ['request'] }
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), request, async (path, r) => {
        const answer = await send(path, Buffer.from(JSON.stringify(r)), {
          'content-type': 'application/json',
        });
        if (answer.status === 200) answered++;
        checkAnswer(answer, path, answer.status === 200 ? r.request.keys : undefined);
        if (r.request.keys.length > 50) assert.equal(answer.status, 400, 'over maxKeys must be refused');
      }),
      { numRuns: 200 }
    );
    assert.ok(answered > 100, `only ${answered} ProviderResponses`);
  });

  it('unknown routes and methods answer 404 JSON; the server still serves afterwards', async () => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^\/[a-zA-Z0-9/_.%-]{0,40}$/), async (path) => {
        fc.pre(!ROUTES.includes(path));
        checkAnswer(await send(path, Buffer.from('{}'), { 'content-type': 'application/json' }), path);
      }),
      { numRuns: 60 }
    );
    const health = await provider.get('/healthz');
    assert.equal(health.status, 200);
    assert.ok(provider.running());
    assert.equal(await provider.metric('sigpin_request_duration_seconds_count', { status: '500' }), 0);
  });
});
