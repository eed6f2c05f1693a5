/** The OCI registry client: public surface. */
export { RegistryClient } from './client.ts';
export type { FetchedManifest, RegistryClientOptions, RequestContext, ResolvedDigest } from './client.ts';
export type { Credential, CredentialLookup } from './credentials.ts';
export { parseDockerConfig, registryOfConfigKey } from './credentials.ts';
export type { Descriptor } from './oci.ts';
export { referrersFallbackTag } from './oci.ts';
export { canonicalRegistry, isSpecialAddress } from './address-policy.ts';
export type { RequestEvent } from './transport.ts';
export * from './constants.ts';
