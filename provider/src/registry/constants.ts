/** Wire constants of the OCI distribution API (https://github.com/opencontainers/distribution-spec/blob/main/spec.md). */

export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/**
 * Every manifest type we handle. Sent on every manifest request: without the OCI types distribution answers 404
 * for OCI manifests, and a missing or generic Accept can make a registry convert to schema1 (another digest).
 */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_LIST,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST,
];

export const HEADER_DIGEST = 'docker-content-digest';
export const HEADER_FILTERS_APPLIED = 'oci-filters-applied';

/** The normalised Docker Hub name and the host its API is served on (containers/image docker_client.go). */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
export const DOCKER_HUB_ALIASES: readonly string[] = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
/** Docker Hub's token realm host, allowed whenever docker.io is. */
export const DOCKER_HUB_AUTH_HOST = 'auth.docker.io';
/** The key docker login writes for Docker Hub in config.json. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONCURRENCY_PER_REGISTRY = 16;
export const DEFAULT_MAX_RETRIES = 2;
/** Manifests larger than this are refused (distribution-spec suggests registries accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
export const MAX_REDIRECTS = 5;
/** Referrers pagination bounds: pages followed and descriptors kept. */
export const MAX_REFERRER_PAGES = 10;
export const MAX_REFERRERS = 1000;
/** Longest Retry-After we are willing to wait, whatever the deadline. */
export const MAX_RETRY_AFTER_MS = 10_000;
