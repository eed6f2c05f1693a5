/**
 * Registry authentication: anonymous, Basic, and Bearer tokens from the realm named by the registry's 401
 * challenge (distribution token spec). What a registry wants is learned from its first challenge, so later
 * requests authenticate up front and cost one round trip. Tokens are cached (TokenCache); credentials and
 * tokens are never logged.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { SigpinError } from '../errors.ts';
import { parseHostPort } from './address-policy.ts';
import type { AddressPolicy, HostPort, Permission } from './address-policy.ts';
import { parseChallenges } from './challenge.ts';
import { DOCKER_HUB, DOCKER_HUB_AUTH_HOST, MAX_TOKEN_RESPONSE_BYTES } from './constants.ts';
import { credentialIdentity } from './credentials.ts';
import type { Credential } from './credentials.ts';
import { tokenCacheKey } from './token-cache.ts';
import type { TokenCache, TokenGrant } from './token-cache.ts';
import { isRetryableStatus } from './transport.ts';
import type { Transport } from './transport.ts';

type AuthHint = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service: string };

/** Everything authentication needs about the request being made. */
export interface AuthTarget {
  registry: string;
  dial: HostPort;
  /** http or https, as used for the registry. */
  protocol: 'http:' | 'https:';
  permission: Permission;
  credential: Credential | undefined;
  signal: AbortSignal;
  callerSignal: AbortSignal;
  deadlineAt: number;
}

const tokenResponseSchema = z.object({
  token: z.string().min(1).optional(),
  access_token: z.string().min(1).optional(),
  expires_in: z.number().optional(),
  issued_at: z.string().optional(),
});

export class Authenticator {
  readonly #policy: AddressPolicy;
  readonly #transport: Transport;
  readonly #tokens: TokenCache;
  readonly #logger: Logger;
  readonly #hints = new Map<string, AuthHint>();

  constructor(options: { policy: AddressPolicy; transport: Transport; tokens: TokenCache; logger: Logger }) {
    this.#policy = options.policy;
    this.#transport = options.transport;
    this.#tokens = options.tokens;
    this.#logger = options.logger;
  }

  /**
   * The Authorization header for a request with `scope`, from what the registry asked for before; undefined
   * when nothing is known yet or nothing applies (anonymous). `rejected` is a header the registry just refused.
   */
  async header(target: AuthTarget, scope: string, rejected?: string): Promise<string | undefined> {
    const hint = this.#hints.get(target.registry);
    const { credential } = target;
    if (!hint) return undefined;
    if (hint.scheme === 'basic') {
      if (credential?.username === undefined || credential.password === undefined) return undefined;
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    }
    if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
    const key = tokenCacheKey({
      registry: target.registry,
      realm: hint.realm,
      service: hint.service,
      scope,
      identity: credentialIdentity(credential),
    });
    const rejectedToken = rejected?.startsWith('Bearer ') ? rejected.slice(7) : undefined;
    const token = await this.#tokens.getOrFetch(
      key,
      () => this.#fetchToken(target, hint, scope),
      rejectedToken
    );
    return `Bearer ${token}`;
  }

  /**
   * Learns from a 401's WWW-Authenticate. Returns the scope the registry asked for (if any), or throws
   * UNAUTHORIZED when the challenge is unusable.
   */
  learn(target: AuthTarget, wwwAuthenticate: string | undefined): { scope?: string } {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      this.#hints.set(target.registry, {
        scheme: 'bearer',
        realm: bearer.params.realm ?? '',
        service: bearer.params.service ?? '',
      });
      return bearer.params.scope ? { scope: bearer.params.scope } : {};
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.#hints.set(target.registry, { scheme: 'basic' });
      return {};
    }
    throw new SigpinError('UNAUTHORIZED', `${target.registry} requires an unsupported authentication scheme`);
  }

  /** May the token realm be contacted, and as what? Same host as the registry, docker.io's auth host, or allowed. */
  #realmPermission(target: AuthTarget, realm: URL): Permission {
    const realmHost = parseHostPort(realm.host);
    if (realmHost.host === target.dial.host) return target.permission;
    if (
      target.registry === DOCKER_HUB &&
      realmHost.host === DOCKER_HUB_AUTH_HOST &&
      realm.protocol === 'https:'
    ) {
      return { allowed: true, explicit: false };
    }
    return this.#policy.permission(realmHost);
  }

  async #fetchToken(
    target: AuthTarget,
    hint: { realm: string; service: string },
    scope: string
  ): Promise<TokenGrant> {
    let realm: URL;
    try {
      realm = new URL(hint.realm);
    } catch {
      throw new SigpinError('UNAUTHORIZED', `${target.registry} named an invalid token realm`);
    }
    const permission = this.#realmPermission(target, realm);
    if (!permission.allowed) {
      throw new SigpinError(
        'NOT_ALLOWED',
        `token realm host ${realm.host} of ${target.registry} is not allowed`
      );
    }
    const sameHost = parseHostPort(realm.host).host === target.dial.host;
    const plainOk =
      this.#policy.isInsecure(parseHostPort(realm.host)) || (sameHost && target.protocol === 'http:');
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && plainOk)) {
      throw new SigpinError('NOT_ALLOWED', `token realm of ${target.registry} is not https`);
    }

    const { credential } = target;
    const headers: Record<string, string> = { Accept: 'application/json' };
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    const url = new URL(realm);
    if (credential?.identityToken) {
      // OAuth2 refresh-token grant (distribution oauth.md), as docker does for identity tokens
      method = 'POST';
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credential.identityToken,
        service: hint.service,
        scope,
        client_id: 'sigpin',
      }).toString();
    } else {
      if (hint.service) url.searchParams.set('service', hint.service);
      for (const one of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', one);
      if (credential?.username !== undefined && credential.password !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      }
    }
    const res = await this.#transport.send({
      registry: target.registry,
      method,
      url,
      headers,
      ...(body === undefined ? {} : { body }),
      maxBytes: MAX_TOKEN_RESPONSE_BYTES,
      permission,
      signal: target.signal,
      callerSignal: target.callerSignal,
      deadlineAt: target.deadlineAt,
    });
    if (res.status !== 200) {
      if (isRetryableStatus(res.status)) {
        throw new SigpinError(
          'REGISTRY_UNAVAILABLE',
          `token server of ${target.registry} answered ${res.status}`
        );
      }
      throw new SigpinError('UNAUTHORIZED', `token server of ${target.registry} refused (${res.status})`);
    }
    let parsed: z.infer<typeof tokenResponseSchema>;
    try {
      parsed = tokenResponseSchema.parse(JSON.parse(res.body.toString('utf8')));
    } catch {
      throw new SigpinError(
        'REGISTRY_UNAVAILABLE',
        `token server of ${target.registry} sent an invalid response`
      );
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token)
      throw new SigpinError('REGISTRY_UNAVAILABLE', `token server of ${target.registry} sent no token`);
    this.#logger.debug(
      { registry: target.registry, scope, expiresIn: parsed.expires_in },
      'registry token issued'
    );
    return {
      token,
      ...(parsed.expires_in === undefined ? {} : { expiresInSeconds: parsed.expires_in }),
      ...(parsed.issued_at === undefined ? {} : { issuedAt: parsed.issued_at }),
    };
  }
}
