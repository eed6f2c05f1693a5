/**
 * OCI content types and checks: digests, repository names and tags (distribution-spec grammar), descriptors
 * and image indexes as they arrive from registries (untrusted, validated with zod).
 * https://github.com/opencontainers/image-spec/blob/main/descriptor.md
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SigpinError } from '../errors.ts';

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const SHA512 = /^sha512:[a-f0-9]{128}$/;
// distribution-spec: <name> and <reference>
const REPOSITORY = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_REPOSITORY_LENGTH = 255;

export function isDigest(value: string): boolean {
  return SHA256.test(value) || SHA512.test(value);
}

export function isSha256Digest(value: string): boolean {
  return SHA256.test(value);
}

/** `algorithm:hex` of `bytes` with the algorithm of `like` (sha256 unless `like` is a sha512 digest). */
export function digestOf(bytes: Buffer, like?: string): string {
  const algorithm = like?.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function assertRepository(repository: string): void {
  if (repository.length > MAX_REPOSITORY_LENGTH || !REPOSITORY.test(repository)) {
    throw new SigpinError('INVALID_REFERENCE', `invalid repository name ${JSON.stringify(repository)}`);
  }
}

export function assertTagOrDigest(reference: string): void {
  if (!TAG.test(reference) && !isDigest(reference)) {
    throw new SigpinError('INVALID_REFERENCE', `invalid tag or digest ${JSON.stringify(reference)}`);
  }
}

export function assertDigest(digest: string): void {
  if (!isDigest(digest))
    throw new SigpinError('INVALID_REFERENCE', `invalid digest ${JSON.stringify(digest)}`);
}

/** The referrers fallback tag (distribution-spec "Referrers Tag Schema"): `<alg>-<hex>`. */
export function referrersFallbackTag(digest: string): string {
  const [algorithm = '', hex = ''] = digest.split(':');
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/** Media type without parameters (`application/json; charset=utf-8` -> `application/json`). */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

const platformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
});

export const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: z.string().refine(isDigest, 'not a digest'),
  size: z.number().int().nonnegative(),
  artifactType: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  urls: z.array(z.string()).optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;

/** An image index as far as listing it needs: descriptors are validated one by one so one bad entry is skipped. */
export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(z.unknown()),
});
