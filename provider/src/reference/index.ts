export type { ImageReference } from './reference.ts';
export {
  canonicalReference,
  parseReference,
  pinnedImage,
  registryEndpoint,
  repositoryName,
} from './reference.ts';
export type { LookupKey, LookupKeyParts } from './lookup-key.ts';
export { MAX_LOOKUP_KEY_LENGTH, formatLookupKey, parseLookupKey } from './lookup-key.ts';
export { MAX_REFERENCE_LENGTH, isSha256Digest } from './grammar.ts';
