/**
 * Signature verification (DESIGN.md section 6): the public surface of provider/src/verify.
 *
 * Contract:
 *   const verifier = await createImageVerifier({ authorities, baseDir, source, logger, readSecret?, workers? });
 *   const result = await verifier.verify({ registry, repository, digest, requirements, ctx });
 *     -> { signatures: SignatureVerdict[], attestations?: AttestationVerdict[] }   (trusted)
 *     throws SigpinError UNSIGNED      no signature of any kind found for the digest
 *                        UNTRUSTED     signatures found, none valid for the authorities, or fewer than `threshold`
 *                        ATTESTATION_MISSING  a required predicate type has no attestation by its authorities
 *                        INVALID_REFERENCE    the digest is not sha256:<64 hex>
 *     transient registry errors (REGISTRY_UNAVAILABLE, DEADLINE_EXCEEDED) propagate unchanged.
 *   verifier.fingerprint()  sha256 hex over all trust material; put it in verdict cache keys (digest + fingerprint).
 *   verifier.close()        stops the worker pool.
 *
 * `source` is any ArtifactSource (RegistryClient implements it). Discovery looks at OCI referrers (sigstore bundles,
 * cosign v3), the legacy `sha256-<hex>.sig` tag (cosign <= v2, skopeo) and, when attestations are required,
 * `sha256-<hex>.att`; at most 32 candidates per source, payload blobs <= 256 KiB, bundles <= 1 MiB, each blob
 * checked against its digest. A signature that is found but broken makes the verdict UNTRUSTED, never UNSIGNED.
 *
 * Authorities (config `authorities`, AuthorityConfig):
 *  - key: ECDSA P-256/P-384/P-521, RSA >= 2048, Ed25519 (file, inline PEM or Secret via `readSecret`), parsed once.
 *    `tlog: required` needs `trustedRoot`: a verified Rekor SET or inclusion proof must be present. With
 *    `tlog: optional`, present entries are checked against `trustedRoot`'s logs when one is configured (an entry
 *    from another log then fails the signature), and ignored when none is.
 *  - keyless: `keyless.trustedRoot` (offline trusted_root.json: CAs, CT logs, Rekor logs, TSAs) and identities.
 *    Chain at the signing time (tlog integrated time or TSA), SCT, tlog entry, code-signing EKU; issuer and subject
 *    exact, or `issuerRegExp`/`subjectRegExp` anchored at the start (`$` anchors the end); `extensions` are exact
 *    Fulcio claims by OID (.1.1-.1.6 raw strings, .1.8+ DER UTF8String).
 * Claims: simple-signing payloads must name the digest, type `cosign container image signature`, no unknown
 * `critical` members (cosign's and skopeo's identity forms both accepted); in-toto statements must have the digest
 * as a subject; predicate `https://sigstore.dev/cosign/sign/v1` is a signature, any other an attestation.
 * Verdicts depend only on (digest, signatures found, fingerprint()); `workers > 0` moves the checks of concurrent
 * verifications to a worker_threads pool.
 */
export { createImageVerifier } from './verifier.ts';
export type {
  ArtifactSource,
  AttestationVerdict,
  ImageVerifier,
  ImageVerifierOptions,
  ReferrerDescriptor,
  RequestContext,
  SignatureVerdict,
  VerificationRequirements,
  VerificationResult,
} from './types.ts';
export { parsePublicKey } from './authorities.ts';
export { COSIGN_SIGN_PREDICATE } from './claims.ts';
export { attachmentTag, MEDIA_TYPE } from './discovery.ts';
