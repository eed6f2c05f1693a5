/**
 * The pieces of the distribution/reference grammar (reference.go, regexp.go), each checked on its own piece
 * of the input. No pattern spans the whole reference, and each has a single way to match, so a failing match
 * costs linear time whatever the input (JavaScript regexes backtrack; Go's do not, so its combined pattern
 * cannot be reused as is).
 */

/** Whole-reference limit: far above any real reference, low enough that every check stays cheap. */
export const MAX_REFERENCE_LENGTH = 4096;

/** reference.go RepositoryNameTotalLengthMax, applied to the normalized path as distribution does. */
export const MAX_PATH_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
// Zone identifiers and IPv4-mapped forms are excluded on purpose, as in distribution.
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$/;
const DIGEST_HEX = /^[0-9a-fA-F]{32,}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
// A bare image ID: docker treats it as an identifier, never as a repository name.
const IMAGE_ID = /^[a-f0-9]{64}$/;

export function isPathComponent(text: string): boolean {
  return PATH_COMPONENT.test(text);
}

/** `host[:port]` where host is a DNS-like name, an IPv4 address or a bracketed IPv6 address. */
export function isDomain(text: string): boolean {
  const portAt = text.startsWith('[') ? text.indexOf(']') + 1 : text.indexOf(':');
  if (portAt === 0) return false;
  const host = portAt < 0 ? text : text.slice(0, portAt);
  const rest = portAt < 0 ? '' : text.slice(portAt);
  if (rest !== '' && !(rest.startsWith(':') && PORT.test(rest.slice(1)))) return false;
  if (host.startsWith('[')) return IPV6_HOST.test(host);
  return host.split('.').every((component) => DOMAIN_COMPONENT.test(component));
}

export function isTag(text: string): boolean {
  return TAG.test(text);
}

/** Any digest the grammar accepts (`algorithm:hex{32,}`), whether or not sigpin supports its algorithm. */
export function isGrammarDigest(text: string): boolean {
  const colon = text.indexOf(':');
  return colon > 0 && DIGEST_ALGORITHM.test(text.slice(0, colon)) && DIGEST_HEX.test(text.slice(colon + 1));
}

/** The only digest form sigpin resolves to and pins: `sha256:` and exactly 64 lowercase hex characters. */
export function isSha256Digest(text: string): boolean {
  return SHA256_DIGEST.test(text);
}

export function isImageId(text: string): boolean {
  return IMAGE_ID.test(text);
}
