import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  MAX_LOOKUP_KEY_LENGTH,
  MAX_REFERENCE_LENGTH,
  canonicalReference,
  formatLookupKey,
  parseLookupKey,
} from '../../provider/src/reference/index.ts';
import { assertInvalidReference } from './support.ts';

const D = `sha256:${'a'.repeat(64)}`;

interface Expected {
  image: string;
  namespace?: string;
  old?: string;
}

// Expected image and old are canonical references, so normalization is checked too.
const VALID: ReadonlyArray<[string, Expected]> = [
  ['nginx', { image: 'docker.io/library/nginx:latest' }],
  ['ghcr.io/acme/app:1.2', { image: 'ghcr.io/acme/app:1.2' }],
  // IPv6 hosts open with '[' too, but not with '[ns=' or '[old='.
  ['[::1]:5000/app', { image: '[::1]:5000/app:latest' }],
  ['[2001:db8::1]/app:v1', { image: '[2001:db8::1]/app:v1' }],
  ['[ns=default]nginx', { image: 'docker.io/library/nginx:latest', namespace: 'default' }],
  ['[ns=default][::1]:5000/app', { image: '[::1]:5000/app:latest', namespace: 'default' }],
  [`[old=app:1@${D}]app:1`, { image: 'docker.io/library/app:1', old: `docker.io/library/app:1@${D}` }],
  [
    `[ns=team-a,old=ghcr.io/acme/app:1.2@${D}]ghcr.io/acme/app:1.2`,
    { image: 'ghcr.io/acme/app:1.2', namespace: 'team-a', old: `ghcr.io/acme/app:1.2@${D}` },
  ],
  [
    `[old=127.0.0.1:5000/app:1@${D},ns=kube-system]127.0.0.1:5000/app:1`,
    { image: '127.0.0.1:5000/app:1', namespace: 'kube-system', old: `127.0.0.1:5000/app:1@${D}` },
  ],
  [
    `[ns=default,old=app:1]app:1@${D}`,
    { image: `docker.io/library/app:1@${D}`, namespace: 'default', old: 'docker.io/library/app:1' },
  ],
  ['[ns=0]nginx', { image: 'docker.io/library/nginx:latest', namespace: '0' }],
  [`[ns=${'n'.repeat(63)}]nginx`, { image: 'docker.io/library/nginx:latest', namespace: 'n'.repeat(63) }],
];

const INVALID: ReadonlyArray<[string, RegExp]> = [
  ['', /is empty/],
  ['[ns=default', /no closing '\]'/],
  ['[old=nginx', /no closing '\]'/],
  ['[ns=default]', /invalid image: image reference "" is empty/],
  ['[ns=]nginx', /invalid namespace ""/],
  ['[ns=Default]nginx', /invalid namespace "Default"/],
  ['[ns=-default]nginx', /invalid namespace/],
  ['[ns=default-]nginx', /invalid namespace/],
  ['[ns=a.b]nginx', /invalid namespace "a.b"/],
  ['[ns=a_b]nginx', /invalid namespace/],
  [`[ns=${'n'.repeat(64)}]nginx`, /invalid namespace/],
  ['[ns=a,ns=b]nginx', /repeats ns=/],
  ['[old=a,old=b]nginx', /repeats old=/],
  ['[ns=a,]nginx', /unknown prefix field ""/],
  ['[ns=a,,old=b]nginx', /unknown prefix field ""/],
  ['[ns=a,foo=b]nginx', /unknown prefix field "foo=b"/],
  ['[ns=a,old]nginx', /unknown prefix field "old"/],
  ['[ns=a,=b]nginx', /unknown prefix field "=b"/],
  ['[ns=a,NS=b]nginx', /unknown prefix field "NS=b"/],
  ['[ns=a, old=b]nginx', /unknown prefix field " old=b"/],
  ['[old=]nginx', /invalid old image: image reference "" is empty/],
  ['[old=Nginx]nginx', /invalid old image: .*not lowercase/],
  [`[old=app@sha512:${'f'.repeat(128)}]app`, /invalid old image: .*only sha256/],
  // An IPv6 old image cannot be carried: its ']' closes the prefix.
  ['[old=[::1]:5000/app:1]app:1', /invalid old image/],
  ['[ns=default]Nginx', /invalid image: .*not lowercase/],
  ['[ns=default][ns=default]nginx', /invalid image/],
  ['[ns=default] nginx', /invalid image/],
  [' [ns=default]nginx', /invalid repository path/],
  [`[ns=default]${'x'.repeat(MAX_REFERENCE_LENGTH + 1)}`, /invalid image: .*longer than 4096/],
  [`[ns=a,old=${'x'.repeat(2 * MAX_REFERENCE_LENGTH)}]x`, /longer than/],
  [`[ns=a]${'x'.repeat(MAX_LOOKUP_KEY_LENGTH)}`, /lookup key .* is longer than/],
];

describe('parseLookupKey', () => {
  for (const [key, expected] of VALID) {
    it(`parses ${key}`, () => {
      const parsed = parseLookupKey(key);
      assert.equal(parsed.key, key);
      assert.deepEqual(
        {
          image: canonicalReference(parsed.image),
          ...(parsed.namespace !== undefined ? { namespace: parsed.namespace } : {}),
          ...(parsed.old !== undefined ? { old: canonicalReference(parsed.old) } : {}),
        },
        expected
      );
      assert.ok(Object.isFrozen(parsed));
    });
  }

  for (const [key, message] of INVALID) {
    it(`rejects ${JSON.stringify(key.length > 80 ? key.slice(0, 80) + '...' : key)}`, () => {
      assertInvalidReference(() => parseLookupKey(key), message);
    });
  }

  it('keeps the original text of both images, for pinning and for the old-digest comparison', () => {
    const parsed = parseLookupKey(`[old=GHCR.IO/acme/app:1@${D}]GHCR.IO/acme/app:1`);
    assert.equal(parsed.image.original, 'GHCR.IO/acme/app:1');
    assert.equal(parsed.old?.original, `GHCR.IO/acme/app:1@${D}`);
    assert.equal(parsed.old?.digest, D);
    assert.equal(parsed.old?.tag, '1');
  });

  it('omits absent fields', () => {
    const parsed = parseLookupKey('[ns=default]nginx');
    assert.equal('old' in parsed, false);
    assert.equal('namespace' in parseLookupKey('nginx'), false);
  });

  it('chains the image error as the cause', () => {
    const err = assertInvalidReference(() => parseLookupKey('[ns=a]Nginx'), /invalid image/);
    assert.equal((err.cause as Error | undefined)?.name, 'SigpinError');
  });

  it('rejects values that are not strings', () => {
    assertInvalidReference(() => parseLookupKey(7 as unknown as string), /is not a string/);
  });
});

describe('formatLookupKey', () => {
  const cases: ReadonlyArray<[Parameters<typeof formatLookupKey>[0], string]> = [
    [{ image: 'nginx' }, 'nginx'],
    [{ image: '[::1]:5000/app' }, '[::1]:5000/app'],
    [{ namespace: 'default', image: 'nginx' }, '[ns=default]nginx'],
    [{ old: `app:1@${D}`, image: 'app:1' }, `[old=app:1@${D}]app:1`],
    [
      { namespace: 'team-a', old: `app:1@${D}`, image: '[::1]:5000/app' },
      `[ns=team-a,old=app:1@${D}][::1]:5000/app`,
    ],
  ];
  for (const [parts, key] of cases) {
    it(`${JSON.stringify(parts)} -> ${key}`, () => {
      assert.equal(formatLookupKey(parts), key);
      const parsed = parseLookupKey(key);
      assert.equal(parsed.namespace, parts.namespace);
      assert.equal(parsed.old?.original, parts.old);
      assert.equal(parsed.image.original, parts.image);
    });
  }

  const invalid: ReadonlyArray<[Parameters<typeof formatLookupKey>[0], RegExp]> = [
    [{ image: 'Nginx' }, /not lowercase/],
    [{ image: '[ns=default]nginx' }, /invalid repository path/],
    [{ namespace: '', image: 'nginx' }, /namespace "" is not a valid/],
    [{ namespace: 'a,old=x', image: 'nginx' }, /namespace "a,old=x" is not a valid/],
    [{ namespace: 'Default', image: 'nginx' }, /namespace "Default" is not a valid/],
    [{ old: 'app:1,ns=x', image: 'nginx' }, /invalid tag/],
    [{ old: '[::1]:5000/app', image: 'nginx' }, /cannot go in a key prefix/],
    [{ old: '', image: 'nginx' }, /is empty/],
  ];
  for (const [parts, message] of invalid) {
    it(`rejects ${JSON.stringify(parts)}`, () => {
      assertInvalidReference(() => formatLookupKey(parts), message);
    });
  }
});
