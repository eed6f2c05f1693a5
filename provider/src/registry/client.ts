/**
 * The OCI registry client: tag -> digest with one HEAD (GET + sha256 as fallback), manifests and blobs checked
 * against their digests, referrers with the fallback tag. Everything goes through the allowlist, the SSRF guard,
 * authentication and the transport's limits (see the modules of this folder).
 */
import type { Logger } from 'pino';
import { raceAbort } from '../abort.ts';
import { SigpinError } from '../errors.ts';
import { AddressPolicy, canonicalRegistry, dialHost, formatHostPort } from './address-policy.ts';
import type { Permission } from './address-policy.ts';
import { Authenticator } from './auth.ts';
import type { AuthTarget } from './auth.ts';
import {
  DEFAULT_MAX_CONCURRENCY_PER_REGISTRY,
  DEFAULT_MAX_RETRIES,
  DEFAULT_TIMEOUT_MS,
  HEADER_DIGEST,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  MAX_REFERRER_PAGES,
  MAX_REFERRERS,
  MEDIA_TYPE_OCI_INDEX,
} from './constants.ts';
import { CredentialStore } from './credentials.ts';
import type { CredentialLookup } from './credentials.ts';
import {
  assertDigest,
  assertRepository,
  assertTagOrDigest,
  bareMediaType,
  descriptorSchema,
  digestOf,
  indexSchema,
  isDigest,
  isSha256Digest,
  referrersFallbackTag,
} from './oci.ts';
import type { Descriptor } from './oci.ts';
import { TokenCache } from './token-cache.ts';
import { headerValue, isRetryableStatus, Transport } from './transport.ts';
import type { RequestEvent, TransportResponse } from './transport.ts';

export interface RequestContext {
  /** The caller's deadline: aborting it ends every request with DEADLINE_EXCEEDED. */
  signal: AbortSignal;
  /** Kubernetes namespace whose pull secrets apply. */
  namespace?: string;
}

export interface RegistryClientOptions {
  /** `host[:port]` entries; `*` = any public host. Special addresses only for hosts listed explicitly. Required. */
  allow: string[];
  /** Hosts reached over plain http. Optional, default none. */
  insecure?: string[];
  /** Static credentials. Optional. */
  credentials?: Array<{ registry: string; username: string; password: string }>;
  /** A docker config.json whose `auths` are used. Optional. */
  dockerConfigFile?: string;
  /** Pull secrets of the request's namespace, from Kubernetes. Optional. */
  pullSecrets?: CredentialLookup;
  /** Our own limit per operation, on top of the caller's signal. Optional, default 10 s. */
  timeoutMs?: number;
  /** Extra CA certificates (PEM bundle) for registries with a private CA, added to the system roots. Optional. */
  ca?: string;
  /** Concurrent requests per registry. Optional, default 16. */
  maxConcurrencyPerRegistry?: number;
  /** Retries of 408/429/5xx and network errors. Optional, default 2. */
  maxRetries?: number;
  /** Required. Used as given (give it a `component` binding); never receives credentials or tokens. */
  logger: Logger;
  /** Called once per HTTP exchange (metrics). Optional. */
  onRequest?: (e: RequestEvent) => void;
}

export interface ResolvedDigest {
  digest: string;
  mediaType: string;
  size: number;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** One registry operation in flight: where it goes, with what deadline and credential. */
interface Operation extends AuthTarget {
  repository: string;
  baseUrl: string;
}

/** Maps a registry answer that is not success to a coded error. */
function statusError(status: number, what: string): SigpinError {
  if (status === 404 || status === 410) return new SigpinError('NOT_FOUND', `${what}: not found`);
  if (status === 401 || status === 403)
    return new SigpinError('UNAUTHORIZED', `${what}: access denied (${status})`);
  if (isRetryableStatus(status))
    return new SigpinError('REGISTRY_UNAVAILABLE', `${what}: registry answered ${status}`);
  return new SigpinError('REGISTRY_UNAVAILABLE', `${what}: unexpected status ${status}`);
}

const REFERRERS_API_RECHECK_MS = 10 * 60_000;

export class RegistryClient {
  readonly #policy: AddressPolicy;
  readonly #credentials: CredentialStore;
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  /**
   * Repositories (`baseUrl/repository`) whose referrers API answered 404, until when. A registry that has the
   * API answers 404 only for a repository it does not find (distribution-spec; zot does), so for a while their
   * lookups go straight to the fallback tag: one GET less per cold verification (distribution 2.8, older
   * registries). Per repository, not per registry: one missing repository must not hide the API of the others.
   */
  readonly #noReferrersApi = new Map<string, number>();

  constructor(options: RegistryClientOptions) {
    this.#logger = options.logger;
    this.#policy = new AddressPolicy(options.allow, options.insecure ?? []);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#credentials = new CredentialStore({
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.dockerConfigFile ? { dockerConfigFile: options.dockerConfigFile } : {}),
      ...(options.pullSecrets ? { pullSecrets: options.pullSecrets } : {}),
      logger: this.#logger,
    });
    this.#transport = new Transport({
      policy: this.#policy,
      timeoutMs: this.#timeoutMs,
      maxConcurrencyPerRegistry: options.maxConcurrencyPerRegistry ?? DEFAULT_MAX_CONCURRENCY_PER_REGISTRY,
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
      ...(options.ca ? { ca: options.ca } : {}),
      logger: this.#logger,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
    this.#auth = new Authenticator({
      policy: this.#policy,
      transport: this.#transport,
      tokens: new TokenCache(),
      logger: this.#logger,
    });
  }

  /** Throws NOT_ALLOWED unless the registry may be contacted (before any DNS lookup or connection). */
  assertAllowed(registry: string): void {
    this.#permission(registry);
  }

  // Permissions only depend on the registry text and the fixed policy: decided once per distinct text (bounded).
  readonly #permissions = new Map<string, Permission>();

  #permission(registry: string): Permission {
    let permission = this.#permissions.get(registry);
    if (permission === undefined) {
      permission = this.#policy.permission(canonicalRegistry(registry));
      if (this.#permissions.size >= 1024) this.#permissions.clear();
      this.#permissions.set(registry, permission);
    }
    if (!permission.allowed) throw new SigpinError('NOT_ALLOWED', `registry ${registry} is not allowed`);
    return permission;
  }

  /** The digest a tag (or digest) refers to: one HEAD; a GET only when the registry gives no usable digest. */
  async resolveDigest(
    registry: string,
    repository: string,
    tagOrDigest: string,
    ctx: RequestContext
  ): Promise<ResolvedDigest> {
    assertRepository(repository);
    assertTagOrDigest(tagOrDigest);
    return this.#withOperation(registry, repository, ctx, async (op) => {
      const what = `${op.registry}/${repository}:${tagOrDigest}`;
      const res = await this.#send(op, 'HEAD', `/v2/${repository}/manifests/${tagOrDigest}`, {
        Accept: MANIFEST_MEDIA_TYPES.join(', '),
      });
      if (res.status === 200) {
        const digest = headerValue(res.headers, HEADER_DIGEST)?.trim();
        const mediaType = bareMediaType(headerValue(res.headers, 'content-type'));
        const size = Number(headerValue(res.headers, 'content-length'));
        if (digest && isSha256Digest(digest) && mediaType && Number.isSafeInteger(size)) {
          if (isDigest(tagOrDigest) && isSha256Digest(tagOrDigest) && digest !== tagOrDigest) {
            throw new SigpinError(
              'REGISTRY_UNAVAILABLE',
              `${what}: registry reported another digest ${digest}`
            );
          }
          return { digest, mediaType, size };
        }
      } else if (res.status !== 405) {
        throw statusError(res.status, what);
      }
      // no usable Docker-Content-Digest (or HEAD not allowed): hash the manifest itself
      const manifest = await this.#getManifest(op, tagOrDigest, MANIFEST_MEDIA_TYPES);
      const digest = isSha256Digest(manifest.digest) ? manifest.digest : digestOf(manifest.bytes);
      return { digest, mediaType: manifest.mediaType, size: manifest.bytes.length };
    });
  }

  /**
   * A manifest's exact bytes, hashed and checked against a digest reference and the Docker-Content-Digest
   * header; at most 4 MiB.
   */
  async getManifest(
    registry: string,
    repository: string,
    reference: string,
    ctx: RequestContext,
    accept: readonly string[] = MANIFEST_MEDIA_TYPES
  ): Promise<FetchedManifest> {
    assertRepository(repository);
    assertTagOrDigest(reference);
    return this.#withOperation(registry, repository, ctx, (op) => this.#getManifest(op, reference, accept));
  }

  /** A blob's bytes, at most `maxBytes`, checked against its digest. */
  async getBlob(
    registry: string,
    repository: string,
    digest: string,
    ctx: RequestContext,
    maxBytes: number
  ): Promise<Buffer> {
    assertRepository(repository);
    assertDigest(digest);
    return this.#withOperation(registry, repository, ctx, async (op) => {
      const what = `${op.registry}/${repository}@${digest}`;
      const res = await this.#send(op, 'GET', `/v2/${repository}/blobs/${digest}`, {}, maxBytes);
      if (res.status !== 200) throw statusError(res.status, what);
      if (digestOf(res.body, digest) !== digest) {
        throw new SigpinError('REGISTRY_UNAVAILABLE', `${what}: blob content does not match its digest`);
      }
      return res.body;
    });
  }

  /**
   * Manifests that refer to `digest` (their `subject`): the referrers API, or the `sha256-<hex>` fallback tag
   * when the registry has none (404). Filtered by artifactType here whether or not the registry did; pages
   * and entries are bounded.
   */
  async listReferrers(
    registry: string,
    repository: string,
    digest: string,
    ctx: RequestContext,
    artifactType?: string
  ): Promise<Descriptor[]> {
    assertRepository(repository);
    assertDigest(digest);
    return this.#withOperation(registry, repository, ctx, async (op) => {
      const what = `referrers of ${op.registry}/${repository}@${digest}`;
      const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
      const memoKey = `${op.baseUrl}/${repository}`;
      if ((this.#noReferrersApi.get(memoKey) ?? 0) > Date.now()) {
        return this.#referrersFromFallbackTag(op, digest, artifactType);
      }
      let path: string | undefined = `/v2/${repository}/referrers/${digest}${query}`;
      const found: Descriptor[] = [];
      for (let page = 0; path && page < MAX_REFERRER_PAGES && found.length < MAX_REFERRERS; page++) {
        const res = await this.#send(op, 'GET', path, { Accept: MEDIA_TYPE_OCI_INDEX }, MAX_MANIFEST_BYTES);
        if (res.status === 404 && page === 0) {
          if (this.#noReferrersApi.size >= 1024) this.#noReferrersApi.clear();
          this.#noReferrersApi.set(memoKey, Date.now() + REFERRERS_API_RECHECK_MS);
          return this.#referrersFromFallbackTag(op, digest, artifactType);
        }
        if (res.status !== 200) throw statusError(res.status, what);
        found.push(...this.#descriptorsOf(res.body, what));
        path = this.#nextPage(op, res);
      }
      return filterByArtifactType(found, artifactType).slice(0, MAX_REFERRERS);
    });
  }

  async close(): Promise<void> {
    await this.#transport.close();
  }

  async #referrersFromFallbackTag(
    op: Operation,
    digest: string,
    artifactType?: string
  ): Promise<Descriptor[]> {
    let manifest: FetchedManifest;
    try {
      manifest = await this.#getManifest(op, referrersFallbackTag(digest), [MEDIA_TYPE_OCI_INDEX]);
    } catch (err) {
      if (err instanceof SigpinError && err.code === 'NOT_FOUND') return [];
      throw err;
    }
    if (manifest.mediaType !== MEDIA_TYPE_OCI_INDEX) return [];
    const what = `referrers fallback tag of ${op.registry}/${op.repository}@${digest}`;
    return filterByArtifactType(this.#descriptorsOf(manifest.bytes, what), artifactType).slice(
      0,
      MAX_REFERRERS
    );
  }

  /** Descriptors of an image index; malformed entries are skipped, a malformed index is an error. */
  #descriptorsOf(bytes: Buffer, what: string): Descriptor[] {
    let index;
    try {
      index = indexSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch {
      throw new SigpinError('REGISTRY_UNAVAILABLE', `${what}: not a valid image index`);
    }
    const out: Descriptor[] = [];
    for (const entry of index.manifests) {
      const parsed = descriptorSchema.safeParse(entry);
      if (parsed.success) out.push(parsed.data);
      else this.#logger.debug({ what }, 'skipping malformed descriptor');
    }
    return out;
  }

  /** The next page from `Link: <...>; rel="next"`, only on the same origin. */
  #nextPage(op: Operation, res: TransportResponse): string | undefined {
    const link = headerValue(res.headers, 'link');
    const target = link && /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link)?.[1];
    if (!target) return undefined;
    const next = new URL(target, res.url);
    if (next.origin !== new URL(op.baseUrl).origin) {
      this.#logger.warn({ registry: op.registry }, 'ignoring referrers page on another origin');
      return undefined;
    }
    return `${next.pathname}${next.search}`;
  }

  async #getManifest(op: Operation, reference: string, accept: readonly string[]): Promise<FetchedManifest> {
    const what = `${op.registry}/${op.repository}:${reference}`;
    const res = await this.#send(
      op,
      'GET',
      `/v2/${op.repository}/manifests/${reference}`,
      { Accept: accept.join(', ') },
      MAX_MANIFEST_BYTES
    );
    if (res.status !== 200) throw statusError(res.status, what);
    const bytes = res.body;
    if (isDigest(reference) && digestOf(bytes, reference) !== reference) {
      throw new SigpinError('REGISTRY_UNAVAILABLE', `${what}: manifest content does not match the digest`);
    }
    const header = headerValue(res.headers, HEADER_DIGEST)?.trim();
    if (header && (!isDigest(header) || digestOf(bytes, header) !== header)) {
      throw new SigpinError(
        'REGISTRY_UNAVAILABLE',
        `${what}: manifest content does not match Docker-Content-Digest`
      );
    }
    const digest = isDigest(reference) ? reference : digestOf(bytes);
    return {
      bytes,
      digest,
      mediaType: manifestMediaType(bytes, headerValue(res.headers, 'content-type'), what),
    };
  }

  /**
   * Sends one registry request with authentication: up front when the registry's scheme is known, otherwise
   * after its 401 challenge; one renewal on 401, then UNAUTHORIZED.
   */
  async #send(
    op: Operation,
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string>,
    maxBytes = 0
  ): Promise<TransportResponse> {
    let scope = `repository:${op.repository}:pull`;
    const send = (authorization: string | undefined): Promise<TransportResponse> =>
      this.#transport.send({
        registry: op.registry,
        method,
        url: new URL(path, op.baseUrl),
        headers: authorization ? { ...headers, Authorization: authorization } : headers,
        maxBytes,
        permission: op.permission,
        signal: op.signal,
        callerSignal: op.callerSignal,
        deadlineAt: op.deadlineAt,
      });
    const first = await this.#auth.header(op, scope);
    let res = await send(first);
    if (res.status === 401) {
      const asked = this.#auth.learn(op, headerValue(res.headers, 'www-authenticate'));
      scope = asked.scope ?? scope;
      const second = await this.#auth.header(op, scope, first);
      if (second === undefined || second === first) {
        const why = op.credential ? 'credentials rejected' : 'authentication required, no credentials';
        throw new SigpinError('UNAUTHORIZED', `${op.registry}/${op.repository}: ${why}`);
      }
      res = await send(second);
      if (res.status === 401) {
        throw new SigpinError('UNAUTHORIZED', `${op.registry}/${op.repository}: credentials rejected`);
      }
    }
    return res;
  }

  /** Sets up deadline, permission and credential for one public call, and maps what escapes to coded errors. */
  async #withOperation<T>(
    registry: string,
    repository: string,
    ctx: RequestContext,
    fn: (op: Operation) => Promise<T>
  ): Promise<T> {
    const permission = this.#permission(registry);
    const canonical = canonicalRegistry(registry);
    const dial = dialHost(canonical);
    const protocol = this.#policy.isInsecure(canonical) ? 'http:' : 'https:';
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    const deadlineAt = Date.now() + this.#timeoutMs;
    if (ctx.signal.aborted)
      throw new SigpinError('DEADLINE_EXCEEDED', 'deadline exceeded before the request');
    try {
      const credential = await raceAbort(this.#credentials.find(canonical, ctx.namespace), signal);
      return await fn({
        registry: canonical,
        repository,
        dial,
        protocol,
        baseUrl: `${protocol}//${formatHostPort(dial)}`,
        permission,
        credential,
        signal,
        callerSignal: ctx.signal,
        deadlineAt,
      });
    } catch (err) {
      if (err instanceof SigpinError) throw err;
      if (ctx.signal.aborted) throw new SigpinError('DEADLINE_EXCEEDED', 'deadline exceeded', { cause: err });
      if (timeout.aborted)
        throw new SigpinError('REGISTRY_UNAVAILABLE', `${canonical} timed out`, { cause: err });
      throw new SigpinError(
        'INTERNAL',
        `registry client: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        }
      );
    }
  }
}

function filterByArtifactType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType ? descriptors.filter((d) => d.artifactType === artifactType) : descriptors;
}

/**
 * The manifest's media type: Content-Type, which must agree with the body's own `mediaType` field when both
 * are there (otherwise a registry could present one kind of document as another).
 */
function manifestMediaType(bytes: Buffer, contentType: string | undefined, what: string): string {
  const header = bareMediaType(contentType);
  let declared: string | undefined;
  try {
    const body: unknown = JSON.parse(bytes.toString('utf8'));
    if (body && typeof body === 'object' && 'mediaType' in body && typeof body.mediaType === 'string') {
      declared = body.mediaType;
    }
  } catch {
    throw new SigpinError('REGISTRY_UNAVAILABLE', `${what}: manifest is not JSON`);
  }
  const generic = header === '' || header === 'application/json' || header === 'application/octet-stream';
  if (declared !== undefined && !generic && declared !== header) {
    throw new SigpinError(
      'REGISTRY_UNAVAILABLE',
      `${what}: Content-Type ${header} but manifest says ${declared}`
    );
  }
  return generic ? (declared ?? header) : header;
}
