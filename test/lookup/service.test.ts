import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { SigpinError } from '../../provider/src/errors.ts';
import {
  LookupService,
  type DigestSource,
  type Loader,
  type Verifier,
} from '../../provider/src/lookup/index.ts';
import { compileTrustPolicy } from '../../provider/src/trust/index.ts';
import { parseConfig } from '../../provider/src/config/index.ts';

// Unit tests of the per-key logic with in-memory fakes for the registry, cache and verifier; the same paths run
// against the real registry, Redis and signatures in test/server and test/verify.
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function fakes(tags: Record<string, string | SigpinError>) {
  const calls = { resolve: [] as string[], verify: [] as string[] };
  const registry: DigestSource = {
    assertAllowed(host) {
      if (host !== 'registry.test:5000') throw new SigpinError('NOT_ALLOWED', `${host} is not allowed`);
    },
    async resolveDigest(_registry, repository, tag) {
      calls.resolve.push(`${repository}:${tag}`);
      const answer = tags[`${repository}:${tag}`];
      if (answer === undefined) throw new SigpinError('NOT_FOUND', `${repository}:${tag} not found`);
      if (answer instanceof SigpinError) throw answer;
      return { digest: answer };
    },
  };
  const verifier: Verifier = {
    async verify({ repository, digest }) {
      calls.verify.push(`${repository}@${digest}`);
      if (repository === 'unsigned') throw new SigpinError('UNSIGNED', 'no signatures');
      return { signatures: [{ authority: 'release', kind: 'key' }] };
    },
  };
  const loader: Loader = {
    load: async (_key, load) => ({ value: await load(AbortSignal.timeout(5_000)), source: 'load' }),
  };
  return { registry, verifier, loader, calls };
}

const config = parseConfig({
  authorities: [{ name: 'release', key: { pem: 'x' } }],
  policies: [
    { name: 'open', images: ['registry.test:5000/open/**'], verify: false },
    {
      name: 'readonly',
      images: ['registry.test:5000/ro/**'],
      mode: 'validate-only',
      authorities: ['release'],
    },
    { name: 'signed', images: ['registry.test:5000/**'], authorities: ['release'] },
  ],
});

type Fakes = ReturnType<typeof fakes>;

function service(
  tags: Record<string, string | SigpinError>,
  o: {
    trust?: Parameters<typeof compileTrustPolicy>[0];
    adjust?: (f: Fakes) => void;
    verifier?: boolean;
  } = {}
) {
  const f = fakes(tags);
  o.adjust?.(f);
  const lookup = new LookupService({
    registry: f.registry,
    loader: f.loader,
    ...(o.verifier === false ? {} : { verifier: f.verifier }),
    trust: compileTrustPolicy(o.trust ?? config),
    timings: { digestTtlMs: 1, digestStaleMs: 1, verdictTtlMs: 1, negativeTtlMs: 1, loadTimeoutMs: 1000 },
    namespacedCredentials: false,
    logger: pino({ level: 'silent' }),
  });
  return { lookup, calls: f.calls };
}

const signal = (): AbortSignal => AbortSignal.timeout(5_000);

test('resolve: digests per key, definitive failures as item errors with stable codes', async () => {
  const { lookup } = service({ 'app:1': D1 });
  const out = await lookup.lookup(
    'resolve',
    [
      'registry.test:5000/app:1',
      'registry.test:5000/app:2',
      'Bad Ref',
      'evil.test/app:1',
      `registry.test:5000/app@${D2}`,
    ],
    signal()
  );
  assert.equal(out.systemError, undefined);
  assert.deepEqual(out.items[0], { key: 'registry.test:5000/app:1', value: D1 });
  assert.match(out.items[1]?.error ?? '', /^NOT_FOUND: /);
  assert.match(out.items[2]?.error ?? '', /^INVALID_REFERENCE: /);
  assert.match(out.items[3]?.error ?? '', /^NOT_ALLOWED: /);
  assert.deepEqual(out.items[4], { key: `registry.test:5000/app@${D2}`, value: D2 });
});

test('transient failures leave the key out and set systemError; other keys still answer', async () => {
  const { lookup } = service({
    'app:1': D1,
    'app:down': new SigpinError('REGISTRY_UNAVAILABLE', 'registry answered 503'),
  });
  const out = await lookup.lookup(
    'resolve',
    ['registry.test:5000/app:1', 'registry.test:5000/app:down'],
    signal()
  );
  assert.deepEqual(out.items, [{ key: 'registry.test:5000/app:1', value: D1 }]);
  assert.match(out.systemError ?? '', /^REGISTRY_UNAVAILABLE: registry answered 503/);
});

test('mutate: pins with the tag kept, leaves pinned images and validate-only policies alone', async () => {
  const { lookup, calls } = service({ 'app:1': D1, 'ro/app:1': D1 });
  const out = await lookup.lookup(
    'mutate',
    ['registry.test:5000/app:1', `registry.test:5000/app:1@${D2}`, 'registry.test:5000/ro/app:1'],
    signal()
  );
  assert.deepEqual(
    out.items.map((i) => i.value),
    [`registry.test:5000/app:1@${D1}`, `registry.test:5000/app:1@${D2}`, 'registry.test:5000/ro/app:1']
  );
  assert.deepEqual(calls.resolve, ['app:1']);
});

test('mutate and verify fail closed when no policy matches', async () => {
  const narrow = parseConfig({
    policies: [{ name: 'only', images: ['registry.test:5000/only/*'], verify: false }],
  });
  const { lookup } = service({ 'app:1': D1 }, { trust: narrow, verifier: false });
  for (const route of ['mutate', 'verify'] as const) {
    const out = await lookup.lookup(route, ['registry.test:5000/app:1'], signal());
    assert.match(out.items[0]?.error ?? '', /^NO_POLICY: /);
  }
});

test('verify: verdict object, verify:false policies, unsigned images as UNSIGNED', async () => {
  const { lookup } = service({ 'app:1': D1, 'open/app:1': D1, 'unsigned:1': D2 });
  const out = await lookup.lookup(
    'verify',
    ['registry.test:5000/app:1', 'registry.test:5000/open/app:1', 'registry.test:5000/unsigned:1'],
    signal()
  );
  assert.deepEqual(out.items[0]?.value, {
    digest: D1,
    pinned: `registry.test:5000/app:1@${D1}`,
    policy: 'signed',
    mode: 'mutate',
    verified: true,
    signatures: [{ authority: 'release', kind: 'key' }],
  });
  assert.deepEqual(out.items[1]?.value, {
    digest: D1,
    pinned: `registry.test:5000/open/app:1@${D1}`,
    policy: 'open',
    mode: 'mutate',
    verified: false,
  });
  assert.match(out.items[2]?.error ?? '', /^UNSIGNED: /);
});

test('verify UPDATE skip: same digest from the same repository skips signatures; anything else verifies', async () => {
  const { lookup, calls } = service({ 'app:1': D1, 'other:1': D1 });
  const out = await lookup.lookup(
    'verify',
    [
      `[ns=default,old=registry.test:5000/app:1@${D1}]registry.test:5000/app:1`,
      `[old=registry.test:5000/app:1@${D2}]registry.test:5000/app:1`,
      `[old=registry.test:5000/app:1@${D1}]registry.test:5000/other:1`,
      `[old=registry.test:5000/app:1]registry.test:5000/app:1`,
    ],
    signal()
  );
  const skipped = out.items.filter(
    (i) => (i.value as { reason?: string } | undefined)?.reason === 'unchanged'
  ).length;
  assert.equal(skipped, 1);
  assert.deepEqual(calls.verify, [`app@${D1}`, `other@${D1}`, `app@${D1}`]);
});

test('a request deadline ends the wait without an item error', async () => {
  const { lookup } = service(
    {},
    { adjust: (f) => (f.registry.resolveDigest = () => new Promise(() => {})), verifier: false }
  );
  const out = await lookup.lookup('resolve', ['registry.test:5000/slow:1'], AbortSignal.timeout(50));
  assert.deepEqual(out.items, []);
  assert.match(out.systemError ?? '', /^REGISTRY_UNAVAILABLE: .*deadline/);
});
