/**
 * Mutation fuzzing of the lookup-key prefix parser (`[ns=<namespace>,old=<image>]<image>`). The prefix decides
 * which pull secrets are used and whether verification is skipped on UPDATE, so a mangled key must either parse
 * to exactly what its text says or be refused with INVALID_REFERENCE; nothing else may escape.
 * (test/reference/properties.test.ts covers random strings and round trips; this file starts from valid keys.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SigpinError } from '../../provider/src/errors.ts';
import { formatLookupKey, parseLookupKey, parseReference } from '../../provider/src/reference/index.ts';

const hex = fc.stringMatching(/^[a-f0-9]{64}$/);
const name = fc.stringMatching(/^[a-z0-9]{1,8}(\/[a-z0-9]{1,8}){0,2}$/);
const host = fc.constantFrom('', 'ghcr.io/', '127.0.0.1:5000/', '[::1]:5000/', 'localhost/');
const image = fc
  .tuple(
    host,
    name,
    fc.option(fc.stringMatching(/^\w[\w.-]{0,10}$/), { nil: undefined }),
    fc.option(hex, { nil: undefined })
  )
  .map(([h, n, tag, digest]) => `${h}${n}${tag ? `:${tag}` : ''}${digest ? `@sha256:${digest}` : ''}`);
const namespace = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const validKey = fc
  .record({
    namespace: fc.option(namespace, { nil: undefined }),
    old: fc.option(image, { nil: undefined }),
    image,
  })
  .filter((p) => !(p.old ?? '').includes(']'))
  .map((p) => formatLookupKey(p));

/** Text pieces that hit the prefix grammar's edges. */
const piece = fc.constantFrom(
  '[',
  ']',
  ',',
  '=',
  'ns=',
  'old=',
  '[ns=',
  '[old=',
  ',old=',
  ',ns=',
  '@',
  ':',
  '/',
  ' ',
  '\u0000',
  '%5D',
  'sha256:',
  'A'
);
type Mutation = { at: number; kind: 'insert' | 'delete' | 'replace'; text: string; length: number };
const mutation = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('insert' as const, 'delete' as const, 'replace' as const),
  text: piece,
  length: fc.integer({ min: 1, max: 4 }),
});

function mutate(key: string, ms: Mutation[]): string {
  let out = key;
  for (const m of ms) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    if (m.kind === 'insert') out = out.slice(0, at) + m.text + out.slice(at);
    else if (m.kind === 'delete') out = out.slice(0, at) + out.slice(at + m.length);
    else out = out.slice(0, at) + m.text + out.slice(at + m.length);
  }
  return out;
}

/** Parses, or returns undefined for INVALID_REFERENCE; any other outcome fails the property. */
function parseOrRefuse(key: string): ReturnType<typeof parseLookupKey> | undefined {
  try {
    return parseLookupKey(key);
  } catch (err) {
    assert.ok(
      err instanceof SigpinError,
      `non-SigpinError escaped for ${JSON.stringify(key)}: ${String(err)}`
    );
    assert.equal(err.code, 'INVALID_REFERENCE');
    assert.match(err.toWire(), /^INVALID_REFERENCE: lookup key|^INVALID_REFERENCE: /);
    return undefined;
  }
}

describe('fuzz: lookup key prefix', () => {
  it('a mutated key parses to exactly what its text says, or is refused with INVALID_REFERENCE', () => {
    fc.assert(
      fc.property(validKey, fc.array(mutation, { minLength: 1, maxLength: 4 }), (key, ms) => {
        const mutated = mutate(key, ms);
        const parsed = parseOrRefuse(mutated);
        if (parsed === undefined) return;
        assert.equal(parsed.key, mutated);
        const hasPrefix = mutated.startsWith('[ns=') || mutated.startsWith('[old=');
        if (!hasPrefix) {
          // No prefix: the whole key is the image, and neither context field can appear.
          assert.equal(parsed.namespace, undefined);
          assert.equal(parsed.old, undefined);
          assert.equal(parsed.image.original, mutated);
          return;
        }
        // With a prefix: the image is the text after the first ']', and the fields re-format to the same key.
        const end = mutated.indexOf(']');
        assert.equal(parsed.image.original, mutated.slice(end + 1));
        const again = formatLookupKey({
          ...(parsed.namespace !== undefined ? { namespace: parsed.namespace } : {}),
          ...(parsed.old !== undefined ? { old: parsed.old.original } : {}),
          image: parsed.image.original,
        });
        assert.deepEqual(parseLookupKey(again).image, parsed.image);
        assert.deepEqual(parseLookupKey(again).old, parsed.old);
        assert.equal(parseLookupKey(again).namespace, parsed.namespace);
      }),
      { numRuns: 3000 }
    );
  });

  it('the old image never leaks into the image, and an unparsable old image refuses the whole key', () => {
    fc.assert(
      fc.property(image, fc.string({ maxLength: 30 }), (img, junk) => {
        const key = `[old=${junk}]${img}`;
        const parsed = parseOrRefuse(key);
        let oldValid = false;
        try {
          parseReference(junk);
          oldValid = !junk.includes(']') && !junk.includes(',');
        } catch {
          oldValid = false;
        }
        if (!oldValid) {
          // An old image that is not a reference must never be dropped silently (it would lose the context).
          if (parsed !== undefined) assert.ok(parsed.old !== undefined && parsed.old.original !== junk);
          return;
        }
        assert.ok(parsed, `valid key refused: ${key}`);
        assert.equal(parsed.old?.original, junk);
        assert.equal(parsed.image.original, img);
      }),
      { numRuns: 2000 }
    );
  });

  it('non-string keys are refused with INVALID_REFERENCE', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        fc.pre(typeof value !== 'string');
        assert.equal(parseOrRefuse(value as string), undefined);
      }),
      { numRuns: 300 }
    );
  });
});
