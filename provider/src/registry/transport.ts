/**
 * HTTP for the registry client: keep-alive undici agents, the SSRF guard on every hop (literal addresses before
 * connecting, resolved addresses in the agent's lookup), manual redirects that never carry `Authorization` to
 * another origin, per-registry concurrency, retries of 408/429/5xx and network errors within the deadline
 * (honouring Retry-After), and size-bounded bodies.
 */
import { rootCertificates } from 'node:tls';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { SigpinError } from '../errors.ts';
import { AddressNotAllowedError, guardedLookup, isSpecialAddress, parseHostPort } from './address-policy.ts';
import type { AddressPolicy, Permission } from './address-policy.ts';
import { MAX_REDIRECTS, MAX_RETRY_AFTER_MS } from './constants.ts';
import { KeyedLimiter } from './limiter.ts';

export interface RequestEvent {
  registry: string;
  method: string;
  status: number | 'error';
  durationMs: number;
}

export interface TransportOptions {
  policy: AddressPolicy;
  timeoutMs: number;
  maxConcurrencyPerRegistry: number;
  maxRetries: number;
  /** Extra CA certificates (PEM) trusted for registries, on top of the system roots. */
  ca?: string;
  logger: Logger;
  onRequest?: (e: RequestEvent) => void;
}

export interface TransportRequest {
  /** Canonical registry name: the concurrency and metrics key. */
  registry: string;
  method: 'GET' | 'HEAD' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** Largest body accepted; larger responses fail. */
  maxBytes: number;
  /** What the allowlist said about the first URL's host. */
  permission: Permission;
  /** Aborts on the caller's deadline or our own timeout. */
  signal: AbortSignal;
  /** The caller's own signal, to tell its deadline from our timeout. */
  callerSignal: AbortSignal;
  /** Epoch ms when our own timeout ends: no retry is started that would wait past it. */
  deadlineAt: number;
}

export interface TransportResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Transient failures that another attempt cannot fix (oversized body, our own timeout already spent). */
const NOT_RETRYABLE = new WeakSet<SigpinError>();
function final(err: SigpinError): SigpinError {
  NOT_RETRYABLE.add(err);
  return err;
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function headerValue(headers: TransportResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Retry-After as milliseconds from now (delta-seconds or HTTP-date), undefined when absent or unparseable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function hasCause(err: unknown, predicate: (e: unknown) => boolean): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 8; depth++) {
    if (predicate(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export class Transport {
  readonly #options: TransportOptions;
  /** Connects to public addresses only (names resolved through the guard). */
  readonly #publicAgent: Agent;
  /** For explicitly allowed hosts, which may be loopback or private. */
  readonly #explicitAgent: Agent;
  readonly #limiter: KeyedLimiter;

  constructor(options: TransportOptions) {
    this.#options = options;
    const common = {
      keepAliveTimeout: 30_000,
      connections: options.maxConcurrencyPerRegistry,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    };
    // A private CA is added to the system roots, never instead of them: public registries keep working.
    const ca = options.ca ? { ca: [...rootCertificates, options.ca] } : {};
    this.#publicAgent = new Agent({
      ...common,
      connect: { lookup: guardedLookup, timeout: options.timeoutMs, ...ca },
    });
    this.#explicitAgent = new Agent({ ...common, connect: { timeout: options.timeoutMs, ...ca } });
    this.#limiter = new KeyedLimiter(options.maxConcurrencyPerRegistry);
  }

  async close(): Promise<void> {
    await Promise.all([this.#publicAgent.close(), this.#explicitAgent.close()]);
  }

  /**
   * Sends a request with retries. Returns the final response whatever its status (the caller maps statuses);
   * throws SigpinError for refused addresses, network failures after retries, deadlines and oversized bodies.
   */
  async send(request: TransportRequest): Promise<TransportResponse> {
    const { maxRetries, logger } = this.#options;
    for (let attempt = 0; ; attempt++) {
      let response: TransportResponse | undefined;
      let failure: SigpinError | undefined;
      try {
        response = await this.#limiter.run(request.registry, request.signal, () =>
          this.#followRedirects(request)
        );
      } catch (err) {
        failure = this.#toError(err, request);
        if (failure.code !== 'REGISTRY_UNAVAILABLE' || NOT_RETRYABLE.has(failure)) throw failure;
      }
      if (response && !isRetryableStatus(response.status)) return response;
      if (attempt >= maxRetries) {
        if (response) return response;
        throw failure;
      }
      const wait = this.#backoff(attempt, response);
      if (wait === undefined || Date.now() + wait >= request.deadlineAt) {
        if (response) return response;
        throw failure;
      }
      logger.debug(
        {
          registry: request.registry,
          status: response?.status ?? 'error',
          attempt: attempt + 1,
          waitMs: wait,
        },
        'retrying registry request'
      );
      try {
        await sleep(wait, undefined, { signal: request.signal });
      } catch (err) {
        throw this.#toError(err, request);
      }
    }
  }

  /** Milliseconds to wait before the next attempt, or undefined when the deadline does not leave enough time. */
  #backoff(attempt: number, response: TransportResponse | undefined): number | undefined {
    const retryAfter = response ? parseRetryAfter(headerValue(response.headers, 'retry-after')) : undefined;
    if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_MS) return undefined;
    const exponential = Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
    return retryAfter ?? exponential;
  }

  async #followRedirects(request: TransportRequest): Promise<TransportResponse> {
    let url = request.url;
    let permission = request.permission;
    let headers = request.headers;
    for (let hop = 0; ; hop++) {
      const response = await this.#once(request, url, headers, permission);
      if (!REDIRECTS.has(response.status) || request.method === 'POST') return response;
      const location = headerValue(response.headers, 'location');
      if (!location) return response;
      if (hop >= MAX_REDIRECTS) {
        throw final(new SigpinError('REGISTRY_UNAVAILABLE', `too many redirects from ${request.url.host}`));
      }
      const next = new URL(location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new SigpinError('NOT_ALLOWED', `redirect to a ${next.protocol} URL`);
      }
      if (next.origin !== url.origin) {
        // another origin never sees our credentials (distribution-spec "API"; sigstore-js securedFetch)
        headers = Object.fromEntries(
          Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization')
        );
        const target = this.#options.policy.permission(parseHostPort(next.host));
        // blob storage hosts (CDNs) need not be listed, but then they must be public addresses
        permission = target.allowed ? target : { allowed: true, explicit: false };
        if (
          next.protocol === 'http:' &&
          url.protocol === 'https:' &&
          !this.#options.policy.isInsecure(next.host)
        ) {
          throw new SigpinError('NOT_ALLOWED', `redirect from https to plain http (${next.host})`);
        }
      }
      url = next;
    }
  }

  /** One HTTP exchange: address check, request, size-bounded body. */
  async #once(
    request: TransportRequest,
    url: URL,
    headers: Record<string, string>,
    permission: Permission
  ): Promise<TransportResponse> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!permission.explicit && isIP(host) && isSpecialAddress(host)) {
      throw new SigpinError('NOT_ALLOWED', `address ${host} is not allowed (not listed explicitly)`);
    }
    const agent = permission.explicit ? this.#explicitAgent : this.#publicAgent;
    const started = performance.now();
    const { logger, onRequest } = this.#options;
    let status: number | 'error' = 'error';
    try {
      const options: Dispatcher.RequestOptions = {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers,
        signal: request.signal,
        ...(request.body === undefined ? {} : { body: request.body }),
      };
      const res = await agent.request(options);
      status = res.statusCode;
      const body = await readBounded(res, request.method, request.maxBytes, url);
      return { status: res.statusCode, headers: res.headers, body, url };
    } finally {
      const durationMs = performance.now() - started;
      logger.debug(
        {
          registry: request.registry,
          method: request.method,
          host: url.host,
          path: url.pathname,
          status,
          durationMs,
        },
        'registry request'
      );
      onRequest?.({ registry: request.registry, method: request.method, status, durationMs });
    }
  }

  #toError(err: unknown, request: TransportRequest): SigpinError {
    if (request.callerSignal.aborted) {
      return new SigpinError('DEADLINE_EXCEEDED', `deadline exceeded talking to ${request.registry}`, {
        cause: err,
      });
    }
    if (err instanceof SigpinError) return err;
    if (hasCause(err, (e) => e instanceof AddressNotAllowedError)) {
      return new SigpinError('NOT_ALLOWED', `${request.url.hostname}: address not allowed`, { cause: err });
    }
    if (request.signal.aborted) {
      return final(new SigpinError('REGISTRY_UNAVAILABLE', `${request.registry} timed out`, { cause: err }));
    }
    const code = (err as { code?: unknown }).code;
    const detail = typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
    return new SigpinError('REGISTRY_UNAVAILABLE', `${request.registry} unreachable (${detail})`, {
      cause: err,
    });
  }
}

/** Reads a body up to `maxBytes`, checking Content-Length so a truncated body is an error, not short data. */
async function readBounded(
  res: Dispatcher.ResponseData,
  method: string,
  maxBytes: number,
  url: URL
): Promise<Buffer> {
  if (method === 'HEAD' || REDIRECTS.has(res.statusCode) || res.statusCode >= 300) {
    // error and redirect bodies are not used: drain a little so the connection can be reused
    await res.body.dump({ limit: 64 * 1024 });
    return Buffer.alloc(0);
  }
  const declared = headerValue(res.headers, 'content-length');
  const expected = declared === undefined ? undefined : Number(declared);
  if (expected !== undefined && expected > maxBytes) {
    discard(res.body);
    throw final(
      new SigpinError('REGISTRY_UNAVAILABLE', `response from ${url.host} too large (${expected} bytes)`)
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > maxBytes) {
      discard(res.body);
      throw final(
        new SigpinError('REGISTRY_UNAVAILABLE', `response from ${url.host} exceeds ${maxBytes} bytes`)
      );
    }
    chunks.push(buf);
  }
  if (expected !== undefined && total !== expected) {
    throw new SigpinError(
      'REGISTRY_UNAVAILABLE',
      `truncated response from ${url.host} (${total}/${expected} bytes)`
    );
  }
  return Buffer.concat(chunks, total);
}

/** Abandons a body we will not read; undici reports the abort as a stream error, which nobody needs to see. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}
