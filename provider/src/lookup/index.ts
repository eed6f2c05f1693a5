export { LookupService } from './service.ts';
export type {
  Route,
  RequestContext,
  DigestSource,
  Verifier,
  VerificationResult,
  SignatureVerdict,
  Loader,
  LookupTimings,
  LookupEvents,
  LookupServiceOptions,
  LookupOutcome,
  Verdict,
} from './service.ts';
export { parseProviderRequest, providerResponse, RequestError, PROVIDER_API_VERSION } from './protocol.ts';
export type { ProviderItem, ProviderResponse } from './protocol.ts';
export { withDeadline } from './deadline.ts';
