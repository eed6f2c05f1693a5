/**
 * From per-candidate outcomes to the image verdict: threshold over distinct authorities, required attestations,
 * and the error code when not trusted. Pure.
 */
import { SigpinError } from '../errors.ts';
import type { TrustedAuthority } from './authorities.ts';
import type { AuthoritySelector, CandidateOutcome } from './candidate.ts';
import type { Claim } from './claims.ts';
import type {
  AttestationVerdict,
  SignatureVerdict,
  VerificationRequirements,
  VerificationResult,
} from './types.ts';

/** Longest reason list in an error message: enough to debug, bounded for item errors. */
const MAX_REASONS = 4;

/** Which authorities to try for a claim: the signature authorities, or those of the attestation requirements. */
export function selectorFor(
  requirements: VerificationRequirements,
  byName: ReadonlyMap<string, TrustedAuthority>
): AuthoritySelector {
  const lookup = (names: Iterable<string>): TrustedAuthority[] =>
    [...new Set(names)].map((n) => {
      const authority = byName.get(n);
      if (!authority) throw new SigpinError('INTERNAL', `policy names unknown authority "${n}"`);
      return authority;
    });
  const signature = lookup(requirements.authorities);
  const byPredicate = new Map<string, TrustedAuthority[]>();
  for (const att of requirements.attestations) {
    byPredicate.set(att.predicateType, [
      ...(byPredicate.get(att.predicateType) ?? []),
      ...lookup(att.authorities),
    ]);
  }
  return (claim: Claim) =>
    claim.kind === 'signature' ? signature : (byPredicate.get(claim.predicateType) ?? []);
}

function reasons(outcomes: readonly CandidateOutcome[]): string {
  const all = outcomes.flatMap((o) => o.errors.map((e) => `${o.origin}: ${e}`));
  const shown = all.slice(0, MAX_REASONS).join('; ');
  return all.length > MAX_REASONS ? `${shown}; and ${all.length - MAX_REASONS} more` : shown;
}

export function decide(
  digest: string,
  outcomes: readonly CandidateOutcome[],
  requirements: VerificationRequirements
): VerificationResult {
  const wanted = new Set(requirements.authorities);
  const signed = new Map<string, SignatureVerdict>();
  for (const o of outcomes) {
    if (o.claim?.kind !== 'signature') continue;
    for (const v of o.verified)
      if (wanted.has(v.authority) && !signed.has(v.authority)) signed.set(v.authority, v);
  }
  const threshold = requirements.authorities.length === 0 ? 0 : Math.max(1, requirements.threshold);
  if (signed.size < threshold) {
    // candidates that claim to be signatures, or could not even be read (a broken signature is still a signature)
    const signatureLike = outcomes.filter((o) => o.claim === undefined || o.claim.kind === 'signature');
    if (signatureLike.length === 0) throw new SigpinError('UNSIGNED', `no signature found for ${digest}`);
    if (signed.size > 0) {
      throw new SigpinError(
        'UNTRUSTED',
        `${signed.size} of ${threshold} required authorities signed ${digest} (${[...signed.keys()].join(', ')})`
      );
    }
    throw new SigpinError(
      'UNTRUSTED',
      `no valid signature for ${digest} by ${requirements.authorities.join(', ')}: ${reasons(signatureLike)}`
    );
  }
  const attestations: AttestationVerdict[] = [];
  for (const req of requirements.attestations) {
    const allowed = new Set(req.authorities);
    const ofType = outcomes.filter(
      (o) => o.claim?.kind === 'attestation' && o.claim.predicateType === req.predicateType
    );
    const hit = ofType.flatMap((o) => o.verified).find((v) => allowed.has(v.authority));
    if (!hit) {
      const why = ofType.length > 0 ? `: ${reasons(ofType)}` : '';
      throw new SigpinError(
        'ATTESTATION_MISSING',
        `no ${req.predicateType} attestation for ${digest} by ${req.authorities.join(', ')}${why}`
      );
    }
    attestations.push({ predicateType: req.predicateType, authority: hit.authority });
  }
  return {
    signatures: [...signed.values()],
    ...(requirements.attestations.length > 0 ? { attestations } : {}),
  };
}
