/**
 * Access to the Kubernetes API for what sigpin reads: ServiceAccounts and Secrets. A thin layer over
 * @kubernetes/client-node that turns its errors into "absent" (404), "forbidden" (403) or a transient SigpinError.
 */
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { SigpinError } from '../errors.ts';

/** Default time allowed for one API call. */
export const DEFAULT_KUBE_TIMEOUT_MS = 5000;

export type ReadResult<T> = { found: true; value: T } | { found: false; status: 403 | 404 };

/** Where the API server is: a KubeConfig object, a kubeconfig file, or neither (the default). */
export interface KubeConfigSource {
  /** Optional: a ready KubeConfig (tests). */
  kubeConfig?: KubeConfig;
  /** Optional: a kubeconfig file path. */
  kubeconfigFile?: string;
}

/**
 * The KubeConfig to use: the object given, else the file given, else client-node's default order
 * (KUBECONFIG, ~/.kube/config, in-cluster service account).
 */
export function resolveKubeConfig(source: KubeConfigSource = {}): KubeConfig {
  if (source.kubeConfig) return source.kubeConfig;
  const loaded = new KubeConfig();
  if (source.kubeconfigFile) loaded.loadFromFile(source.kubeconfigFile);
  else loaded.loadFromDefault();
  return loaded;
}

export class KubeReader {
  readonly #core: CoreV1Api;
  readonly #timeoutMs: number;

  constructor(kubeConfig: KubeConfig, timeoutMs = DEFAULT_KUBE_TIMEOUT_MS) {
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#timeoutMs = timeoutMs;
  }

  readServiceAccount(namespace: string, name: string): Promise<ReadResult<V1ServiceAccount>> {
    return this.#read(`serviceaccount ${namespace}/${name}`, () =>
      this.#core.readNamespacedServiceAccount({ namespace, name })
    );
  }

  readSecret(namespace: string, name: string): Promise<ReadResult<V1Secret>> {
    return this.#read(`secret ${namespace}/${name}`, () =>
      this.#core.readNamespacedSecret({ namespace, name })
    );
  }

  async #read<T>(what: string, call: () => Promise<T>): Promise<ReadResult<T>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SigpinError('INTERNAL', `kubernetes API: reading ${what} timed out`)),
        this.#timeoutMs
      );
    });
    try {
      return { found: true, value: await Promise.race([call(), timeout]) };
    } catch (err) {
      if (err instanceof ApiException && (err.code === 404 || err.code === 403)) {
        return { found: false, status: err.code };
      }
      if (err instanceof SigpinError) throw err;
      const detail =
        err instanceof ApiException ? `status ${err.code}` : err instanceof Error ? err.name : 'error';
      // the exception's body can echo the object; keep only the status in the message
      throw new SigpinError('INTERNAL', `kubernetes API: reading ${what} failed (${detail})`);
    } finally {
      clearTimeout(timer);
    }
  }
}
