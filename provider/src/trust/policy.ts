import { createHash } from 'node:crypto';
import type { AuthorityConfig, PolicyConfig } from '../config/index.ts';
import type { VerificationRequirements } from '../verify/index.ts';
import { compileImageGlob, type ImageMatcher } from './glob.ts';

export type PolicyMode = 'mutate' | 'validate-only';

export type { VerificationRequirements };

/** The policy that governs one image, with everything a verdict depends on folded into `fingerprint`. */
export interface MatchedPolicy {
  readonly name: string;
  readonly mode: PolicyMode;
  readonly verify: boolean;
  readonly requirements: VerificationRequirements;
  /** Changes whenever anything that affects this policy's verdicts changes (policy, authorities, trust material). */
  readonly fingerprint: string;
}

export interface TrustPolicy {
  /** First matching policy wins; undefined means "no policy" (fail closed). */
  match(repositoryName: string): MatchedPolicy | undefined;
  readonly policies: readonly MatchedPolicy[];
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export interface CompileTrustPolicyOptions {
  policies: PolicyConfig[];
  authorities: AuthorityConfig[];
  /** Fingerprint of the loaded trust material (key bytes, trusted roots): a rotated key invalidates verdicts. */
  trustMaterialFingerprint?: (authority: string) => string;
}

export function compileTrustPolicy(o: CompileTrustPolicyOptions): TrustPolicy {
  const authorities = new Map(o.authorities.map((a) => [a.name, a]));
  const compiled = o.policies.map((p) => {
    const referenced = [
      ...new Set([...p.authorities, ...p.attestations.flatMap((a) => a.authorities)]),
    ].sort();
    const fingerprint = createHash('sha256')
      .update(
        stableJson({
          policy: { ...p, images: undefined, name: undefined },
          authorities: referenced.map((name) => ({
            config: authorities.get(name),
            material: o.trustMaterialFingerprint?.(name) ?? '',
          })),
        })
      )
      .digest('hex')
      .slice(0, 32);
    const matchers: ImageMatcher[] = p.images.map(compileImageGlob);
    const matched: MatchedPolicy = {
      name: p.name,
      mode: p.mode,
      verify: p.verify,
      requirements: { authorities: p.authorities, threshold: p.threshold, attestations: p.attestations },
      fingerprint,
    };
    return { matched, matchers };
  });
  return {
    policies: compiled.map((c) => c.matched),
    match(repositoryName) {
      return compiled.find((c) => c.matchers.some((m) => m(repositoryName)))?.matched;
    },
  };
}
