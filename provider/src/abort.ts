/**
 * Waits for a promise that this caller does not own (shared work, a cached lookup) but stops waiting when the
 * caller's signal aborts, without cancelling the work for anyone else. `onAbort` runs once when that happens and
 * returns the rejection reason (default: the signal's reason).
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, onAbort?: () => unknown): Promise<T> {
  const reason = (): unknown => (onAbort ? onAbort() : signal.reason);
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(reason());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      }
    );
  });
}
