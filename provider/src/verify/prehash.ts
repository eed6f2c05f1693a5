/**
 * Signature verification over a digest only (the sigstore-conformance "verify by digest" mode, where the artifact
 * bytes are not available). node:crypto cannot verify a pre-hashed ECDSA signature, so ECDSA P-256/P-384 is done
 * here with BigInt arithmetic (public data only: no secrets, so constant time does not matter). RSA PKCS#1 v1.5
 * goes through publicDecrypt. Ed25519 signs the message itself and cannot be checked from a digest.
 */
import { publicDecrypt, constants, type KeyObject } from 'node:crypto';

interface Curve {
  p: bigint;
  a: bigint;
  n: bigint;
  gx: bigint;
  gy: bigint;
}

const CURVES: Record<string, Curve> = {
  prime256v1: {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
  },
  secp384r1: {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
  },
};

type Point = { x: bigint; y: bigint } | null;

const mod = (v: bigint, m: bigint): bigint => ((v % m) + m) % m;

function inverse(v: bigint, m: bigint): bigint {
  // extended Euclid
  let [a, b, x0, x1] = [mod(v, m), m, 1n, 0n];
  while (b !== 0n) {
    const q = a / b;
    [a, b] = [b, a - q * b];
    [x0, x1] = [x1, x0 - q * x1];
  }
  if (a !== 1n) throw new Error('not invertible');
  return mod(x0, m);
}

function add(c: Curve, P: Point, Q: Point): Point {
  if (!P) return Q;
  if (!Q) return P;
  let l: bigint;
  if (P.x === Q.x) {
    if (mod(P.y + Q.y, c.p) === 0n) return null;
    l = mod((3n * P.x * P.x + c.a) * inverse(2n * P.y, c.p), c.p);
  } else {
    l = mod((Q.y - P.y) * inverse(Q.x - P.x, c.p), c.p);
  }
  const x = mod(l * l - P.x - Q.x, c.p);
  return { x, y: mod(l * (P.x - x) - P.y, c.p) };
}

function multiply(c: Curve, k: bigint, P: Point): Point {
  let result: Point = null;
  let addend = P;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) result = add(c, result, addend);
    addend = add(c, addend, addend);
  }
  return result;
}

/** Parses a DER ECDSA-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }). */
function parseDerSignature(sig: Buffer): { r: bigint; s: bigint } | undefined {
  let at = 0;
  const byte = (): number => {
    const b = sig[at++];
    if (b === undefined) throw new Error('truncated');
    return b;
  };
  const length = (): number => {
    const first = byte();
    if (first < 0x80) return first;
    let len = 0;
    for (let i = 0; i < (first & 0x7f); i++) len = len * 256 + byte();
    return len;
  };
  const integer = (): bigint => {
    if (byte() !== 0x02) throw new Error('not an INTEGER');
    const len = length();
    const bytes = sig.subarray(at, at + len);
    if (bytes.length !== len) throw new Error('truncated');
    at += len;
    return BigInt(`0x${bytes.toString('hex') || '0'}`);
  };
  try {
    if (byte() !== 0x30) return undefined;
    const total = length();
    if (at + total !== sig.length) return undefined;
    const r = integer();
    const s = integer();
    return at === sig.length ? { r, s } : undefined;
  } catch {
    return undefined;
  }
}

function verifyEcdsaPrehashed(key: KeyObject, digest: Buffer, signature: Buffer): boolean {
  const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
  const jwk = key.export({ format: 'jwk' });
  const parsed = parseDerSignature(signature);
  if (!curve || !parsed || !jwk.x || !jwk.y) return false;
  const { r, s } = parsed;
  if (r <= 0n || r >= curve.n || s <= 0n || s >= curve.n) return false;
  const Q = {
    x: BigInt(`0x${Buffer.from(jwk.x, 'base64url').toString('hex')}`),
    y: BigInt(`0x${Buffer.from(jwk.y, 'base64url').toString('hex')}`),
  };
  // e = leftmost bits of the digest, as many as the order has (FIPS 186-4 6.4)
  const nBits = curve.n.toString(2).length;
  let e = BigInt(`0x${digest.toString('hex') || '0'}`);
  if (digest.length * 8 > nBits) e >>= BigInt(digest.length * 8 - nBits);
  const w = inverse(s, curve.n);
  const R = add(
    curve,
    multiply(curve, mod(e * w, curve.n), { x: curve.gx, y: curve.gy }),
    multiply(curve, mod(r * w, curve.n), Q)
  );
  return R !== null && mod(R.x, curve.n) === r;
}

/** DER DigestInfo prefixes (RFC 8017 section 9.2 note 1). */
const DIGEST_INFO: Record<string, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

function verifyRsaPkcs1Prehashed(key: KeyObject, digest: Buffer, hash: string, signature: Buffer): boolean {
  const prefix = DIGEST_INFO[hash];
  if (!prefix) return false;
  try {
    const recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
    return recovered.equals(Buffer.concat([Buffer.from(prefix, 'hex'), digest]));
  } catch {
    return false;
  }
}

/** Verifies `signature` over a message known only by its `hash` digest. */
export function verifyPrehashed(key: KeyObject, digest: Buffer, hash: string, signature: Buffer): boolean {
  if (key.asymmetricKeyType === 'ec') return verifyEcdsaPrehashed(key, digest, signature);
  if (key.asymmetricKeyType === 'rsa') return verifyRsaPkcs1Prehashed(key, digest, hash, signature);
  return false;
}
