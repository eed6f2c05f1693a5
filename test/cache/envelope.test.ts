import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { importHmacKey, openEntry, sealEntry } from '../../provider/src/cache/envelope.ts';

const key = importHmacKey(randomBytes(32));
const payload = JSON.stringify({ value: { verified: true, digest: 'sha256:ab' }, freshUntil: 2_000 });

test('a sealed entry opens under the same key, namespace and secret', () => {
  const sealed = sealEntry(key, 'ns', 'verdict:sha256:ab:fp', 1_000, 3_000, payload);
  assert.deepEqual(openEntry(key, 'ns', 'verdict:sha256:ab:fp', sealed), {
    storedAt: 1_000,
    expiresAt: 3_000,
    payload,
  });
});

test('any change to the key, namespace, times, payload or MAC fails verification', () => {
  const sealed = sealEntry(key, 'ns', 'k1', 1_000, 3_000, payload);
  const [format, stored, expires, tag] = sealed.split('.', 4);
  const rest = sealed.slice(`${format}.${stored}.${expires}.${tag}.`.length);
  const variants: Record<string, [string, string, string]> = {
    'other key (copied entry)': ['ns', 'k2', sealed],
    'other namespace': ['ns2', 'k1', sealed],
    'longer expiry': ['ns', 'k1', `${format}.${stored}.9999999.${tag}.${rest}`],
    'other storedAt': ['ns', 'k1', `${format}.999.${expires}.${tag}.${rest}`],
    'tampered payload': ['ns', 'k1', `${format}.${stored}.${expires}.${tag}.${rest.replace('true', 'fals')}`],
    'missing MAC': ['ns', 'k1', `${format}.${stored}.${expires}..${rest}`],
    'no envelope at all': ['ns', 'k1', payload],
    'other format': ['ns', 'k1', `sp2${sealed.slice(3)}`],
  };
  for (const [name, [namespace, k, raw]] of Object.entries(variants)) {
    assert.equal(openEntry(key, namespace, k, raw), undefined, name);
  }
  assert.equal(openEntry(importHmacKey(randomBytes(32)), 'ns', 'k1', sealed), undefined, 'other secret');
  assert.equal(openEntry(key, 'ns', 'k1', 42), undefined, 'not a string');
});

test('namespace/key boundaries are unambiguous in the MAC input', () => {
  const sealed = sealEntry(key, 'a', 'b:c', 1, 2, '1');
  assert.equal(openEntry(key, 'a:b', 'c', sealed), undefined);
});

test('HMAC keys shorter than 32 bytes are refused', () => {
  assert.throws(() => importHmacKey(Buffer.alloc(31)), /at least 32/);
  assert.doesNotThrow(() => importHmacKey(Buffer.alloc(32)));
});
