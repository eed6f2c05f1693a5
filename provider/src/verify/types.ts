/**
 * The verification contract between the verifier, the registry client that feeds it and the lookup service that
 * calls it. Everything here is a plain type; behaviour lives in the modules beside it.
 */
import type { Logger } from 'pino';
import type { AuthorityConfig } from '../config/index.ts';
import type { RequestContext } from '../registry/index.ts';

/** Per-request context (cancellation, the namespace whose pull secrets apply): the registry client's. */
export type { RequestContext };

/** A descriptor in a referrers listing (OCI image index `manifests[]` entry). */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * What the verifier needs from a registry. `RegistryClient` (provider/src/registry) implements it with plain
 * strings. Missing manifests throw `SigpinError('NOT_FOUND')`; anything transient throws a transient SigpinError,
 * which the verifier lets through unchanged.
 */
export interface ArtifactSource {
  getManifest(
    registry: string,
    repository: string,
    reference: string,
    ctx: RequestContext,
    accept?: string[]
  ): Promise<{ bytes: Buffer; mediaType: string; digest: string }>;
  getBlob(
    registry: string,
    repository: string,
    digest: string,
    ctx: RequestContext,
    maxBytes: number
  ): Promise<Buffer>;
  /** Referrers of `digest` (the referrers API, or the `sha256-<hex>` fallback tag index when the API is absent). */
  listReferrers(
    registry: string,
    repository: string,
    digest: string,
    ctx: RequestContext,
    artifactType?: string
  ): Promise<ReferrerDescriptor[]>;
}

/** What a policy asks of one image digest. */
export interface VerificationRequirements {
  /** Authority names, any `threshold` distinct ones of which must have signed. */
  authorities: string[];
  threshold: number;
  /** Each entry: an attestation of this predicate type, signed by one of these authorities. */
  attestations: Array<{ predicateType: string; authorities: string[] }>;
}

export interface SignatureVerdict {
  authority: string;
  kind: 'key' | 'keyless';
  /** Keyless only: the OIDC issuer and the certificate's subject (URI or email SAN). */
  identity?: { issuer: string; subject: string };
  /** Present when a transparency-log entry was verified: its index and integrated time (RFC 3339). */
  tlog?: { logIndex: string; integratedTime: string };
}

export interface AttestationVerdict {
  predicateType: string;
  authority: string;
}

export interface VerificationResult {
  /** One entry per distinct authority that signed the digest (at least `threshold`). */
  signatures: SignatureVerdict[];
  /** One entry per required attestation, when the policy requires any. */
  attestations?: AttestationVerdict[];
}

export interface ImageVerifier {
  /**
   * Verifies `registry/repository@digest` against the requirements. Resolves with the verdict when trusted;
   * throws SigpinError `UNSIGNED` (no signature found), `UNTRUSTED` (signatures found, none valid for the
   * authorities, or fewer than the threshold), `ATTESTATION_MISSING`; transient registry errors propagate unchanged.
   */
  verify(i: {
    registry: string;
    repository: string;
    digest: string;
    requirements: VerificationRequirements;
    ctx: RequestContext;
  }): Promise<VerificationResult>;
  /** Changes whenever trust material changes (keys, roots, identities, tlog modes). Part of verdict cache keys. */
  fingerprint(): string;
  /** Stops the worker pool, if any. */
  close(): Promise<void>;
}

export interface ImageVerifierOptions {
  authorities: AuthorityConfig[];
  /** Relative key and trusted-root paths are resolved against this folder (the config file's). */
  baseDir: string;
  source: ArtifactSource;
  logger: Logger;
  /** Reads a key from a Kubernetes Secret (`key.secretRef`); required only when an authority uses one. */
  readSecret?: (namespace: string, name: string, key: string) => Promise<Buffer>;
  /** Worker threads for signature checks. 0 = verify on the calling thread. Default: 0. */
  workers?: number;
  /** Candidates x authorities in one verify() call from which work goes to the pool. Default 8. */
  workerMinBatch?: number;
}
