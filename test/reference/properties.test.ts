import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { SigpinError } from '../../provider/src/errors.ts';
import {
  MAX_REFERENCE_LENGTH,
  canonicalReference,
  formatLookupKey,
  parseLookupKey,
  parseReference,
  pinnedImage,
} from '../../provider/src/reference/index.ts';
import type { ImageReference } from '../../provider/src/reference/index.ts';

// protocols.md 3.1: the `<name>` the registry API accepts.
const API_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

/** Returns the value, or undefined when `fn` threw SigpinError('INVALID_REFERENCE'); anything else fails. */
function parsedOrRejected<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof SigpinError, `threw ${String(err)}`);
    assert.equal(err.code, 'INVALID_REFERENCE');
    return undefined;
  }
}

function fields(ref: ImageReference): unknown[] {
  return [ref.registry, ref.repository, ref.tag, ref.digest];
}

// Characters that reach every branch of the parser, so random strings are not all rejected at once.
const REFERENCE_CHARS = [...'abAB09-_.:/@[]%'];
const KEY_CHARS = [...REFERENCE_CHARS, ...'=,', '[ns=', '[old=', 'ns=', ',old=', 'sha256:', 'a'.repeat(64)];
const referenceLike = fc.string({ unit: fc.constantFrom(...REFERENCE_CHARS), maxLength: 80 });
const keyLike = fc.string({ unit: fc.constantFrom(...KEY_CHARS), maxLength: 40 });
const anyText = fc.string({ unit: 'binary', maxLength: 200 });

// Generators for the grammar's valid pieces.
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?$/);
const port = fc.integer({ min: 0, max: 99999 }).map((n) => `:${n}`);
const host = fc.oneof(
  fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.')),
  fc.constant('localhost'),
  fc.ipV4(),
  // An IPv6 host needs a ':' to count as a host at all (normalize.go).
  fc.stringMatching(/^\[[a-fA-F0-9]{0,4}:[a-fA-F0-9:]{0,16}\]$/)
);
const domain = fc.tuple(host, fc.option(port, { nil: '' })).map(([h, p]) => h + p);
const pathComponent = fc.stringMatching(/^[a-z0-9]{1,6}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,6}){0,2}$/);
const path = fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map((c) => c.join('/'));
const tag = fc.stringMatching(/^\w[\w.-]{0,20}$/);
const digest = fc.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`);
const validReference = fc
  .record({
    domain: fc.option(domain, { nil: undefined }),
    path,
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  // A first path component with a '.' is a host when more components follow: leave those to `domain`.
  .filter((p) => p.domain !== undefined || !/^[^/]*\.[^/]*\//.test(p.path))
  .map((p) => ({
    ...p,
    text: `${p.domain !== undefined ? `${p.domain}/` : ''}${p.path}${p.tag !== undefined ? `:${p.tag}` : ''}${
      p.digest !== undefined ? `@${p.digest}` : ''
    }`,
  }));
const namespace = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,10}[a-z0-9])?$/);

describe('properties', () => {
  it('parseReference returns a reference or throws INVALID_REFERENCE, for any string', () => {
    for (const text of [anyText, referenceLike]) {
      fc.assert(
        fc.property(text, (input) => {
          const ref = parsedOrRejected(() => parseReference(input));
          if (ref === undefined) return;
          assert.equal(ref.original, input);
          assert.match(ref.repository, API_NAME);
          if (ref.digest !== undefined) assert.match(ref.digest, SHA256);
          assert.ok(ref.tag !== undefined || ref.digest !== undefined);
        }),
        { numRuns: 2000 }
      );
    }
  });

  it('parseLookupKey returns a key or throws INVALID_REFERENCE, for any string', () => {
    for (const text of [anyText, keyLike, fc.tuple(keyLike, referenceLike).map(([a, b]) => a + b)]) {
      fc.assert(
        fc.property(text, (input) => {
          const key = parsedOrRejected(() => parseLookupKey(input));
          if (key !== undefined) assert.equal(key.key, input);
        }),
        { numRuns: 2000 }
      );
    }
  });

  it('every reference built from the grammar parses, keeping its tag and digest', () => {
    fc.assert(
      fc.property(validReference, (p) => {
        const ref = parseReference(p.text);
        assert.equal(ref.tag, p.tag ?? (p.digest === undefined ? 'latest' : undefined));
        assert.equal(ref.digest, p.digest);
        assert.match(ref.repository, API_NAME);
        assert.ok(ref.repository.endsWith(p.path), ref.repository);
      }),
      { numRuns: 2000 }
    );
  });

  it('the canonical form parses back to the same fields, and is a fixed point', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          validReference.map((p) => p.text),
          referenceLike
        ),
        (input) => {
          const ref = parsedOrRejected(() => parseReference(input));
          if (ref === undefined) return;
          const canonical = canonicalReference(ref);
          const again = parseReference(canonical);
          assert.deepEqual(fields(again), fields(ref));
          assert.equal(canonicalReference(again), canonical);
        }
      ),
      { numRuns: 2000 }
    );
  });

  it('a pinned image parses to the same repository with the digest', () => {
    fc.assert(
      fc.property(validReference, digest, (p, d) => {
        const ref = parseReference(p.text);
        const pinned = parseReference(pinnedImage(ref, d));
        assert.deepEqual([pinned.registry, pinned.repository], [ref.registry, ref.repository]);
        assert.equal(pinned.digest, ref.digest ?? d);
        assert.equal(pinned.tag, p.tag);
      }),
      { numRuns: 500 }
    );
  });

  it('formatLookupKey output parses back to its parts', () => {
    const oldImage = validReference.map((p) => p.text).filter((text) => !text.includes(']'));
    fc.assert(
      fc.property(
        fc.option(namespace, { nil: undefined }),
        fc.option(oldImage, { nil: undefined }),
        validReference,
        (ns, old, image) => {
          const key = formatLookupKey({ namespace: ns, old, image: image.text });
          const parsed = parseLookupKey(key);
          assert.equal(parsed.namespace, ns);
          assert.equal(parsed.old?.original, old);
          assert.equal(parsed.image.original, image.text);
        }
      ),
      { numRuns: 1000 }
    );
  });
});

// Inputs shaped to make a backtracking matcher explode: long runs that almost match and then fail at the end.
// The per-test timeout only turns a hang into a failure; speed itself is measured outside the test suite.
function adversarialInputs(): string[] {
  const n = MAX_REFERENCE_LENGTH - 10;
  return [
    `a${'-'.repeat(n)}!`,
    `${'a-'.repeat(n / 2)}-`,
    `${'a_'.repeat(n / 2)}_`,
    `${'a.'.repeat(n / 2)}.`,
    `${'a__'.repeat(n / 3)}_/`,
    `x.com/${'a'.repeat(200)}${'/a'.repeat(n / 2 - 120)}/`,
    `${'a'.repeat(n)}A`,
    `${'a.'.repeat(n / 2)}a-/x`,
    `${'A-'.repeat(n / 2)}/x`,
    `[${':'.repeat(n)}/x`,
    `[${'a:'.repeat(n / 2)}]x/y`,
    `x/y:${'a'.repeat(n)}`,
    `x/y@${'a'.repeat(n)}`,
    `x/y@a${'.a'.repeat(n / 2)}`,
    `x/y@a${'-a1'.repeat(n / 3 - 20)}:${'f'.repeat(31)}`,
    `x/y@sha256:${'f'.repeat(n - 10)}`,
    `${'a:'.repeat(n / 2)}`,
    `${'a/'.repeat(n / 2)}@`,
    '@'.repeat(n),
    '/'.repeat(n),
    ':'.repeat(n),
    `${'1.'.repeat(n / 2)}1:/x`,
  ];
}

describe('adversarial inputs', () => {
  it('parseReference rejects long near-misses without hanging', { timeout: 30_000 }, () => {
    for (const input of adversarialInputs()) {
      assert.ok(input.length <= MAX_REFERENCE_LENGTH, `${input.length}`);
      assert.equal(
        parsedOrRejected(() => parseReference(input)),
        undefined,
        input.slice(0, 40)
      );
    }
  });

  it('parseLookupKey rejects long near-misses without hanging', { timeout: 30_000 }, () => {
    for (const input of adversarialInputs()) {
      for (const key of [
        `[ns=default]${input}`,
        `[old=${input}]x`,
        `[ns=${input}]x`,
        `[old=x,ns=a]${input}`,
      ]) {
        assert.equal(
          parsedOrRejected(() => parseLookupKey(key)),
          undefined,
          key.slice(0, 40)
        );
      }
    }
  });

  it('rejects megabyte inputs by length before any matching', { timeout: 30_000 }, () => {
    const huge = 'a'.repeat(1 << 20);
    assert.equal(
      parsedOrRejected(() => parseReference(huge)),
      undefined
    );
    assert.equal(
      parsedOrRejected(() => parseLookupKey(huge)),
      undefined
    );
    assert.equal(
      parsedOrRejected(() => parseLookupKey(`[ns=a]${huge}`)),
      undefined
    );
  });
});
