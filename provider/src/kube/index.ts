/** Kubernetes access: pull secrets as registry credentials, and trust material from Secrets. */
export { createPullSecretLookup, credentialsFromSecret } from './pull-secrets.ts';
export type { PullSecretLookupOptions } from './pull-secrets.ts';
export { createSecretReader } from './secrets.ts';
export type { SecretReader } from './secrets.ts';
export { resolveKubeConfig } from './api.ts';
export type { KubeConfigSource } from './api.ts';
