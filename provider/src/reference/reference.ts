import { SigpinError } from '../errors.ts';
import {
  MAX_PATH_LENGTH,
  MAX_REFERENCE_LENGTH,
  isDomain,
  isGrammarDigest,
  isImageId,
  isPathComponent,
  isSha256Digest,
  isTag,
} from './grammar.ts';

/**
 * A container image reference parsed by the distribution/reference grammar and normalized the way
 * kubelet/containerd do (`ParseDockerRef`), so sigpin resolves exactly the image the node would pull.
 */
export interface ImageReference {
  /** Exactly the text given; pinning appends to it so the user's spelling and tag survive. */
  readonly original: string;
  /** Normalized `host[:port]`, e.g. `docker.io`, `ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Normalized path, e.g. `library/nginx`. */
  readonly repository: string;
  /** The explicit tag; `latest` when neither a tag nor a digest was given. */
  readonly tag?: string;
  /** `sha256:<64 lowercase hex>`; when both are present the digest, not the tag, is what gets resolved. */
  readonly digest?: string;
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_LEGACY = 'index.docker.io';
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const OFFICIAL_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';

/** Throws SigpinError('INVALID_REFERENCE') unless `text` is a valid image reference. */
export function parseReference(text: string): ImageReference {
  if (typeof text !== 'string') throw invalid(`<${typeof text}>`, 'is not a string');
  if (text === '') throw invalid(text, 'is empty');
  if (text.length > MAX_REFERENCE_LENGTH) {
    throw invalid(text, `is longer than ${MAX_REFERENCE_LENGTH} characters`);
  }
  if (isImageId(text)) throw invalid(text, 'is a 64-hex image ID, not a repository name');

  // Neither the name nor the tag may contain '@', and a tag may contain neither ':' nor '/'.
  const at = text.indexOf('@');
  const nameAndTag = at < 0 ? text : text.slice(0, at);
  const digest = at < 0 ? undefined : checkDigest(text, text.slice(at + 1));
  const colon = nameAndTag.lastIndexOf(':');
  const hasTag = colon > nameAndTag.lastIndexOf('/');
  const name = hasTag ? nameAndTag.slice(0, colon) : nameAndTag;
  const tag = hasTag ? nameAndTag.slice(colon + 1) : undefined;
  if (tag !== undefined && !isTag(tag)) {
    throw invalid(text, `has an invalid tag ${quote(tag)} (letters, digits, '_', '.', '-'; at most 128)`);
  }

  const { registry, repository } = splitName(text, name);
  return Object.freeze({
    original: text,
    registry,
    repository,
    ...(tag !== undefined ? { tag } : digest === undefined ? { tag: DEFAULT_TAG } : {}),
    ...(digest !== undefined ? { digest } : {}),
  });
}

/** `registry/repository`: the string policy globs match. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The normalized form `registry/repository[:tag][@digest]`, used for cache keys. */
export function canonicalReference(ref: ImageReference): string {
  const tag = ref.tag !== undefined ? `:${ref.tag}` : '';
  const digest = ref.digest !== undefined ? `@${ref.digest}` : '';
  return `${repositoryName(ref)}${tag}${digest}`;
}

/**
 * The user's text with the digest appended (`app:1.2@sha256:D`). An already pinned reference is returned
 * unchanged: which digest wins on UPDATE is the lookup service's decision, not a string edit.
 */
export function pinnedImage(ref: ImageReference, digest: string): string {
  if (ref.digest !== undefined) return ref.original;
  // The digest comes from our own resolver, so a bad one is a bug: INTERNAL is transient and never cached.
  if (!isSha256Digest(digest))
    throw new SigpinError('INTERNAL', `refusing to pin malformed digest ${quote(digest)}`);
  return `${ref.original}@${digest}`;
}

/** The `host[:port]` to dial for a normalized registry: Docker Hub's API does not live at docker.io. */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

function checkDigest(text: string, digest: string): string {
  if (!isGrammarDigest(digest)) {
    throw invalid(text, `has an invalid digest ${quote(digest)} (expected sha256:<64 lowercase hex>)`);
  }
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (algorithm !== 'sha256') {
    throw invalid(text, `uses digest algorithm ${quote(algorithm)}; only sha256 digests are supported`);
  }
  if (!isSha256Digest(digest)) {
    throw invalid(text, 'has a sha256 digest that is not exactly 64 lowercase hex characters');
  }
  return digest;
}

// normalize.go splitDockerDomain, plus host lowercasing (see normalizeRegistry). One deliberate difference:
// distribution accepts `bad_host.com/app` as a path with an empty domain, leaving the registry to whoever
// dials the first component; sigpin rejects it, since with no registry no policy can be chosen.
function splitName(text: string, name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = name.slice(0, Math.max(slash, 0));
  const [domain, path] =
    slash >= 0 && looksLikeDomain(first) ? [first, name.slice(slash + 1)] : [DOCKER_HUB, name];
  if (!isDomain(domain)) throw invalid(text, `has an invalid registry host ${quote(domain)}`);
  const registry = normalizeRegistry(domain);
  const repository = registry === DOCKER_HUB && !path.includes('/') ? OFFICIAL_PREFIX + path : path;
  checkPath(text, repository, path);
  return { registry, repository };
}

// The first path component names a registry only when it has '.' or ':', is localhost, or has uppercase
// letters (uppercase is invalid in a repository path, so it can only be a host).
function looksLikeDomain(component: string): boolean {
  return (
    component === 'localhost' ||
    component.includes('.') ||
    component.includes(':') ||
    component !== component.toLowerCase()
  );
}

/**
 * Hosts are case-insensitive (DNS), so `GHCR.IO/acme/app` is pulled from ghcr.io and must meet ghcr.io's
 * policy: the registry is lowercased (distribution keeps the case, which would let case dodge a policy glob).
 * A single-label name that is a host only because of its uppercase (`LOCALDOMAIN/app`) stays as written,
 * so the canonical form still parses to the same registry.
 */
function normalizeRegistry(domain: string): string {
  const lower = domain.toLowerCase();
  if (lower === DOCKER_HUB_LEGACY) return DOCKER_HUB;
  return looksLikeDomain(lower) ? lower : domain;
}

// `written` is the path as the user wrote it (without an implied `library/`), for the messages.
function checkPath(text: string, path: string, written: string): void {
  if (path.length > MAX_PATH_LENGTH) {
    throw invalid(text, `has a repository path longer than ${MAX_PATH_LENGTH} characters`);
  }
  const components = path.split('/');
  if (components.every(isPathComponent)) return;
  if (path.toLowerCase().split('/').every(isPathComponent)) {
    throw invalid(text, `has a repository path ${quote(written)} that is not lowercase`);
  }
  throw invalid(
    text,
    `has an invalid repository path ${quote(written)} (components of lowercase letters and digits, ` +
      `separated by '.', '_', '__' or '-')`
  );
}

function invalid(text: string, reason: string): SigpinError {
  return new SigpinError('INVALID_REFERENCE', `image reference ${quote(text)} ${reason}`);
}

// Keys are attacker-controlled: quote them (escaping control characters) and keep error strings short.
export function quote(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}...` : text);
}
