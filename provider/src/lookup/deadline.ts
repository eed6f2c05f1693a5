import { SigpinError } from '../errors.ts';

/**
 * Waits for a shared promise (one load serves many requests through singleflight) but gives up when this
 * request's own deadline passes, without cancelling the load for the others.
 */
export function withDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(deadlineError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(deadlineError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      }
    );
  });
}

function deadlineError(): SigpinError {
  return new SigpinError('DEADLINE_EXCEEDED', 'the lookup did not finish within the route deadline');
}
