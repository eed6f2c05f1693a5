/**
 * Per-process deduplication of identical concurrent work (DESIGN.md section 7): while a call for a key is in
 * flight, later callers for the same key wait for it instead of starting their own. Every waiter gets the same
 * result or the same error, and nothing is kept once it settles (the next call starts afresh).
 *
 * Cancellation: the work receives an AbortSignal that fires only when every waiter has given up (each passed a
 * signal and each one aborted), so one impatient caller never cancels work others still wait for. A caller
 * without a signal waits for as long as the work takes.
 */
import { raceAbort } from '../abort.ts';

interface Flight {
  readonly promise: Promise<unknown>;
  readonly controller: AbortController;
  /** Waiters that can still give up; Infinity once a waiter without a signal joined. */
  cancellable: number;
  settled: boolean;
}

export class Singleflight {
  readonly #flights = new Map<string, Flight>();

  /** Keys with work in flight right now. */
  get size(): number {
    return this.#flights.size;
  }

  has(key: string): boolean {
    return this.#flights.has(key);
  }

  /**
   * Runs `work` for `key` unless a call for `key` is already in flight, then waits for that one.
   * `signal` aborts this caller's wait (rejecting with the signal's reason) without affecting other waiters.
   */
  do<T>(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    let flight = this.#flights.get(key);
    if (flight === undefined) flight = this.#start(key, work);
    // The flight for a key runs one function; a caller joining it gets that function's result type.
    const promise = flight.promise as Promise<T>;
    if (signal === undefined) {
      flight.cancellable = Infinity;
      return promise;
    }
    flight.cancellable += 1;
    return this.#waitOrGiveUp(key, flight, promise, signal);
  }

  #start<T>(key: string, work: (signal: AbortSignal) => Promise<T>): Flight {
    const controller = new AbortController();
    // Start the work on a later microtask so a synchronous throw becomes a rejection like any other failure.
    const promise = Promise.resolve()
      .then(() => work(controller.signal))
      .finally(() => {
        flight.settled = true;
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      });
    const flight: Flight = { promise, controller, cancellable: 0, settled: false };
    this.#flights.set(key, flight);
    return flight;
  }

  #waitOrGiveUp<T>(key: string, flight: Flight, promise: Promise<T>, signal: AbortSignal): Promise<T> {
    return raceAbort(promise, signal, () => {
      flight.cancellable -= 1;
      if (flight.cancellable <= 0 && !flight.settled) {
        // Nobody is waiting any more: cancel the work, and let the next caller start a fresh one.
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
        flight.controller.abort(signal.reason);
      }
      return signal.reason;
    });
  }
}
