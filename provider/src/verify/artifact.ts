/**
 * Verifying a sigstore bundle for a plain artifact (a file, or only its digest): the engine behind
 * `sigpin verify-bundle` (the sigstore-conformance CLI protocol). Same checks as for images, through the same
 * code: a managed key, or a keyless identity (SAN exact, issuer exact) against an offline trusted root.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { compileAuthority, EMPTY_TRUSTED_ROOT } from './authorities.ts';
import { CandidateError, parseBundle, verifyKeyless, verifyWithKey, type Artifact } from './candidate.ts';
import { checkInTotoStatement } from './claims.ts';
import type { SignatureVerdict } from './types.ts';

export interface ArtifactBundleInput {
  /** The bundle JSON (parsed). */
  bundle: unknown;
  /** The artifact bytes, or its SHA-256 digest when only that is known. */
  artifact: Artifact;
  /** trusted_root.json content. Required for keyless; for a key, its logs check the bundle's tlog entries. */
  trustedRoot?: unknown;
  key?: KeyObject;
  identity?: { subject: string; issuer: string };
}

/** Verifies or throws (CandidateError, VerificationError, PolicyError, ClaimError) with the reason. */
export function verifyArtifactBundle(i: ArtifactBundleInput): SignatureVerdict {
  const bundle = parseBundle(i.bundle);
  const sha256 = Buffer.isBuffer(i.artifact)
    ? createHash('sha256').update(i.artifact).digest()
    : i.artifact.sha256;
  if (bundle.content.$case === 'dsseEnvelope') {
    // the artifact is a subject of the in-toto statement; the envelope carries the signed payload itself
    const env = bundle.content.dsseEnvelope;
    checkInTotoStatement(env.payloadType, env.payload, `sha256:${sha256.toString('hex')}`);
  }
  if (i.key) {
    const authority = compileAuthority({
      name: 'key',
      kind: 'key',
      tlog: 'optional',
      publicKey: i.key.export({ type: 'spki', format: 'der' }).toString('base64'),
      ...(i.trustedRoot === undefined ? {} : { trustedRoot: i.trustedRoot }),
    });
    return verifyWithKey(bundle, i.artifact, authority, false);
  }
  if (!i.identity)
    throw new CandidateError('need --key, or --certificate-identity and --certificate-oidc-issuer');
  if (i.trustedRoot === undefined || i.trustedRoot === EMPTY_TRUSTED_ROOT) {
    throw new CandidateError('keyless verification needs --trusted-root (sigpin verifies offline)');
  }
  const authority = compileAuthority({
    name: 'keyless',
    kind: 'keyless',
    tlog: 'required',
    trustedRoot: i.trustedRoot,
    identities: [{ issuer: i.identity.issuer, subject: i.identity.subject, extensions: {} }],
  });
  return verifyKeyless(bundle, i.artifact, authority, false);
}
