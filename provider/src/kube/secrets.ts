/** Trust material kept in Secrets (keys, trusted roots): one key of one Secret, as bytes. */
import { SigpinError } from '../errors.ts';
import { KubeReader, resolveKubeConfig } from './api.ts';
import type { KubeConfigSource } from './api.ts';

export interface SecretReader {
  /** The decoded value of `key` in Secret `namespace/name`; NOT_FOUND when the Secret or key is missing. */
  readSecretKey(namespace: string, name: string, key: string): Promise<Buffer>;
}

export function createSecretReader(options: KubeConfigSource & { timeoutMs?: number } = {}): SecretReader {
  const reader = new KubeReader(resolveKubeConfig(options), options.timeoutMs);
  return {
    async readSecretKey(namespace, name, key) {
      const secret = await reader.readSecret(namespace, name);
      if (!secret.found) {
        const why = secret.status === 403 ? 'access forbidden' : 'not found';
        throw new SigpinError('NOT_FOUND', `secret ${namespace}/${name}: ${why}`);
      }
      const encoded = secret.value.data?.[key];
      if (encoded !== undefined) return Buffer.from(encoded, 'base64');
      const plain = secret.value.stringData?.[key];
      if (plain !== undefined) return Buffer.from(plain, 'utf8');
      throw new SigpinError('NOT_FOUND', `secret ${namespace}/${name} has no key ${JSON.stringify(key)}`);
    },
  };
}
