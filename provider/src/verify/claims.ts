/**
 * What a signed payload claims, checked before any cryptography: a simple-signing payload (legacy cosign and
 * skopeo `.sig` layers) or an in-toto statement in a DSSE envelope (cosign v3 bundles, attestations). A payload
 * that does not name the image digest is rejected here, so a valid signature over another image never counts.
 */

export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const IN_TOTO_STATEMENT_TYPES = new Set([
  'https://in-toto.io/Statement/v1',
  'https://in-toto.io/Statement/v0.1',
  'https://in-toto.io/Statement/v0.2',
]);

/** A signature claims the image; an attestation claims a predicate about it. */
export type Claim = { kind: 'signature' } | { kind: 'attestation'; predicateType: string };

export class ClaimError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClaimError';
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw new ClaimError(`${what} is not JSON`);
  }
}

/**
 * containers/image and cosign simple-signing payload (protocols.md 4.2). Strict like containers/image: `critical`
 * must hold exactly `identity`, `image`, `type`; `optional` may be null or an object (skopeo puts `creator` there).
 * The identity is not compared (cosign ignores it; skopeo writes the tag into it): the digest is what binds.
 */
export function checkSimpleSigningPayload(payload: Buffer, digest: string): Claim {
  const doc = parseJson(payload, 'simple-signing payload');
  if (!isRecord(doc)) throw new ClaimError('simple-signing payload is not an object');
  for (const key of Object.keys(doc)) {
    if (key !== 'critical' && key !== 'optional')
      throw new ClaimError(`simple-signing payload has unknown member "${key}"`);
  }
  const critical = doc.critical;
  if (!isRecord(critical)) throw new ClaimError('simple-signing payload has no critical object');
  for (const key of Object.keys(critical)) {
    if (key !== 'identity' && key !== 'image' && key !== 'type') {
      throw new ClaimError(`simple-signing payload has unknown critical member "${key}"`);
    }
  }
  if (critical.type !== SIMPLE_SIGNING_TYPE) {
    throw new ClaimError(
      `simple-signing type is ${JSON.stringify(critical.type)}, not "${SIMPLE_SIGNING_TYPE}"`
    );
  }
  const identity = critical.identity;
  if (!isRecord(identity) || typeof identity['docker-reference'] !== 'string') {
    throw new ClaimError('simple-signing payload has no critical.identity.docker-reference');
  }
  const image = critical.image;
  if (!isRecord(image) || typeof image['docker-manifest-digest'] !== 'string') {
    throw new ClaimError('simple-signing payload has no critical.image.docker-manifest-digest');
  }
  if (image['docker-manifest-digest'] !== digest) {
    throw new ClaimError(`payload signs ${image['docker-manifest-digest']}, not ${digest}`);
  }
  if (doc.optional !== undefined && doc.optional !== null && !isRecord(doc.optional)) {
    throw new ClaimError('simple-signing optional is neither null nor an object');
  }
  return { kind: 'signature' };
}

/**
 * An in-toto statement in a DSSE envelope: some subject's sha256 must equal the image digest. The cosign v3
 * signature predicate counts as a signature; every other predicate is an attestation of that type.
 */
export function checkInTotoStatement(payloadType: string, payload: Buffer, digest: string): Claim {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw new ClaimError(`DSSE payload type ${payloadType} is not in-toto`);
  const doc = parseJson(payload, 'in-toto statement');
  if (!isRecord(doc)) throw new ClaimError('in-toto statement is not an object');
  if (typeof doc._type !== 'string' || !IN_TOTO_STATEMENT_TYPES.has(doc._type)) {
    throw new ClaimError(`unknown in-toto statement type ${JSON.stringify(doc._type)}`);
  }
  if (typeof doc.predicateType !== 'string' || doc.predicateType === '') {
    throw new ClaimError('in-toto statement has no predicateType');
  }
  const [algorithm, hex] = digest.split(':');
  if (!Array.isArray(doc.subject)) throw new ClaimError('in-toto statement has no subject list');
  const names = doc.subject.some(
    (s) => isRecord(s) && isRecord(s.digest) && algorithm !== undefined && s.digest[algorithm] === hex
  );
  if (!names) throw new ClaimError(`in-toto statement has no subject with digest ${digest}`);
  return doc.predicateType === COSIGN_SIGN_PREDICATE
    ? { kind: 'signature' }
    : { kind: 'attestation', predicateType: doc.predicateType };
}
