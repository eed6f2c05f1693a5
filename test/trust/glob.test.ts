import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileImageGlob, compileTrustPolicy } from '../../provider/src/trust/index.ts';
import { parseConfig } from '../../provider/src/config/index.ts';

const cases: Array<[glob: string, name: string, matches: boolean]> = [
  ['ghcr.io/acme/*', 'ghcr.io/acme/app', true],
  ['ghcr.io/acme/*', 'ghcr.io/acme/team/app', false],
  ['ghcr.io/acme/**', 'ghcr.io/acme/team/app', true],
  ['ghcr.io/acme/**', 'ghcr.io/acme', true],
  ['ghcr.io/acme/**', 'ghcr.io/acmeco/app', false],
  ['**', 'docker.io/library/nginx', true],
  ['docker.io/library/ngin?', 'docker.io/library/nginx', true],
  ['docker.io/library/ngin?', 'docker.io/library/ngin/x', false],
  ['127.0.0.1:5000/**', '127.0.0.1:5000/app', true],
  ['127.0.0.1:5000/**', '127.0.0.1:50001/app', false],
  ['*.example.com/app', 'registry.example.com/app', true],
  ['*.example.com/app', 'a.b.example.com/app', true],
  ['a.b/c', 'aXb/c', false],
  ['[::1]:5000/**', '[::1]:5000/app', true],
];

for (const [glob, name, matches] of cases) {
  test(`glob ${glob} ${matches ? 'matches' : 'does not match'} ${name}`, () => {
    assert.equal(compileImageGlob(glob)(name), matches);
  });
}

const config = parseConfig({
  authorities: [{ name: 'release', key: { pem: 'PEM' } }],
  policies: [
    { name: 'acme', images: ['ghcr.io/acme/**'], authorities: ['release'] },
    { name: 'pinned-only', images: ['docker.io/**'], verify: false, mode: 'validate-only' },
  ],
});

test('trust policy: first matching policy wins, no match is undefined', () => {
  const trust = compileTrustPolicy(config);
  assert.equal(trust.match('ghcr.io/acme/app')?.name, 'acme');
  assert.equal(trust.match('docker.io/library/nginx')?.mode, 'validate-only');
  assert.equal(trust.match('quay.io/x/y'), undefined);
});

test('trust policy fingerprint changes with the trust material and the policy, not with the image globs', () => {
  const a = compileTrustPolicy({ ...config, trustMaterialFingerprint: () => 'k1' }).policies[0]?.fingerprint;
  const b = compileTrustPolicy({ ...config, trustMaterialFingerprint: () => 'k2' }).policies[0]?.fingerprint;
  const moreImages = {
    ...config,
    policies: config.policies.map((p) => ({ ...p, images: [...p.images, 'x/**'] })),
    trustMaterialFingerprint: () => 'k1',
  };
  const c = compileTrustPolicy(moreImages).policies[0]?.fingerprint;
  const threshold = { ...config, policies: config.policies.map((p) => ({ ...p, threshold: 2 })) };
  const d = compileTrustPolicy({ ...threshold, trustMaterialFingerprint: () => 'k1' }).policies[0]
    ?.fingerprint;
  assert.notEqual(a, b);
  assert.equal(a, c);
  assert.notEqual(a, d);
});
