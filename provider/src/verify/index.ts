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
 * `sha256-<hex>.att`. Authorities come from the `authorities` section of the config (AuthorityConfig); key
 * authorities may name a `trustedRoot` whose transparency logs are used to check Rekor entries.
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
