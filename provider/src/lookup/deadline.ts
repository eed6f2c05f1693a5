import { raceAbort } from '../abort.ts';
import { SigpinError } from '../errors.ts';

/**
 * Waits for a shared promise (one load serves many requests through singleflight) but gives up when this
 * request's own deadline passes, without cancelling the load for the others.
 */
export function withDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return raceAbort(
    promise,
    signal,
    () => new SigpinError('DEADLINE_EXCEEDED', 'the lookup did not finish within the route deadline')
  );
}
