/**
 * Verifying one signature candidate (a sigstore bundle, native or converted from a legacy `.sig`/`.att` layer)
 * against authorities. Pure and synchronous: input is data plus compiled trust material, output is a verdict,
 * so the same code runs on the event loop or in a worker thread.
 */
import {
  createHash,
  verify as cryptoVerify,
  timingSafeEqual,
  X509Certificate as NodeX509Certificate,
  type KeyObject,
} from 'node:crypto';
import {
  BUNDLE_V01_MEDIA_TYPE,
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_LEGACY_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
  bundleFromJSON,
  type Bundle,
} from '@sigstore/bundle';
import { X509Certificate as CoreX509Certificate } from '@sigstore/core';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import { toSignedEntity, Verifier, type SignedEntity } from '@sigstore/verify';
import type { TrustedAuthority } from './authorities.ts';
import { verifyPrehashed } from './prehash.ts';
import { checkInTotoStatement, checkSimpleSigningPayload, ClaimError, type Claim } from './claims.ts';
import type { SignatureVerdict } from './types.ts';

/** A signature found for an image, in bundle form. Plain data so it can cross to a worker thread. */
export interface Candidate {
  /** Where it was found, for messages: `referrer sha256:…`, `.sig layer 2`, … */
  origin: string;
  /** Serialized sigstore bundle (protobuf-specs JSON). Absent when discovery already rejected the candidate. */
  bundle?: unknown;
  /** The signed artifact of a message-signature bundle (the simple-signing payload bytes). */
  payload?: Uint8Array;
  /**
   * Converted from a legacy cosign layer: ECDSA P-384/P-521 signatures may use SHA-256 (cosign's and
   * containers/image's fixed hash) or the curve's own hash.
   */
  legacy?: boolean;
  /** Why discovery rejected it (blob digest mismatch, oversize, malformed layer). Counts as "found, not valid". */
  rejected?: string;
}

/** The outcome for one candidate: what it claims, and which authorities it verified for. */
export interface CandidateOutcome {
  origin: string;
  claim?: Claim;
  verified: SignatureVerdict[];
  /** One reason per failure (claim or authority). */
  errors: string[];
}

const KNOWN_BUNDLE_MEDIA_TYPES = new Set([
  BUNDLE_V01_MEDIA_TYPE,
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_LEGACY_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
]);
const EKU_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
/** The first Fulcio extension whose value is a DER UTF8String (.1.8 onwards); .1.1-.1.6 hold raw strings. */
const FULCIO_DER_ENCODED_FROM = 8;
const FULCIO_OID_PREFIX = '1.3.6.1.4.1.57264.1.';

const HASH_NAMES: Record<number, string> = {
  [HashAlgorithm.HASH_ALGORITHM_UNSPECIFIED]: 'sha256',
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_384]: 'sha384',
  [HashAlgorithm.SHA2_512]: 'sha512',
};

export class CandidateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CandidateError';
  }
}

/** Parses and validates a serialized bundle; only the bundle media types sigstore defines are accepted. */
export function parseBundle(json: unknown): Bundle {
  if (typeof json !== 'object' || json === null) throw new CandidateError('bundle is not a JSON object');
  const mediaType = (json as { mediaType?: unknown }).mediaType;
  if (typeof mediaType !== 'string' || !KNOWN_BUNDLE_MEDIA_TYPES.has(mediaType)) {
    throw new CandidateError(`unknown bundle media type ${JSON.stringify(mediaType)}`);
  }
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    throw new CandidateError(`invalid bundle: ${(err as Error).message}`);
  }
  for (const entry of bundle.verificationMaterial.tlogEntries) {
    if (!/^\d{1,19}$/.test(entry.logIndex))
      throw new CandidateError(`invalid tlog log index ${entry.logIndex}`);
  }
  return bundle;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The hashes a message signature may have been made with, for this key. */
function candidateHashes(key: KeyObject, declared: string, legacy: boolean): Array<string | null> {
  if (key.asymmetricKeyType === 'ed25519') return [null];
  if (!legacy) return [declared];
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const natural = curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
  return natural === 'sha256' ? ['sha256'] : ['sha256', natural];
}

/**
 * Signature over the exact payload bytes. Replaces sigstore-js' message content so Ed25519 (no pre-hash) and the
 * hashes legacy signers actually use are verified; digest comparisons (tlog bodies) are unchanged.
 */
function payloadSignatureContent(
  signature: Buffer,
  payload: Buffer,
  messageDigest: Buffer,
  hash: string,
  legacy: boolean
): SignedEntity['signature'] {
  return {
    signature,
    compareSignature: (other) => sameBytes(other, signature),
    compareDigest: (d) => sameBytes(d, messageDigest),
    compareSignedDigest: (d) => sameBytes(d, messageDigest),
    verifySignature: (key) =>
      candidateHashes(key, hash, legacy).some((alg) => {
        try {
          return cryptoVerify(alg, payload, key, signature);
        } catch {
          return false;
        }
      }),
  };
}

/** The public key (SPKI DER) a tlog entry of kind hashedrekord 0.0.1 names, to bind the entry to the signer. */
function hashedRekordKey(body: Buffer): Buffer | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const content = (doc as { spec?: { signature?: { publicKey?: { content?: unknown } } } }).spec?.signature
    ?.publicKey?.content;
  if (typeof content !== 'string') return undefined;
  const pem = Buffer.from(content, 'base64').toString('utf8');
  try {
    if (pem.includes('CERTIFICATE')) {
      return new NodeX509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
    }
    return Buffer.from(
      (pem.match(/-----BEGIN [A-Z ]+-----([\s\S]+?)-----END/)?.[1] ?? '').replace(/\s+/g, ''),
      'base64'
    );
  } catch {
    return undefined;
  }
}

/** Every hashedrekord v0.0.1 entry must name the key that signed (cosign's bundle check); other kinds carry their own binding. */
function checkTlogKeyBinding(entity: SignedEntity, signerSpki: Buffer): void {
  for (const entry of entity.tlogEntries) {
    if (entry.kindVersion.kind !== 'hashedrekord' || entry.kindVersion.version !== '0.0.1') continue;
    const logged = hashedRekordKey(entry.canonicalizedBody);
    if (!logged || !sameBytes(logged, signerSpki)) {
      throw new CandidateError('transparency log entry names another public key');
    }
  }
}

function leafCertificate(bundle: Bundle): Buffer | undefined {
  const vm = bundle.verificationMaterial.content;
  if (vm.$case === 'certificate') return vm.certificate.rawBytes;
  if (vm.$case === 'x509CertificateChain') return vm.x509CertificateChain.certificates[0]?.rawBytes;
  return undefined;
}

/** A Fulcio claim by OID: raw string for .1.1-.1.6, DER UTF8String from .1.8 on (fulcio docs/oid-info.md). */
function fulcioClaim(der: Buffer, oid: string): string | undefined {
  const ext = CoreX509Certificate.parse(Buffer.from(der)).extension(oid);
  if (!ext) return undefined;
  const arc = oid.startsWith(FULCIO_OID_PREFIX)
    ? Number(oid.slice(FULCIO_OID_PREFIX.length))
    : FULCIO_DER_ENCODED_FROM;
  if (arc >= FULCIO_DER_ENCODED_FROM) return ext.valueObj.subs[0]?.value.toString('utf8');
  return ext.value.toString('utf8');
}

function tlogVerdict(entity: SignedEntity): SignatureVerdict['tlog'] {
  const entry = entity.tlogEntries[0];
  if (!entry) return undefined;
  const seconds = Number(entry.integratedTime);
  return {
    logIndex: entry.logIndex,
    integratedTime: seconds > 0 ? new Date(seconds * 1000).toISOString() : '',
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}${cause}`;
  }
  return String(err);
}

/** An artifact known only by its SHA-256 digest (conformance "verify by digest"). */
export interface PrehashedArtifact {
  sha256: Buffer;
}

/** The signed artifact of a message signature: its bytes, or only its digest. */
export type Artifact = Buffer | PrehashedArtifact;

function prehashedSignatureContent(signature: Buffer, digest: Buffer): SignedEntity['signature'] {
  return {
    signature,
    compareSignature: (other) => sameBytes(other, signature),
    compareDigest: (d) => sameBytes(d, digest),
    compareSignedDigest: (d) => sameBytes(d, digest),
    verifySignature: (key) => verifyPrehashed(key, digest, 'sha256', signature),
  };
}

/** Builds the entity sigstore-js verifies, with our payload signature check for message signatures. */
function toEntity(bundle: Bundle, artifact: Artifact | undefined, legacy: boolean): SignedEntity {
  const payload = Buffer.isBuffer(artifact) ? artifact : undefined;
  const entity = toSignedEntity(bundle, payload);
  if (bundle.content.$case === 'messageSignature') {
    if (!artifact) throw new CandidateError('message signature without the signed payload');
    const { messageDigest, signature } = bundle.content.messageSignature;
    const hash = HASH_NAMES[messageDigest.algorithm];
    if (!hash) throw new CandidateError(`unsupported message digest algorithm ${messageDigest.algorithm}`);
    if (!payload) {
      const prehashed = artifact as PrehashedArtifact;
      if (hash !== 'sha256' || !sameBytes(prehashed.sha256, messageDigest.digest)) {
        throw new CandidateError('message digest does not match the artifact digest');
      }
      return { ...entity, signature: prehashedSignatureContent(signature, messageDigest.digest) };
    }
    if (!sameBytes(createHash(hash).update(payload).digest(), messageDigest.digest)) {
      throw new CandidateError('message digest does not match the payload');
    }
    return {
      ...entity,
      signature: payloadSignatureContent(signature, payload, messageDigest.digest, hash, legacy),
    };
  }
  return entity;
}

/** Verifies a bundle against one key authority. */
export function verifyWithKey(
  bundle: Bundle,
  payload: Artifact | undefined,
  authority: TrustedAuthority,
  legacy: boolean
): SignatureVerdict {
  const key = authority.publicKey;
  if (!key) throw new CandidateError('authority has no key');
  const spki = key.export({ type: 'spki', format: 'der' });
  const leaf = leafCertificate(bundle);
  // cosign: a certificate next to a key-verified signature must carry that very key
  if (leaf) {
    const certKey = new NodeX509Certificate(leaf).publicKey.export({ type: 'spki', format: 'der' });
    if (!sameBytes(certKey, spki)) throw new CandidateError('signed with another key');
  }
  let entity: SignedEntity = { ...toEntity(bundle, payload, legacy), key: { $case: 'public-key', hint: '' } };
  if (!authority.hasTlogs) {
    // no trusted log configured (tlog: optional): entries cannot be checked, so they count for nothing
    entity = {
      ...entity,
      tlogEntries: [],
      timestamps: entity.timestamps.filter((t) => t.$case !== 'transparency-log'),
    };
  }
  if (authority.trust.timestampAuthorities.length === 0) {
    // likewise RFC 3161 timestamps without a trusted TSA: a key authority needs no signing time
    entity = { ...entity, timestamps: entity.timestamps.filter((t) => t.$case !== 'timestamp-authority') };
  }
  const verifier = new Verifier(authority.trust, {
    tlogThreshold: authority.tlog === 'required' ? 1 : 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(entity);
  checkTlogKeyBinding(entity, spki);
  const tlog = authority.hasTlogs ? tlogVerdict(entity) : undefined;
  return { authority: authority.name, kind: 'key', ...(tlog ? { tlog } : {}) };
}

/** Verifies a bundle against one keyless authority: chain at signing time, SCT, tlog, EKU, identity. */
export function verifyKeyless(
  bundle: Bundle,
  payload: Artifact | undefined,
  authority: TrustedAuthority,
  legacy: boolean
): SignatureVerdict {
  const leaf = leafCertificate(bundle);
  if (!leaf) throw new CandidateError('no signing certificate (not a keyless signature)');
  const entity = toEntity(bundle, payload, legacy);
  const verifier = new Verifier(authority.trust, {
    tlogThreshold: 1,
    ctlogThreshold: 1,
    timestampThreshold: 1,
  });
  const signer = verifier.verify(entity);
  const cert = new NodeX509Certificate(leaf);
  if (!(cert.keyUsage ?? []).includes(EKU_CODE_SIGNING)) {
    throw new CandidateError('signing certificate lacks the code-signing extended key usage');
  }
  checkTlogKeyBinding(entity, cert.publicKey.export({ type: 'spki', format: 'der' }));
  const issuer = signer.identity?.extensions?.issuer ?? '';
  const subject = signer.identity?.subjectAlternativeName ?? '';
  const match = authority.identities.find(
    (i) =>
      issuer !== '' &&
      subject !== '' &&
      i.matchesIssuer(issuer) &&
      i.matchesSubject(subject) &&
      i.extensions.every(([oid, value]) => fulcioClaim(leaf, oid) === value)
  );
  if (!match) throw new CandidateError(`identity issuer=${issuer} subject=${subject} is not trusted`);
  const tlog = tlogVerdict(entity);
  return {
    authority: authority.name,
    kind: 'keyless',
    identity: { issuer, subject },
    ...(tlog ? { tlog } : {}),
  };
}

/** What the candidate claims about `digest` (throws ClaimError when it claims something else). */
export function claimOf(bundle: Bundle, payload: Buffer | undefined, digest: string): Claim {
  if (bundle.content.$case === 'dsseEnvelope') {
    const env = bundle.content.dsseEnvelope;
    return checkInTotoStatement(env.payloadType, env.payload, digest);
  }
  if (!payload) throw new ClaimError('message signature without the signed payload');
  return checkSimpleSigningPayload(payload, digest);
}

/** The authorities a candidate must be checked against, given what it claims (signature or attestation type). */
export type AuthoritySelector = (claim: Claim) => readonly TrustedAuthority[];

/** Verifies one candidate for `digest` against the authorities relevant to its claim; never throws. */
export function verifyCandidate(
  candidate: Candidate,
  digest: string,
  select: AuthoritySelector
): CandidateOutcome {
  const outcome: CandidateOutcome = { origin: candidate.origin, verified: [], errors: [] };
  if (candidate.rejected !== undefined) {
    outcome.errors.push(candidate.rejected);
    return outcome;
  }
  const payload = candidate.payload ? Buffer.from(candidate.payload) : undefined;
  let bundle: Bundle;
  try {
    bundle = parseBundle(candidate.bundle);
    outcome.claim = claimOf(bundle, payload, digest);
  } catch (err) {
    outcome.errors.push(describe(err));
    return outcome;
  }
  for (const authority of select(outcome.claim)) {
    try {
      outcome.verified.push(
        authority.kind === 'key'
          ? verifyWithKey(bundle, payload, authority, candidate.legacy === true)
          : verifyKeyless(bundle, payload, authority, candidate.legacy === true)
      );
    } catch (err) {
      outcome.errors.push(`${authority.name}: ${describe(err)}`);
    }
  }
  return outcome;
}
