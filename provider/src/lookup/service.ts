import type { Logger } from 'pino';
import { SigpinError, toSigpinError } from '../errors.ts';
import { parseLookupKey, pinnedImage, repositoryName, canonicalReference } from '../reference/index.ts';
import type { ImageReference, LookupKey } from '../reference/index.ts';
import type { MatchedPolicy, TrustPolicy } from '../trust/index.ts';
import type { RequestContext } from '../registry/index.ts';
import type {
  AttestationVerdict,
  ImageVerifier,
  SignatureVerdict,
  VerificationResult,
} from '../verify/index.ts';

export type { SignatureVerdict, VerificationResult };
import { withDeadline } from './deadline.ts';
import type { ProviderItem } from './protocol.ts';

export type Route = 'resolve' | 'mutate' | 'verify';

export type { RequestContext };

/** What the lookup needs from the registry client. */
export interface DigestSource {
  assertAllowed(registry: string): void;
  resolveDigest(
    registry: string,
    repository: string,
    tagOrDigest: string,
    ctx: RequestContext
  ): Promise<{ digest: string }>;
}

/** What the lookup needs from the signature verifier. */
export type Verifier = Pick<ImageVerifier, 'verify'>;

/** What the lookup needs from the cache: one loader that owns TTLs, negative entries and singleflight. */
export interface Loader {
  load<T>(
    key: string,
    loader: (signal: AbortSignal) => Promise<T>,
    policy: { ttlMs: number; staleMs?: number; negativeTtlMs?: number },
    options?: { signal?: AbortSignal }
  ): Promise<{ value: T; source: string }>;
  /** A fresh in-process value, synchronously, when there is one (CachedLoader.peekFresh). */
  peekFresh?<T>(key: string): { value: T } | undefined;
}

export interface LookupTimings {
  digestTtlMs: number;
  digestStaleMs: number;
  verdictTtlMs: number;
  negativeTtlMs: number;
  /** Bound for a shared registry load; each request still waits only until its own deadline. */
  loadTimeoutMs: number;
}

export interface LookupEvents {
  /** Called once per batch and result kind with the number of keys. */
  onLookup?(route: Route, result: 'ok' | 'error' | 'transient', count: number): void;
  onVerifySkipped?(): void;
}

export interface LookupServiceOptions {
  registry: DigestSource;
  loader: Loader;
  trust: TrustPolicy;
  verifier?: Verifier;
  timings: LookupTimings;
  /** Pull secrets differ per namespace, so digests resolved with them are cached per namespace. */
  namespacedCredentials: boolean;
  logger: Logger;
  events?: LookupEvents;
}

/** The verdict value of the verify routes (DESIGN.md section 3). */
export interface Verdict {
  digest: string;
  pinned: string;
  policy: string;
  mode: MatchedPolicy['mode'];
  verified: boolean;
  reason?: 'unchanged';
  signatures?: SignatureVerdict[];
  attestations?: AttestationVerdict[];
}

export interface LookupOutcome {
  items: ProviderItem[];
  /** Set when some keys failed transiently; those keys are left out of `items`. */
  systemError?: string;
}

type KeyResult = { $case: 'value'; value: unknown } | { $case: 'error'; error: SigpinError };

export class LookupService {
  readonly #o: LookupServiceOptions;

  constructor(options: LookupServiceOptions) {
    this.#o = options;
  }

  /** Answers one batch: keys run concurrently; definitive failures become item errors, transient ones a systemError. */
  async lookup(route: Route, keys: readonly string[], signal: AbortSignal): Promise<LookupOutcome> {
    const pending = keys.map((key) => this.#lookupKey(route, key, signal));
    // Cached keys are answered synchronously: a batch of hits needs no promise per key.
    const results = pending.some((r) => r instanceof Promise)
      ? await Promise.all(pending)
      : (pending as KeyResult[]);
    const items: ProviderItem[] = [];
    const transient: SigpinError[] = [];
    let errors = 0;
    results.forEach((result, i) => {
      const key = keys[i] as string;
      if (result.$case === 'value') {
        items.push({ key, value: result.value });
      } else if (result.error.transient) {
        transient.push(result.error);
      } else {
        errors++;
        items.push({ key, error: result.error.toWire() });
      }
    });
    const events = this.#o.events;
    if (events?.onLookup) {
      const ok = items.length - errors;
      if (ok > 0) events.onLookup(route, 'ok', ok);
      if (errors > 0) events.onLookup(route, 'error', errors);
      if (transient.length > 0) events.onLookup(route, 'transient', transient.length);
    }
    if (transient.length === 0) return { items };
    const first = transient[0] as SigpinError;
    const code = first.code === 'INTERNAL' ? 'INTERNAL' : 'REGISTRY_UNAVAILABLE';
    const more = transient.length > 1 ? ` (${transient.length} keys left out)` : ' (1 key left out)';
    return { items, systemError: `${code}: ${first.message}${more}` };
  }

  #lookupKey(route: Route, key: string, signal: AbortSignal): KeyResult | Promise<KeyResult> {
    const fail = (err: unknown): KeyResult => {
      const error = toSigpinError(err);
      if (error.code === 'INTERNAL') this.#o.logger.error({ err, route }, 'lookup failed unexpectedly');
      return { $case: 'error', error };
    };
    try {
      const parsed = this.#parse(key);
      const ctx: RequestContext = parsed.namespace ? { signal, namespace: parsed.namespace } : { signal };
      const value =
        route === 'resolve'
          ? this.#resolve(parsed.image, ctx)
          : route === 'mutate'
            ? this.#mutate(parsed.image, ctx)
            : this.#verify(parsed, ctx);
      return value instanceof Promise
        ? value.then((v: unknown): KeyResult => ({ $case: 'value', value: v }), fail)
        : { $case: 'value', value };
    } catch (err) {
      return fail(err);
    }
  }

  // The same keys come back again and again (every reconcile): parse each distinct key once. Parsed keys are
  // frozen; bounded, and a refused key throws before it is stored.
  readonly #parsed = new Map<string, LookupKey>();
  // Digest cache keys per parsed image (stable objects, see #parse), so a hit builds no string.
  readonly #digestKeys = new WeakMap<ImageReference, string>();

  #parse(key: string): LookupKey {
    let parsed = this.#parsed.get(key);
    if (parsed === undefined) {
      parsed = parseLookupKey(key);
      if (this.#parsed.size >= 10_000) this.#parsed.clear();
      this.#parsed.set(key, parsed);
    }
    return parsed;
  }

  /** The digest: from the reference, from a fresh cache entry at once, or from the registry (a promise). */
  #resolve(image: ImageReference, ctx: RequestContext): string | Promise<string> {
    this.#o.registry.assertAllowed(image.registry);
    if (image.digest) return image.digest;
    let cacheKey = this.#digestKeys.get(image);
    if (cacheKey === undefined) {
      cacheKey = `d:${canonicalReference(image)}`;
      this.#digestKeys.set(image, cacheKey);
    }
    if (this.#o.namespacedCredentials && ctx.namespace) cacheKey = `d:${ctx.namespace}/${cacheKey.slice(2)}`;
    const hit = this.#o.loader.peekFresh?.<string>(cacheKey);
    if (hit !== undefined) return hit.value;
    return this.#loadDigest(image, ctx, cacheKey);
  }

  async #loadDigest(image: ImageReference, ctx: RequestContext, cacheKey: string): Promise<string> {
    const { timings } = this.#o;
    const { value } = await withDeadline(
      this.#o.loader.load(
        cacheKey,
        async (shared) => {
          // The shared load has its own bound and stops early once every waiting request has given up.
          const own: RequestContext = {
            ...ctx,
            signal: AbortSignal.any([shared, AbortSignal.timeout(timings.loadTimeoutMs)]),
          };
          const { digest } = await this.#o.registry.resolveDigest(
            image.registry,
            image.repository,
            image.tag ?? 'latest',
            own
          );
          return digest;
        },
        { ttlMs: timings.digestTtlMs, staleMs: timings.digestStaleMs, negativeTtlMs: timings.negativeTtlMs },
        { signal: ctx.signal }
      ),
      ctx.signal
    );
    return value;
  }

  #policyFor(image: ImageReference): MatchedPolicy {
    const name = repositoryName(image);
    const policy = this.#o.trust.match(name);
    if (!policy) throw new SigpinError('NO_POLICY', `no trust policy matches ${name}`);
    return policy;
  }

  #mutate(image: ImageReference, ctx: RequestContext): string | Promise<string> {
    this.#o.registry.assertAllowed(image.registry);
    const policy = this.#policyFor(image);
    // Already pinned, or the policy forbids rewriting: the answer is the text itself (f(f(x)) == f(x)).
    if (image.digest || policy.mode === 'validate-only') return image.original;
    return andThen(this.#resolve(image, ctx), (digest) => pinnedImage(image, digest));
  }

  #verify(key: LookupKey, ctx: RequestContext): Verdict | Promise<Verdict> {
    this.#o.registry.assertAllowed(key.image.registry);
    const policy = this.#policyFor(key.image);
    return andThen(this.#resolve(key.image, ctx), (digest) => this.#verdict(key, policy, digest, ctx));
  }

  #verdict(
    key: LookupKey,
    policy: MatchedPolicy,
    digest: string,
    ctx: RequestContext
  ): Verdict | Promise<Verdict> {
    const { image, old } = key;
    const base = { digest, pinned: pinnedImage(image, digest), policy: policy.name, mode: policy.mode };
    if (!policy.verify) return { ...base, verified: false };
    // UPDATE skip (DESIGN.md 1.3): the old object ran this very digest from this very repository.
    if (old?.digest === digest && repositoryName(old) === repositoryName(image)) {
      this.#o.events?.onVerifySkipped?.();
      return { ...base, verified: true, reason: 'unchanged' };
    }
    const verifier = this.#o.verifier;
    if (!verifier) throw new SigpinError('UNTRUSTED', 'signature verification is not configured');
    const { timings } = this.#o;
    const toVerdict = (value: VerificationResult): Verdict => {
      const verdict: Verdict = { ...base, verified: true, signatures: value.signatures };
      if (value.attestations && value.attestations.length > 0) verdict.attestations = value.attestations;
      return verdict;
    };
    // Content-addressed and policy-bound, never by tag (GHSA-2r43-6962-xcw5).
    const cacheKey = `v:${repositoryName(image)}@${digest}:${policy.name}:${policy.fingerprint}`;
    const hit = this.#o.loader.peekFresh?.<VerificationResult>(cacheKey);
    if (hit !== undefined) return toVerdict(hit.value);
    return withDeadline(
      this.#o.loader.load(
        cacheKey,
        (shared) =>
          verifier.verify({
            registry: image.registry,
            repository: image.repository,
            digest,
            requirements: policy.requirements,
            ctx: { ...ctx, signal: AbortSignal.any([shared, AbortSignal.timeout(timings.loadTimeoutMs)]) },
          }),
        { ttlMs: timings.verdictTtlMs, negativeTtlMs: timings.negativeTtlMs },
        { signal: ctx.signal }
      ),
      ctx.signal
    ).then(({ value }) => toVerdict(value));
  }
}

/** Applies `f` at once to a ready value, or once a pending one settles: cached answers need no promise. */
function andThen<T, U>(value: T | Promise<T>, f: (v: T) => U | Promise<U>): U | Promise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}
