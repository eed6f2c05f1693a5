/**
 * Bearer tokens by (registry, realm, service, scope, credential identity), valid until issued_at + expires_in
 * minus a safety margin. Concurrent requests for the same key share one fetch.
 */

/** distribution token spec: expires_in defaults to 60 s and a shorter lifetime is treated as 60 s. */
export const MIN_TOKEN_LIFETIME_S = 60;
/** Tolerated difference between the token server's clock and ours before issued_at is ignored. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;
const MAX_ENTRIES = 1000;

export interface TokenGrant {
  token: string;
  expiresInSeconds?: number;
  /** RFC 3339 issue time from the token response. */
  issuedAt?: string;
}

/** When a token stops being used: issued + lifetime - margin (a quarter of the lifetime, at most 30 s). */
export function tokenExpiry(grant: TokenGrant, now = Date.now()): number {
  const lifetimeMs = Math.max(grant.expiresInSeconds ?? MIN_TOKEN_LIFETIME_S, MIN_TOKEN_LIFETIME_S) * 1000;
  const issued = grant.issuedAt ? Date.parse(grant.issuedAt) : Number.NaN;
  const start = Number.isNaN(issued) || Math.abs(issued - now) > MAX_CLOCK_SKEW_MS ? now : issued;
  return start + lifetimeMs - Math.min(30_000, lifetimeMs / 4);
}

export function tokenCacheKey(parts: {
  registry: string;
  realm: string;
  service: string;
  scope: string;
  identity: string;
}): string {
  return JSON.stringify([parts.registry, parts.realm, parts.service, parts.scope, parts.identity]);
}

export class TokenCache {
  readonly #entries = new Map<string, { token: string; expiresAt: number }>();
  readonly #inflight = new Map<string, Promise<string>>();

  /** A cached, unexpired token. */
  get(key: string, now = Date.now()): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > now) return entry.token;
    this.#entries.delete(key);
    return undefined;
  }

  /**
   * The cached token, or one fetched now (shared with concurrent callers). With `refresh`, a cached token
   * equal to `rejected` (the one the registry just refused) is not reused.
   */
  async getOrFetch(key: string, fetch: () => Promise<TokenGrant>, rejected?: string): Promise<string> {
    const cached = this.get(key);
    if (cached !== undefined && cached !== rejected) return cached;
    const running = this.#inflight.get(key);
    if (running) return running;
    const promise = (async () => {
      const grant = await fetch();
      this.#store(key, grant);
      return grant.token;
    })().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return promise;
  }

  #store(key: string, grant: TokenGrant): void {
    this.#entries.delete(key);
    if (this.#entries.size >= MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { token: grant.token, expiresAt: tokenExpiry(grant) });
  }

  clear(): void {
    this.#entries.clear();
  }
}
