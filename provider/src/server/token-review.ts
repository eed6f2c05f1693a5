import { createHash } from 'node:crypto';
import type { Logger } from 'pino';

/**
 * Kyverno (1.18+) sends `Authorization: Bearer <audience-scoped service account token>` on apiCalls. When enabled
 * the provider asks the API server whether the token is valid for its audience (TokenReview) and caches the answer
 * briefly under a hash of the token (the token itself is never stored or logged).
 */
export type TokenReviewer = (
  token: string,
  audience: string
) => Promise<{ authenticated: boolean; username?: string }>;

export interface BearerAuthOptions {
  review: TokenReviewer;
  audience: string;
  /** Token users accepted (a token for the audience can be requested by any ServiceAccount); empty = any. */
  usernames?: readonly string[];
  cacheTtlMs: number;
  logger: Logger;
  now?: () => number;
}

export class BearerAuthenticator {
  readonly #o: BearerAuthOptions;
  readonly #cache = new Map<string, { ok: boolean; expiresAt: number }>();

  constructor(options: BearerAuthOptions) {
    this.#o = options;
  }

  /** Returns undefined when the request may proceed, or an HTTP status and message. */
  async check(
    authorization: string | undefined
  ): Promise<{ status: 401 | 503; message: string } | undefined> {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{10,8192})$/.exec(authorization ?? '');
    if (!match) return { status: 401, message: 'a bearer token is required' };
    const token = match[1] as string;
    const id = createHash('sha256').update(token).digest('hex');
    const now = (this.#o.now ?? Date.now)();
    const cached = this.#cache.get(id);
    if (cached && cached.expiresAt > now)
      return cached.ok ? undefined : { status: 401, message: 'token not accepted' };
    let ok: boolean;
    try {
      const result = await this.#o.review(token, this.#o.audience);
      const allowed = this.#o.usernames ?? [];
      ok = result.authenticated && (allowed.length === 0 || allowed.includes(result.username ?? ''));
      this.#o.logger.debug({ user: result.username, authenticated: ok }, 'token reviewed');
    } catch (err) {
      this.#o.logger.warn({ err: { message: (err as Error).message } }, 'TokenReview failed');
      return { status: 503, message: 'token review unavailable' };
    }
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(id, { ok, expiresAt: now + this.#o.cacheTtlMs });
    return ok ? undefined : { status: 401, message: 'token not accepted' };
  }
}

/** A TokenReviewer backed by the Kubernetes API (`authentication.k8s.io/v1`). */
export async function kubernetesTokenReviewer(kubeconfigFile?: string): Promise<TokenReviewer> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (kubeconfigFile) kc.loadFromFile(kubeconfigFile);
  else kc.loadFromDefault();
  const api = kc.makeApiClient(k8s.AuthenticationV1Api);
  return async (token, audience) => {
    const review = await api.createTokenReview({
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [audience] },
      },
    });
    const status = review.status;
    const authenticated =
      status?.authenticated === true && (status.audiences ?? [audience]).includes(audience);
    return status?.user?.username ? { authenticated, username: status.user.username } : { authenticated };
  };
}
