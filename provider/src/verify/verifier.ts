/**
 * The image verifier: discovery (I/O, on the event loop) then pure per-candidate checks (here, or in the worker
 * pool for big batches), then the verdict. Built once per config; trust material is parsed once.
 */
import { SigpinError } from '../errors.ts';
import {
  compileAuthority,
  fingerprintMaterials,
  loadAuthorityMaterial,
  type AuthorityMaterial,
  type TrustedAuthority,
} from './authorities.ts';
import { verifyCandidate } from './candidate.ts';
import { decide, selectorFor } from './decide.ts';
import { DEFAULT_DISCOVERY_LIMITS, discoverCandidates } from './discovery.ts';
import { VerifierPool } from './pool.ts';
import type { ImageVerifier, ImageVerifierOptions } from './types.ts';

const DEFAULT_WORKER_MIN_BATCH = 8;

export async function createImageVerifier(o: ImageVerifierOptions): Promise<ImageVerifier> {
  const materials: AuthorityMaterial[] = [];
  for (const config of o.authorities) materials.push(await loadAuthorityMaterial(config, o));
  const byName = new Map<string, TrustedAuthority>(materials.map((m) => [m.name, compileAuthority(m)]));
  const fingerprint = fingerprintMaterials(materials);
  // Workers start on the first batch big enough to need them: an idle provider does not pay their memory.
  const poolSize = o.workers ?? 0;
  let pool: VerifierPool | undefined;
  const workerPool = (): VerifierPool => (pool ??= new VerifierPool(poolSize, materials));
  const minBatch = o.workerMinBatch ?? DEFAULT_WORKER_MIN_BATCH;
  const log = o.logger.child({ module: 'verify' });
  // k-of-n counts authorities: two names for one key would let one signature count twice
  const byKey = new Map<string, string>();
  for (const m of materials) {
    if (!m.publicKey) continue;
    const other = byKey.get(m.publicKey);
    if (other)
      log.warn(
        { authorities: [other, m.name] },
        'two authorities share one public key; a threshold counts them twice'
      );
    byKey.set(m.publicKey, m.name);
  }
  // Verifications under way: a batch of many images arrives as many concurrent one-candidate verifications, so
  // whether the work is big enough for the pool is judged across them, not per image.
  let inFlight = 0;

  return {
    async verify({ registry, repository, digest, requirements, ctx }) {
      if (!/^sha256:[0-9a-f]{64}$/.test(digest))
        throw new SigpinError('INVALID_REFERENCE', `not a sha256 digest: ${digest}`);
      const select = selectorFor(requirements, byName); // unknown authority names fail before any I/O
      if (requirements.authorities.length === 0 && requirements.attestations.length === 0) {
        throw new SigpinError('INTERNAL', 'verification requested with no authority');
      }
      let candidates;
      inFlight++;
      try {
        candidates = await discoverCandidates(
          o.source,
          { registry, repository, digest, ctx, attestations: requirements.attestations.length > 0 },
          DEFAULT_DISCOVERY_LIMITS
        );
      } finally {
        inFlight--;
      }
      ctx.signal.throwIfAborted();
      const work = candidates.length * byName.size * (inFlight + 1);
      const outcomes =
        poolSize > 0 && work >= minBatch
          ? await workerPool().verify(digest, requirements, candidates)
          : candidates.map((c) => verifyCandidate(c, digest, select));
      try {
        const result = decide(digest, outcomes, requirements);
        log.debug(
          {
            registry,
            repository,
            digest,
            candidates: candidates.length,
            signatures: result.signatures.length,
          },
          'verified'
        );
        return result;
      } catch (err) {
        log.debug(
          { registry, repository, digest, candidates: candidates.length, err: (err as Error).message },
          'not verified'
        );
        throw err;
      }
    },
    fingerprint: () => fingerprint,
    close: async () => {
      await pool?.close();
    },
  };
}
