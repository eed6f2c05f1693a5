/**
 * Coded errors shared by every module. The code is the stable prefix of a per-key error string
 * (DESIGN.md section 3); `transient` decides whether it becomes an item error (cached by Gatekeeper)
 * or a `systemError` with the key left out (never cached anywhere).
 */
export const DEFINITIVE_CODES = [
  'INVALID_REFERENCE',
  'NOT_FOUND',
  'NOT_ALLOWED',
  'UNAUTHORIZED',
  'NO_POLICY',
  'UNSIGNED',
  'UNTRUSTED',
  'ATTESTATION_MISSING',
] as const;

export const TRANSIENT_CODES = ['REGISTRY_UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL'] as const;

export type DefinitiveCode = (typeof DEFINITIVE_CODES)[number];
export type TransientCode = (typeof TRANSIENT_CODES)[number];
export type ErrorCode = DefinitiveCode | TransientCode;

const TRANSIENT = new Set<string>(TRANSIENT_CODES);

export function isTransient(code: ErrorCode): boolean {
  return TRANSIENT.has(code);
}

export class SigpinError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SigpinError';
    this.code = code;
  }

  get transient(): boolean {
    return isTransient(this.code);
  }

  /** The wire form: `CODE: message`. */
  toWire(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isSigpinError(err: unknown): err is SigpinError {
  return err instanceof SigpinError;
}

/** Normalises anything thrown into a SigpinError; unknown failures are transient so they are never cached. */
export function toSigpinError(err: unknown): SigpinError {
  if (isSigpinError(err)) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new SigpinError('DEADLINE_EXCEEDED', 'deadline exceeded', { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new SigpinError('INTERNAL', message, { cause: err });
}
