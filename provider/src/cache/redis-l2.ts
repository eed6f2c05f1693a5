/**
 * L2 over Redis through the keyv Redis adapter (`@keyv/redis`), with the failure behaviour sigpin needs:
 * every operation is bounded by a short timeout, a failure marks the store unhealthy, and while it is unhealthy
 * operations are skipped (the caller falls back to L1) instead of queueing behind a dead connection.
 *
 * Reconnection is lazy and timer-free: the node-redis client does not reconnect by itself
 * (`reconnectStrategy: false`, whose retry sleeps cannot be cancelled by `close()`); instead a probe
 * (connect if needed, then PING) runs when an operation or `ready()` finds the store unhealthy, at most once
 * per `retryMs`. So nothing keeps the process alive after `close()`, and readiness polling (/readyz) is enough
 * to notice that Redis is back.
 *
 * The adapter is used directly rather than wrapped in `Keyv`: values are already strings (the signed envelope),
 * and the adapter alone prefixes keys once (`<namespace>::<key>`), see testing.md on doubled prefixes.
 */
import KeyvRedis, { createClient } from '@keyv/redis';
import type { Logger } from 'pino';

export interface RedisL2Options {
  url: string;
  namespace: string;
  timeoutMs: number;
  retryMs: number;
  connectTimeoutMs: number;
  logger: Logger;
  now: () => number;
}

export class L2TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`redis ${what} timed out after ${ms} ms`);
    this.name = 'L2TimeoutError';
  }
}

/** Where the client connects, for logs: never the URL itself (it may carry a password). */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(unparseable redis url)';
  }
}

export class RedisL2 {
  readonly #client: ReturnType<typeof createClient>;
  readonly #adapter: KeyvRedis<string>;
  readonly #options: RedisL2Options;
  readonly #target: string;
  #healthy = false;
  /** Bumped each time the store becomes healthy, so failures of older operations cannot undo a recovery. */
  #generation = 0;
  #closed = false;
  #nextProbeAt = 0;
  #probing: Promise<boolean> | undefined;

  private constructor(options: RedisL2Options) {
    this.#options = options;
    this.#target = describeRedisUrl(options.url);
    this.#client = createClient({
      url: options.url,
      // Fail commands at once while disconnected instead of queueing them for a reconnect that may never come.
      disableOfflineQueue: true,
      socket: { reconnectStrategy: false, connectTimeout: options.connectTimeoutMs },
    });
    // node-redis emits 'error' for every socket failure; without a listener the process would crash.
    this.#client.on('error', (err: unknown) => this.#markUnhealthy(err));
    this.#adapter = new KeyvRedis<string>(this.#client, {
      namespace: options.namespace,
      throwOnErrors: true,
    });
    this.#adapter.on('error', () => {
      // Already handled through the client listener and the rejected operation.
    });
  }

  /** Creates the store and tries to connect once; an unreachable Redis leaves it unhealthy, it does not throw. */
  static async open(options: RedisL2Options): Promise<RedisL2> {
    const store = new RedisL2(options);
    await store.probe();
    return store;
  }

  get healthy(): boolean {
    return this.#healthy && !this.#closed;
  }

  /**
   * Whether an operation should be attempted now. When the store is unhealthy this starts a background probe
   * (at most one per `retryMs`) and answers false, so callers never wait on a Redis that is known to be down.
   */
  available(): boolean {
    if (this.#closed) return false;
    if (this.#healthy) {
      if (this.#client.isReady) return true;
      this.#markUnhealthy(new Error('connection lost'));
    }
    if (this.#probing === undefined && this.#options.now() >= this.#nextProbeAt) void this.probe();
    return false;
  }

  get(key: string): Promise<string | undefined> {
    return this.#run('get', () => this.#adapter.get<string>(key));
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.#run('set', () => this.#adapter.set(key, value, ttlMs));
  }

  async delete(key: string): Promise<void> {
    await this.#run('delete', () => this.#adapter.delete(key));
  }

  /** Connects if needed and PINGs; updates and returns health. Concurrent callers share one probe. */
  probe(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#probing ??= this.#runProbe().finally(() => {
      this.#probing = undefined;
      this.#nextProbeAt = this.#options.now() + this.#options.retryMs;
    });
    return this.#probing;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#healthy = false;
    // destroy() closes the socket now; any pending command or connect attempt rejects (already handled).
    if (this.#client.isOpen) this.#client.destroy();
    await this.#probing;
  }

  async #runProbe(): Promise<boolean> {
    const { timeoutMs, connectTimeoutMs } = this.#options;
    try {
      if (!this.#client.isOpen) {
        await withTimeout(this.#client.connect(), connectTimeoutMs + timeoutMs, 'connect');
      }
      await withTimeout(this.#client.ping(), timeoutMs, 'ping');
      if (this.#closed) return false;
      if (!this.#healthy) {
        this.#options.logger.info({ redis: this.#target }, 'cache: redis L2 is reachable');
        this.#generation += 1;
      }
      this.#healthy = true;
      return true;
    } catch (err) {
      this.#markUnhealthy(err);
      return false;
    }
  }

  async #run<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const generation = this.#generation;
    try {
      return await withTimeout(operation(), this.#options.timeoutMs, what);
    } catch (err) {
      if (err instanceof L2TimeoutError) {
        // One slow reply is not an outage (a burst, a busy event loop): let a PING decide.
        void this.probe();
      } else if (generation === this.#generation) {
        this.#markUnhealthy(err);
      }
      throw err;
    }
  }

  #markUnhealthy(err: unknown): void {
    if (this.#closed) return;
    if (this.#healthy) {
      this.#options.logger.warn(
        { redis: this.#target, err },
        'cache: redis L2 is unavailable, answering from L1 until it is back'
      );
      this.#nextProbeAt = this.#options.now() + this.#options.retryMs;
    } else {
      this.#options.logger.debug({ redis: this.#target, err }, 'cache: redis L2 still unavailable');
    }
    this.#healthy = false;
  }
}

/**
 * Rejects when `promise` does not settle within `ms`; the timer is cleared either way and never holds the process.
 * The rejection waits one more event-loop turn (setImmediate runs after the poll phase): when the loop was blocked
 * past the deadline, a reply already sitting in the socket buffer still wins over the late timer.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let grace: NodeJS.Immediate | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      grace = setImmediate(() => reject(new L2TimeoutError(what, ms)));
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    if (grace !== undefined) clearImmediate(grace);
  }
}
