import { SigpinError } from '../errors.ts';
import { MAX_REFERENCE_LENGTH } from './grammar.ts';
import { parseReference, quote } from './reference.ts';
import type { ImageReference } from './reference.ts';

/**
 * A lookup key: an image reference, optionally preceded by context that Gatekeeper (whose keys are plain
 * strings) cannot pass otherwise: `[ns=<namespace>,old=<image>]<image>` (DESIGN.md section 3).
 */
export interface LookupKey {
  /** The key exactly as received; responses are keyed by it. */
  readonly key: string;
  readonly image: ImageReference;
  /** Namespace whose pull secrets apply. */
  readonly namespace?: string;
  /** The old object's image on UPDATE: when it pins the digest the key resolves to, verification is skipped. */
  readonly old?: ImageReference;
}

export interface LookupKeyParts {
  readonly namespace?: string;
  readonly old?: string;
  readonly image: string;
}

// Only these openings mark a prefix, so `[::1]:5000/app` stays a plain image.
const PREFIX_OPENINGS = ['[ns=', '[old='];
// Kubernetes namespace names are DNS-1123 labels.
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const MAX_NAMESPACE_LENGTH = 63;
const MAX_PREFIX_OVERHEAD = '[ns=,old=]'.length + MAX_NAMESPACE_LENGTH;
export const MAX_LOOKUP_KEY_LENGTH = 2 * MAX_REFERENCE_LENGTH + MAX_PREFIX_OVERHEAD;

/** Throws SigpinError('INVALID_REFERENCE') on a malformed prefix or an invalid image in it or after it. */
export function parseLookupKey(key: string): LookupKey {
  if (typeof key !== 'string') throw invalid(`<${typeof key}>`, 'is not a string');
  if (!PREFIX_OPENINGS.some((opening) => key.startsWith(opening))) {
    return Object.freeze({ key, image: parseReference(key) });
  }
  if (key.length > MAX_LOOKUP_KEY_LENGTH) {
    throw invalid(key, `is longer than ${MAX_LOOKUP_KEY_LENGTH} characters`);
  }
  // Neither field may contain ']', so the first one closes the prefix.
  const end = key.indexOf(']');
  if (end < 0) throw invalid(key, "has a prefix with no closing ']'");

  let namespace: string | undefined;
  let old: ImageReference | undefined;
  for (const field of key.slice(1, end).split(',')) {
    const eq = field.indexOf('=');
    const name = eq < 0 ? field : field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'ns' && eq > 0) {
      if (namespace !== undefined) throw invalid(key, 'repeats ns=');
      if (!isNamespace(value)) throw invalid(key, `has an invalid namespace ${quote(value)}`);
      namespace = value;
    } else if (name === 'old' && eq > 0) {
      if (old !== undefined) throw invalid(key, 'repeats old=');
      old = parsePart(key, 'old image', value);
    } else {
      throw invalid(
        key,
        `has an unknown prefix field ${quote(field)} (expected ns=<namespace> or old=<image>)`
      );
    }
  }
  const image = parsePart(key, 'image', key.slice(end + 1));
  return Object.freeze({
    key,
    image,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(old !== undefined ? { old } : {}),
  });
}

/** Builds a key that parseLookupKey accepts, or throws SigpinError('INVALID_REFERENCE') if none exists. */
export function formatLookupKey(parts: LookupKeyParts): string {
  const { namespace, old, image } = parts;
  const fields: string[] = [];
  if (namespace !== undefined) {
    if (!isNamespace(namespace)) {
      throw new SigpinError(
        'INVALID_REFERENCE',
        `namespace ${quote(namespace)} is not a valid namespace name`
      );
    }
    fields.push(`ns=${namespace}`);
  }
  if (old !== undefined) {
    parseReference(old);
    // A valid reference has no ',' but may have ']' (an IPv6 host), which would end the prefix early.
    if (old.includes(']')) {
      throw new SigpinError(
        'INVALID_REFERENCE',
        `old image ${quote(old)} cannot go in a key prefix (has ']')`
      );
    }
    fields.push(`old=${old}`);
  }
  parseReference(image);
  return fields.length === 0 ? image : `[${fields.join(',')}]${image}`;
}

function isNamespace(text: string): boolean {
  return text.length <= MAX_NAMESPACE_LENGTH && NAMESPACE.test(text);
}

function parsePart(key: string, what: string, text: string): ImageReference {
  try {
    return parseReference(text);
  } catch (err) {
    if (!(err instanceof SigpinError)) throw err;
    throw invalid(key, `has an invalid ${what}: ${err.message}`, err);
  }
}

function invalid(key: string, reason: string, cause?: SigpinError): SigpinError {
  return new SigpinError('INVALID_REFERENCE', `lookup key ${quote(key)} ${reason}`, cause && { cause });
}
