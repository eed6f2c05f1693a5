// Pure parts of the registry client: challenge parsing, address classification, allowlist, docker config
// credentials, token lifetimes, Retry-After, the referrers fallback tag and the concurrency limiter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AddressPolicy,
  canonicalRegistry,
  dialHost,
  isSpecialAddress,
  parseHostPort,
} from '../../provider/src/registry/address-policy.ts';
import { parseChallenges } from '../../provider/src/registry/challenge.ts';
import { credentialIdentity, parseDockerConfig } from '../../provider/src/registry/credentials.ts';
import { KeyedLimiter } from '../../provider/src/registry/limiter.ts';
import { referrersFallbackTag } from '../../provider/src/registry/oci.ts';
import { TokenCache, tokenExpiry } from '../../provider/src/registry/token-cache.ts';
import { parseRetryAfter } from '../../provider/src/registry/transport.ts';

test('challenges: bearer params with a comma inside a quoted scope', () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:org/app:pull,push"'
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          service: 'registry.example',
          scope: 'repository:org/app:pull,push',
        },
      },
    ]
  );
});

test('challenges: several challenges, token values, escapes and token68', () => {
  assert.deepEqual(
    parseChallenges('Basic realm="a \\"b\\"", charset=UTF-8, Bearer realm=x , Negotiate abc=='),
    [
      { scheme: 'basic', params: { realm: 'a "b"', charset: 'UTF-8' } },
      { scheme: 'bearer', params: { realm: 'x' } },
      { scheme: 'negotiate', params: { '': 'abc==' } },
    ]
  );
  assert.deepEqual(parseChallenges(undefined), []);
  assert.deepEqual(parseChallenges('  '), []);
  assert.deepEqual(parseChallenges('BEARER Realm="r"'), [{ scheme: 'bearer', params: { realm: 'r' } }]);
});

test('special addresses: loopback, private, link-local, CGNAT, ULA, mapped; public ones are not', () => {
  for (const a of [
    '127.0.0.1',
    '10.1.2.3',
    '172.31.255.255',
    '192.168.0.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fd00:ec2::254',
    'fe80::1',
    '::ffff:127.0.0.1',
    '64:ff9b::a00:1',
    'nonsense',
  ]) {
    assert.equal(isSpecialAddress(a), true, a);
  }
  for (const a of [
    '8.8.8.8',
    '140.82.112.34',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '2a00:1450::1',
  ]) {
    assert.equal(isSpecialAddress(a), false, a);
  }
});

test('host parsing and canonical registry names', () => {
  assert.deepEqual(parseHostPort('Registry.Example.com:5000'), { host: 'registry.example.com', port: 5000 });
  assert.deepEqual(parseHostPort('[::1]:5000'), { host: '::1', port: 5000 });
  assert.deepEqual(parseHostPort('[fd00::1]'), { host: 'fd00::1' });
  assert.throws(() => parseHostPort('a/b'));
  assert.throws(() => parseHostPort('host:99999'));
  assert.equal(canonicalRegistry('index.docker.io'), 'docker.io');
  assert.equal(canonicalRegistry('registry-1.docker.io'), 'docker.io');
  assert.deepEqual(dialHost('docker.io'), { host: 'registry-1.docker.io' });
  assert.deepEqual(dialHost('ghcr.io'), { host: 'ghcr.io' });
  assert.deepEqual(dialHost('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
});

test('allowlist: explicit entries, ports, "*" only for public hosts, docker.io aliases', () => {
  const policy = new AddressPolicy(
    ['ghcr.io', 'registry.internal:5000', 'index.docker.io', '10.0.0.5'],
    ['10.0.0.5']
  );
  assert.deepEqual(policy.permission('ghcr.io'), { allowed: true, explicit: true });
  assert.deepEqual(policy.permission('ghcr.io:8443'), { allowed: true, explicit: true });
  assert.deepEqual(policy.permission('registry.internal:5000'), { allowed: true, explicit: true });
  assert.equal(policy.permission('registry.internal').allowed, false);
  assert.equal(policy.permission('registry.internal:5001').allowed, false);
  assert.equal(policy.permission('docker.io').allowed, true);
  assert.equal(policy.permission('quay.io').allowed, false);
  assert.equal(policy.permission('10.0.0.5:5000').allowed, true);
  assert.equal(policy.isInsecure('10.0.0.5:5000'), true);
  assert.equal(policy.isInsecure('ghcr.io'), false);
  const wildcard = new AddressPolicy(['*']);
  assert.deepEqual(wildcard.permission('quay.io'), { allowed: true, explicit: false });
  assert.equal(wildcard.permission('10.0.0.1').allowed, false);
  assert.equal(wildcard.permission('[::1]:5000').allowed, false);
  assert.equal(wildcard.permission('169.254.169.254').allowed, false);
});

test('docker config: auth, username/password, identitytoken, registrytoken, Docker Hub key, bad entries', () => {
  const { credentials, invalidKeys } = parseDockerConfig({
    auths: {
      'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw:with:colons').toString('base64') },
      'registry.example.com:5000': { username: 'u', password: 'p' },
      'https://ghcr.io/v2/': { identitytoken: 'refresh' },
      'quay.io': { registrytoken: 'bearer' },
      'broken.example': { auth: Buffer.from('no-colon').toString('base64') },
      'also broken': { auth: 'x' },
    },
  });
  assert.deepEqual(credentials.get('docker.io'), { username: 'hub', password: 'pw:with:colons' });
  assert.deepEqual(credentials.get('registry.example.com:5000'), { username: 'u', password: 'p' });
  assert.deepEqual(credentials.get('ghcr.io'), { identityToken: 'refresh' });
  assert.deepEqual(credentials.get('quay.io'), { registryToken: 'bearer' });
  assert.deepEqual(invalidKeys.sort(), ['also broken', 'broken.example']);
  assert.deepEqual(parseDockerConfig('not an object').invalidKeys, ['(document)']);
});

test('credential identity is stable, distinct and does not contain the secret', () => {
  const a = credentialIdentity({ username: 'u', password: 'secret-password' });
  assert.equal(a, credentialIdentity({ username: 'u', password: 'secret-password' }));
  assert.notEqual(a, credentialIdentity({ username: 'u', password: 'other' }));
  assert.equal(credentialIdentity(undefined), 'anonymous');
  assert.ok(!a.includes('secret'));
});

test('token expiry: issued_at + expires_in minus a margin; 60 s minimum; skewed issued_at ignored', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(
    tokenExpiry({ token: 't', expiresInSeconds: 300, issuedAt: '2026-01-01T00:00:00Z' }, now),
    now + 270_000
  );
  assert.equal(
    tokenExpiry({ token: 't', expiresInSeconds: 300, issuedAt: '2025-12-31T23:59:00Z' }, now),
    now + 210_000
  );
  assert.equal(tokenExpiry({ token: 't' }, now), now + 45_000);
  assert.equal(tokenExpiry({ token: 't', expiresInSeconds: 5 }, now), now + 45_000);
  assert.equal(
    tokenExpiry({ token: 't', expiresInSeconds: 300, issuedAt: '2020-01-01T00:00:00Z' }, now),
    now + 270_000
  );
});

test('token cache: concurrent fetches share one request; a rejected token is replaced', async () => {
  const cache = new TokenCache();
  let fetches = 0;
  const fetch = async () => ({ token: `t${++fetches}`, expiresInSeconds: 300 });
  const [a, b] = await Promise.all([cache.getOrFetch('k', fetch), cache.getOrFetch('k', fetch)]);
  assert.equal(a, 't1');
  assert.equal(b, 't1');
  assert.equal(await cache.getOrFetch('k', fetch), 't1');
  assert.equal(await cache.getOrFetch('k', fetch, 't1'), 't2');
  assert.equal(fetches, 2);
});

test('Retry-After: seconds, HTTP date, garbage', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test('referrers fallback tag', () => {
  const hex = 'a'.repeat(64);
  assert.equal(referrersFallbackTag(`sha256:${hex}`), `sha256-${hex}`);
  assert.equal(referrersFallbackTag(`sha512:${'b'.repeat(128)}`), `sha512-${'b'.repeat(64)}`);
});

test('limiter: at most N concurrent per key, others wait; an abort leaves the queue', async () => {
  const limiter = new KeyedLimiter(2);
  let running = 0;
  let peak = 0;
  const gates: Array<() => void> = [];
  const job = () =>
    limiter.run('r', new AbortController().signal, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
    });
  const jobs = [job(), job(), job(), job()];
  const aborted = new AbortController();
  const cancelled = limiter.run('r', aborted.signal, async () => assert.fail('must not run'));
  aborted.abort(new Error('gone'));
  await assert.rejects(cancelled, /gone/);
  let released = 0;
  while (released < 4) {
    await new Promise((resolve) => setImmediate(resolve));
    const gate = gates.shift();
    if (gate) {
      gate();
      released++;
    }
  }
  await Promise.all(jobs);
  assert.equal(peak, 2);
  // another key is independent
  await limiter.run('other', new AbortController().signal, async () => undefined);
});
