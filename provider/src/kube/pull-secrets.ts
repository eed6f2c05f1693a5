/**
 * Registry credentials from Kubernetes pull secrets: for a namespace, the `default` ServiceAccount's
 * imagePullSecrets, read as `kubernetes.io/dockerconfigjson` (or legacy `kubernetes.io/dockercfg`) Secrets.
 * Cached per namespace with a TTL; concurrent lookups for one namespace share one set of API calls. A missing
 * namespace, ServiceAccount or Secret, or missing permissions, means "no credentials" (logged at warn, without
 * any secret content); other API failures are transient errors so the caller does not fall back to anonymous.
 */
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { canonicalRegistry, parseDockerConfig } from '../registry/index.ts';
import type { Credential, CredentialLookup } from '../registry/index.ts';
import { KubeReader, resolveKubeConfig } from './api.ts';
import type { KubeConfigSource } from './api.ts';

export interface PullSecretLookupOptions extends KubeConfigSource {
  /** How long a namespace's credentials are reused. Required. */
  ttlMs: number;
  /** Required. */
  logger: Logger;
  /** ServiceAccount whose imagePullSecrets apply. Optional, default `default`. */
  serviceAccount?: string;
  /** Time allowed per API call. Optional, default 5 s. */
  timeoutMs?: number;
}

const MAX_NAMESPACES = 10_000;

/** Credentials by canonical registry found in one Secret (empty when it is not a docker config Secret). */
export function credentialsFromSecret(secret: V1Secret): {
  credentials: Map<string, Credential>;
  invalidKeys: string[];
} {
  const data = secret.data ?? {};
  let document: unknown;
  try {
    if (secret.type === 'kubernetes.io/dockerconfigjson' && data['.dockerconfigjson']) {
      document = JSON.parse(Buffer.from(data['.dockerconfigjson'], 'base64').toString('utf8'));
    } else if (secret.type === 'kubernetes.io/dockercfg' && data['.dockercfg']) {
      // the legacy format is the `auths` map itself
      document = { auths: JSON.parse(Buffer.from(data['.dockercfg'], 'base64').toString('utf8')) as unknown };
    } else {
      return { credentials: new Map(), invalidKeys: ['(not a docker config secret)'] };
    }
  } catch {
    return { credentials: new Map(), invalidKeys: ['(not JSON)'] };
  }
  return parseDockerConfig(document);
}

export function createPullSecretLookup(options: PullSecretLookupOptions): CredentialLookup {
  const { logger } = options;
  const reader = new KubeReader(resolveKubeConfig(options), options.timeoutMs);
  const serviceAccount = options.serviceAccount ?? 'default';
  const cache = new Map<string, { expiresAt: number; credentials: Map<string, Credential> }>();
  const inflight = new Map<string, Promise<Map<string, Credential>>>();

  async function load(namespace: string): Promise<Map<string, Credential>> {
    const merged = new Map<string, Credential>();
    const account = await reader.readServiceAccount(namespace, serviceAccount);
    if (!account.found) {
      logger.warn(
        { namespace, serviceAccount, status: account.status },
        'cannot read service account: no pull secrets for this namespace'
      );
      return merged;
    }
    const names = (account.value.imagePullSecrets ?? []).map((r) => r.name).filter((n): n is string => !!n);
    for (const name of names) {
      const secret = await reader.readSecret(namespace, name);
      if (!secret.found) {
        logger.warn({ namespace, secret: name, status: secret.status }, 'cannot read image pull secret');
        continue;
      }
      const { credentials, invalidKeys } = credentialsFromSecret(secret.value);
      if (invalidKeys.length > 0) {
        logger.warn({ namespace, secret: name, invalidKeys }, 'unusable entries in image pull secret');
      }
      // like the kubelet, earlier secrets take precedence
      for (const [registry, credential] of credentials)
        if (!merged.has(registry)) merged.set(registry, credential);
    }
    return merged;
  }

  async function forNamespace(namespace: string): Promise<Map<string, Credential>> {
    const cached = cache.get(namespace);
    if (cached && cached.expiresAt > Date.now()) return cached.credentials;
    const running = inflight.get(namespace);
    if (running) return running;
    const promise = load(namespace)
      .then((credentials) => {
        if (cache.size >= MAX_NAMESPACES) cache.delete(cache.keys().next().value ?? '');
        cache.set(namespace, { expiresAt: Date.now() + options.ttlMs, credentials });
        return credentials;
      })
      .finally(() => inflight.delete(namespace));
    inflight.set(namespace, promise);
    return promise;
  }

  return async (registry, namespace) => (await forNamespace(namespace)).get(canonicalRegistry(registry));
}
