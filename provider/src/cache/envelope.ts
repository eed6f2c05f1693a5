/**
 * Authenticated L2 entries. Anyone who can write to the shared Redis must not be able to make a replica
 * believe "trusted" (DESIGN.md section 7), so every L2 value carries an HMAC-SHA256 over the namespace, the
 * key it is stored under, its times and its payload. The key is never read from the stored value: a valid
 * entry copied under another key, into another namespace, or with a longer expiry fails verification.
 *
 * Stored form (one string): `sp1.<storedAt>.<expiresAt>.<mac base64url>.<payload JSON>`.
 */
import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

const FORMAT = 'sp1';
/** base64url of a 32-byte HMAC-SHA256, unpadded. */
const TAG_CHARS = 43;
/** Below this an HMAC key is too easy to guess; 32 random bytes (or 32+ characters of hex/base64) is expected. */
export const MIN_HMAC_KEY_BYTES = 32;
const TIME = /^\d{1,16}$/;

export interface OpenedEntry {
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly payload: string;
}

/**
 * Checks the secret and imports it once: with OpenSSL 3, `createHmac` costs ~10 us per MAC with a KeyObject
 * and ~50 us with a raw Buffer (re-imported on every call).
 */
export function importHmacKey(key: Buffer): KeyObject {
  if (key.length < MIN_HMAC_KEY_BYTES) {
    throw new Error(
      `cache: the HMAC key has ${key.length} bytes, at least ${MIN_HMAC_KEY_BYTES} are required`
    );
  }
  return createSecretKey(key);
}

// Lengths prefix the variable-size fields so no two (namespace, key) pairs produce the same MAC input.
function mac(
  hmacKey: KeyObject,
  namespace: string,
  key: string,
  storedAt: number,
  expiresAt: number,
  payload: string
) {
  return createHmac('sha256', hmacKey)
    .update(`${FORMAT}\n${namespace.length}:${namespace}\n${key.length}:${key}\n${storedAt}\n${expiresAt}\n`)
    .update(payload)
    .digest();
}

export function sealEntry(
  hmacKey: KeyObject,
  namespace: string,
  key: string,
  storedAt: number,
  expiresAt: number,
  payload: string
): string {
  const tag = mac(hmacKey, namespace, key, storedAt, expiresAt, payload).toString('base64url');
  return `${FORMAT}.${storedAt}.${expiresAt}.${tag}.${payload}`;
}

/** The entry stored under `key`, or undefined when it is malformed or its MAC does not verify (forged). */
export function openEntry(
  hmacKey: KeyObject,
  namespace: string,
  key: string,
  raw: unknown
): OpenedEntry | undefined {
  if (typeof raw !== 'string') return undefined;
  const parts = splitN(raw, '.', 5);
  if (parts === undefined) return undefined;
  const [format, storedText, expiresText, tagText, payload] = parts;
  if (format !== FORMAT || !TIME.test(storedText) || !TIME.test(expiresText)) return undefined;
  if (tagText.length !== TAG_CHARS) return undefined;
  const storedAt = Number(storedText);
  const expiresAt = Number(expiresText);
  // Compare the canonical text form, so a re-encoded (non-canonical base64) tag is rejected too.
  const expected = Buffer.from(
    mac(hmacKey, namespace, key, storedAt, expiresAt, payload).toString('base64url')
  );
  const given = Buffer.from(tagText);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return { storedAt, expiresAt, payload };
}

/** Splits on the first n-1 separators; the last part keeps the rest (the payload may contain dots). */
function splitN(text: string, sep: string, n: 5): [string, string, string, string, string] | undefined {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < n - 1; i++) {
    const at = text.indexOf(sep, from);
    if (at < 0) return undefined;
    parts.push(text.slice(from, at));
    from = at + 1;
  }
  parts.push(text.slice(from));
  const [a, b, c, d, e] = parts;
  if (a === undefined || b === undefined || c === undefined || d === undefined || e === undefined)
    return undefined;
  return [a, b, c, d, e];
}
