import assert from 'node:assert/strict';

import { SigpinError } from '../../provider/src/errors.ts';

/** Asserts `fn` throws SigpinError('INVALID_REFERENCE') whose message matches `message`; returns the error. */
export function assertInvalidReference(fn: () => unknown, message: RegExp): SigpinError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof SigpinError, `expected a SigpinError, got ${String(thrown)}`);
  assert.equal(thrown.code, 'INVALID_REFERENCE');
  assert.match(thrown.message, message);
  return thrown;
}
