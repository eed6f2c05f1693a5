/** Bounds concurrent work per key (per registry), so one slow registry cannot absorb every socket and request. */

interface Slot {
  active: number;
  waiting: Array<() => void>;
}

export class KeyedLimiter {
  readonly #max: number;
  readonly #slots = new Map<string, Slot>();

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`concurrency must be a positive integer: ${max}`);
    this.#max = max;
  }

  /** Runs `fn` once fewer than `max` calls for `key` are running; gives up waiting when `signal` aborts. */
  async run<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const slot = this.#slots.get(key) ?? { active: 0, waiting: [] };
    this.#slots.set(key, slot);
    if (slot.active >= this.#max) await this.#wait(slot, signal);
    else slot.active++;
    try {
      return await fn();
    } finally {
      const next = slot.waiting.shift();
      if (next)
        next(); // hand the slot over without releasing it
      else if (--slot.active === 0) this.#slots.delete(key);
    }
  }

  #wait(slot: Slot, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = slot.waiting.indexOf(grant);
        if (i >= 0) slot.waiting.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      slot.waiting.push(grant);
    });
  }
}
