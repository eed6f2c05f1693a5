export { compileImageGlob } from './glob.ts';
export type { ImageMatcher } from './glob.ts';
export { compileTrustPolicy } from './policy.ts';
export type {
  TrustPolicy,
  MatchedPolicy,
  PolicyMode,
  VerificationRequirements,
  CompileTrustPolicyOptions,
} from './policy.ts';
