/**
 * Registry credentials: static ones from the config, a docker `config.json`, and Kubernetes pull secrets for the
 * request's namespace. Matching is by exact canonical registry host (Docker Hub aliases folded), never by
 * substring. Credential values are never logged; a credential is identified in caches by a hash.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import { SigpinError } from '../errors.ts';
import { canonicalRegistry } from './address-policy.ts';
import { DOCKER_HUB, DOCKER_HUB_CONFIG_KEY } from './constants.ts';

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged at the token realm. */
  identityToken?: string;
  /** A ready bearer token for the registry (docker config `registrytoken`). */
  registryToken?: string;
}

export type CredentialLookup = (registry: string, namespace: string) => Promise<Credential | undefined>;

const authEntrySchema = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  registrytoken: z.string().optional(),
});
const dockerConfigSchema = z.object({ auths: z.record(z.string(), z.unknown()).optional() });

/**
 * The registry a docker config key names: `https://index.docker.io/v1/` -> docker.io, `https://host:5000/v2/`
 * -> host:5000, `host` -> host. Undefined when the key is not a host.
 */
export function registryOfConfigKey(key: string): string | undefined {
  if (key === DOCKER_HUB_CONFIG_KEY) return DOCKER_HUB;
  const withoutScheme = key.replace(/^[a-z]+:\/\//i, '');
  const host = withoutScheme.split('/')[0] ?? '';
  try {
    return canonicalRegistry(host);
  } catch {
    return undefined;
  }
}

function entryToCredential(entry: z.infer<typeof authEntrySchema>): Credential | undefined {
  const credential: Credential = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      credential.username = decoded.slice(0, colon);
      credential.password = decoded.slice(colon + 1);
    }
  }
  if (entry.username) credential.username = entry.username;
  if (entry.password) credential.password = entry.password;
  if (entry.identitytoken) credential.identityToken = entry.identitytoken;
  if (entry.registrytoken) credential.registryToken = entry.registrytoken;
  const usable =
    (credential.username !== undefined && credential.password !== undefined) ||
    credential.identityToken !== undefined ||
    credential.registryToken !== undefined;
  return usable ? credential : undefined;
}

/**
 * Parses the `auths` of a docker config.json (also the content of a `kubernetes.io/dockerconfigjson` Secret;
 * pass `{ auths: x }` for a legacy `.dockercfg`). Returns credentials by canonical registry and the keys that
 * could not be used (never their contents). The first entry for a registry wins.
 */
export function parseDockerConfig(json: unknown): {
  credentials: Map<string, Credential>;
  invalidKeys: string[];
} {
  const credentials = new Map<string, Credential>();
  const invalidKeys: string[] = [];
  const parsed = dockerConfigSchema.safeParse(json);
  if (!parsed.success) return { credentials, invalidKeys: ['(document)'] };
  for (const [key, value] of Object.entries(parsed.data.auths ?? {})) {
    const registry = registryOfConfigKey(key);
    const entry = authEntrySchema.safeParse(value);
    const credential = entry.success ? entryToCredential(entry.data) : undefined;
    if (!registry || !credential) {
      invalidKeys.push(key);
      continue;
    }
    if (!credentials.has(registry)) credentials.set(registry, credential);
  }
  return { credentials, invalidKeys };
}

/** A stable, non-reversible name for a credential, for cache keys (never the secret itself). */
export function credentialIdentity(credential: Credential | undefined): string {
  if (!credential) return 'anonymous';
  const material = JSON.stringify([
    credential.username ?? null,
    credential.password ?? null,
    credential.identityToken ?? null,
    credential.registryToken ?? null,
  ]);
  return createHash('sha256').update(material).digest('base64url').slice(0, 22);
}

export interface CredentialStoreOptions {
  credentials?: Array<{ registry: string; username: string; password: string }>;
  dockerConfigFile?: string;
  pullSecrets?: CredentialLookup;
  logger: Logger;
}

/** How often a docker config file is checked for changes (a mounted Secret can be rotated). */
const DOCKER_CONFIG_RECHECK_MS = 30_000;

export class CredentialStore {
  readonly #static = new Map<string, Credential>();
  readonly #dockerConfigFile: string | undefined;
  readonly #pullSecrets: CredentialLookup | undefined;
  readonly #logger: Logger;
  #fileCredentials = new Map<string, Credential>();
  #fileMtimeMs = -1;
  #fileCheckedAt = -Infinity;
  #fileLoading: Promise<void> | undefined;

  constructor(options: CredentialStoreOptions) {
    this.#logger = options.logger;
    this.#dockerConfigFile = options.dockerConfigFile;
    this.#pullSecrets = options.pullSecrets;
    for (const c of options.credentials ?? []) {
      const registry = canonicalRegistry(c.registry);
      if (!this.#static.has(registry))
        this.#static.set(registry, { username: c.username, password: c.password });
    }
  }

  /**
   * The credential for a registry: the namespace's pull secrets first (they are the most specific), then the
   * static config, then the docker config file. Undefined means anonymous. Lookup failures are thrown.
   */
  async find(registry: string, namespace: string | undefined): Promise<Credential | undefined> {
    const canonical = canonicalRegistry(registry);
    if (namespace && this.#pullSecrets) {
      // a failing lookup is not "no credentials": falling back to anonymous would turn an API outage into
      // definitive UNAUTHORIZED answers, so it fails the request as transient instead
      let fromSecret: Credential | undefined;
      try {
        fromSecret = await this.#pullSecrets(canonical, namespace);
      } catch (err) {
        if (err instanceof SigpinError) throw err;
        throw new SigpinError('INTERNAL', `pull secret lookup for ${namespace} failed (${errorName(err)})`);
      }
      if (fromSecret) return fromSecret;
    }
    const fromStatic = this.#static.get(canonical);
    if (fromStatic) return fromStatic;
    if (this.#dockerConfigFile) {
      await this.#refreshDockerConfig();
      return this.#fileCredentials.get(canonical);
    }
    return undefined;
  }

  async #refreshDockerConfig(): Promise<void> {
    if (Date.now() - this.#fileCheckedAt < DOCKER_CONFIG_RECHECK_MS) return;
    this.#fileLoading ??= this.#loadDockerConfig().finally(() => {
      this.#fileLoading = undefined;
    });
    await this.#fileLoading;
  }

  async #loadDockerConfig(): Promise<void> {
    const file = this.#dockerConfigFile;
    if (!file) return;
    try {
      const { mtimeMs } = await stat(file);
      this.#fileCheckedAt = Date.now();
      if (mtimeMs === this.#fileMtimeMs) return;
      const { credentials, invalidKeys } = parseDockerConfig(JSON.parse(await readFile(file, 'utf8')));
      this.#fileCredentials = credentials;
      this.#fileMtimeMs = mtimeMs;
      if (invalidKeys.length > 0)
        this.#logger.warn({ file, invalidKeys }, 'unusable entries in docker config');
    } catch (err) {
      this.#fileCheckedAt = Date.now();
      this.#logger.warn({ file, err: errorName(err) }, 'cannot read docker config file');
    }
  }
}

/** Error class and code only: messages of JSON/parse errors can quote file contents. */
function errorName(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${err.name} ${code}` : err.name;
  }
  return typeof err;
}
