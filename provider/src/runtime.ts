import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { CachedLoader, TieredCache } from './cache/index.ts';
import { resolveConfigPath, type Config, type LoadedConfig } from './config/index.ts';
import { LookupService } from './lookup/index.ts';
import { RegistryClient } from './registry/index.ts';
import { Metrics } from './server/metrics.ts';
import { compileTrustPolicy } from './trust/index.ts';

/**
 * The composition root: turns a validated config into the running parts. Shared by `serve` and the one-shot CLI
 * commands so both answer identically.
 */
export interface Runtime {
  readonly config: Config;
  readonly lookup: LookupService;
  readonly metrics: Metrics;
  readonly cache: TieredCache;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

async function readCredentials(
  loaded: LoadedConfig
): Promise<Array<{ registry: string; username: string; password: string }>> {
  return Promise.all(
    loaded.config.registries.credentials.map(async (c) => ({
      registry: c.registry,
      username: c.username,
      password:
        c.password ??
        (await readFile(resolveConfigPath(loaded, c.passwordFile as string), 'utf8')).replace(/\r?\n$/, ''),
    }))
  );
}

export async function createRuntime(
  loaded: LoadedConfig,
  logger: Logger,
  o: { metrics?: Metrics } = {}
): Promise<Runtime> {
  const { config } = loaded;
  const metrics = o.metrics ?? new Metrics();
  const hmacKey = config.cache.hmacKeyFile
    ? await readFile(resolveConfigPath(loaded, config.cache.hmacKeyFile))
    : undefined;
  const cache = await TieredCache.create({
    url: config.cache.url,
    l1MaxEntries: config.cache.l1MaxEntries,
    ...(hmacKey ? { hmacKey } : {}),
    logger: logger.child({ component: 'cache' }),
    onEvent: metrics.onCacheEvent,
  });
  const loader = new CachedLoader({ cache, logger: logger.child({ component: 'cache' }) });
  // @kubernetes/client-node is loaded only when used: it is large and most installs outside a cluster skip it.
  const kube = config.kubernetes.enabled ? await import('./kube/index.ts') : undefined;
  const kubeconfigFile = config.kubernetes.kubeconfig
    ? { kubeconfigFile: resolveConfigPath(loaded, config.kubernetes.kubeconfig) }
    : {};
  const pullSecrets = kube?.createPullSecretLookup({
    ...kubeconfigFile,
    ttlMs: config.kubernetes.pullSecretsTTL,
    logger: logger.child({ component: 'kube' }),
  });
  const secretReader = kube?.createSecretReader(kubeconfigFile);
  const registry = new RegistryClient({
    allow: config.registries.allow,
    insecure: config.registries.insecure,
    credentials: await readCredentials(loaded),
    ...(config.registries.dockerConfigFile
      ? { dockerConfigFile: resolveConfigPath(loaded, config.registries.dockerConfigFile) }
      : {}),
    ...(pullSecrets ? { pullSecrets } : {}),
    ...(config.registries.caFile
      ? { ca: await readFile(resolveConfigPath(loaded, config.registries.caFile), 'utf8') }
      : {}),
    timeoutMs: config.registries.timeout,
    maxConcurrencyPerRegistry: config.registries.maxConcurrency,
    maxRetries: config.registries.maxRetries,
    logger: logger.child({ component: 'registry' }),
    onRequest: metrics.onRegistryRequest,
  });
  const verifying = config.policies.some((p) => p.verify);
  const verifier = verifying
    ? await (
        await import('./verify/index.ts')
      ).createImageVerifier({
        // Keyless checks cost ~25 ms of CPU each: big batches go to worker threads, off the event loop.
        workers: Math.max(1, availableParallelism()),
        authorities: config.authorities,
        baseDir: loaded.baseDir,
        source: registry,
        logger: logger.child({ component: 'verify' }),
        ...(secretReader
          ? {
              readSecret: (ns: string, name: string, key: string) =>
                secretReader.readSecretKey(ns, name, key),
            }
          : {}),
      })
    : undefined;
  const trust = compileTrustPolicy({
    policies: config.policies,
    authorities: config.authorities,
    ...(verifier ? { trustMaterialFingerprint: () => verifier.fingerprint() } : {}),
  });
  const lookup = new LookupService({
    registry,
    loader,
    trust,
    ...(verifier ? { verifier } : {}),
    timings: {
      digestTtlMs: config.cache.digestTTL,
      digestStaleMs: config.cache.staleTTL,
      verdictTtlMs: config.cache.verdictTTL,
      negativeTtlMs: config.cache.negativeTTL,
      loadTimeoutMs: config.registries.timeout * (config.registries.maxRetries + 1),
    },
    namespacedCredentials: config.kubernetes.enabled,
    logger: logger.child({ component: 'lookup' }),
    events: {
      onLookup: (route, result, count) => metrics.lookups.inc({ route, result }, count),
      onVerifySkipped: () => metrics.verifySkipped.inc(),
    },
  });
  return {
    config,
    lookup,
    metrics,
    cache,
    ready: async () => (config.cache.required ? cache.ready() : true),
    async close() {
      await loader.drain();
      await verifier?.close();
      await registry.close();
      await cache.close();
    },
  };
}
