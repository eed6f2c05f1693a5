/**
 * Finding the signatures of one image digest (DESIGN.md section 6): sigstore bundles attached as OCI referrers
 * (cosign v3; the registry client falls back to the `sha256-<hex>` tag index), the legacy `sha256-<hex>.sig` tag
 * (cosign <= v2, skopeo), and, when a policy requires attestations, the legacy `.att` tag. Counts and sizes are
 * bounded; every blob is checked against its digest. A signature that is found but malformed or tampered becomes
 * a rejected candidate (so the verdict is UNTRUSTED, not UNSIGNED). Transient registry errors propagate.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isSigpinError } from '../errors.ts';
import type { Candidate } from './candidate.ts';
import { legacyAttestationToBundle, legacySignatureToBundle } from './legacy.ts';
import type { ArtifactSource, RequestContext } from './types.ts';

export const MEDIA_TYPE = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
  bundlePrefix: 'application/vnd.dev.sigstore.bundle',
  bundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

export interface DiscoveryLimits {
  /** Candidates considered per source (referrers, `.sig` layers, `.att` layers). */
  maxCandidates: number;
  /** Largest simple-signing payload or DSSE envelope blob. */
  maxPayloadBytes: number;
  /** Largest bundle blob. */
  maxBundleBytes: number;
}

export const DEFAULT_DISCOVERY_LIMITS: DiscoveryLimits = {
  maxCandidates: 32,
  maxPayloadBytes: 256 * 1024,
  maxBundleBytes: 1024 * 1024,
};

const digestString = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'not a sha256 digest');
const descriptorSchema = z.object({
  mediaType: z.string(),
  digest: digestString,
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
});
const manifestSchema = z.object({
  layers: z.array(descriptorSchema),
  subject: z.object({ digest: z.string() }).optional(),
});
type Descriptor = z.infer<typeof descriptorSchema>;

export interface DiscoverInput {
  registry: string;
  repository: string;
  digest: string;
  ctx: RequestContext;
  /** Also read the legacy `.att` tag. */
  attestations: boolean;
}

const sha256Of = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** cosign's legacy attachment tag: `sha256:<hex>` -> `sha256-<hex>.<suffix>`. */
export function attachmentTag(digest: string, suffix: 'sig' | 'att'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

function isNotFound(err: unknown): boolean {
  return isSigpinError(err) && err.code === 'NOT_FOUND';
}

function parseManifest(bytes: Buffer, what: string): z.infer<typeof manifestSchema> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
  const parsed = manifestSchema.safeParse(doc);
  if (!parsed.success) throw new Error(`${what}: ${parsed.error.issues[0]?.message ?? 'invalid manifest'}`);
  return parsed.data;
}

/** A blob checked against its descriptor: size bound first, then the sha256 of the bytes received. */
async function fetchVerifiedBlob(
  source: ArtifactSource,
  i: DiscoverInput,
  layer: Descriptor,
  maxBytes: number
): Promise<Buffer | string> {
  if (layer.size > maxBytes) return `blob ${layer.digest} is ${layer.size} bytes, over the ${maxBytes} limit`;
  let blob: Buffer;
  try {
    blob = await source.getBlob(i.registry, i.repository, layer.digest, i.ctx, maxBytes);
  } catch (err) {
    if (isNotFound(err)) return `blob ${layer.digest} is missing`;
    throw err;
  }
  if (sha256Of(blob) !== layer.digest) return `blob ${layer.digest} does not match its digest (tampered)`;
  return blob;
}

/** Layers of a legacy attachment tag, each one candidate; none when the tag does not exist. */
async function legacyCandidates(
  source: ArtifactSource,
  i: DiscoverInput,
  suffix: 'sig' | 'att',
  limits: DiscoveryLimits
): Promise<Candidate[]> {
  const tag = attachmentTag(i.digest, suffix);
  let manifest;
  try {
    manifest = await source.getManifest(i.registry, i.repository, tag, i.ctx, [
      MEDIA_TYPE.ociManifest,
      MEDIA_TYPE.dockerManifest,
    ]);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  let layers: Descriptor[];
  try {
    layers = parseManifest(manifest.bytes, `${tag} manifest`).layers;
  } catch (err) {
    return [{ origin: tag, rejected: (err as Error).message }];
  }
  const wanted = suffix === 'sig' ? MEDIA_TYPE.simpleSigning : MEDIA_TYPE.dsseEnvelope;
  const relevant = layers.filter((l) => l.mediaType === wanted).slice(0, limits.maxCandidates);
  return Promise.all(
    relevant.map(async (layer, n): Promise<Candidate> => {
      const origin = `${tag} layer ${n}`;
      const blob = await fetchVerifiedBlob(source, i, layer, limits.maxPayloadBytes);
      if (typeof blob === 'string') return { origin, rejected: blob };
      try {
        const annotations = layer.annotations ?? {};
        return suffix === 'sig'
          ? { origin, bundle: legacySignatureToBundle(blob, annotations), payload: blob, legacy: true }
          : { origin, bundle: legacyAttestationToBundle(blob, annotations), legacy: true };
      } catch (err) {
        return { origin, rejected: (err as Error).message };
      }
    })
  );
}

/** Sigstore bundles attached as referrers of the digest. */
async function referrerCandidates(
  source: ArtifactSource,
  i: DiscoverInput,
  limits: DiscoveryLimits
): Promise<Candidate[]> {
  let referrers;
  try {
    referrers = await source.listReferrers(i.registry, i.repository, i.digest, i.ctx);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const bundles = referrers
    .filter((r) => r.artifactType === undefined || r.artifactType.startsWith(MEDIA_TYPE.bundlePrefix))
    .slice(0, limits.maxCandidates);
  const found = await Promise.all(
    bundles.map(async (r): Promise<Candidate | undefined> => {
      const origin = `referrer ${r.digest}`;
      let manifest;
      try {
        manifest = await source.getManifest(i.registry, i.repository, r.digest, i.ctx, [
          MEDIA_TYPE.ociManifest,
        ]);
      } catch (err) {
        if (isNotFound(err)) return { origin, rejected: `referrer manifest ${r.digest} is missing` };
        throw err;
      }
      let parsed;
      try {
        parsed = parseManifest(manifest.bytes, `referrer ${r.digest}`);
      } catch (err) {
        return { origin, rejected: (err as Error).message };
      }
      const layer = parsed.layers[0];
      // not a sigstore bundle (an artifactType-less referrer of another kind): not a signature at all
      if (!layer || parsed.layers.length !== 1 || !layer.mediaType.startsWith(MEDIA_TYPE.bundlePrefix))
        return undefined;
      if (parsed.subject?.digest !== i.digest)
        return { origin, rejected: `referrer ${r.digest} has another subject` };
      const blob = await fetchVerifiedBlob(source, i, layer, limits.maxBundleBytes);
      if (typeof blob === 'string') return { origin, rejected: blob };
      try {
        return { origin, bundle: JSON.parse(blob.toString('utf8')) as unknown };
      } catch {
        return { origin, rejected: `bundle ${layer.digest} is not JSON` };
      }
    })
  );
  return found.filter((c): c is Candidate => c !== undefined);
}

/** Every signature candidate for the digest, from all sources, in a stable order. */
export async function discoverCandidates(
  source: ArtifactSource,
  i: DiscoverInput,
  limits: DiscoveryLimits = DEFAULT_DISCOVERY_LIMITS
): Promise<Candidate[]> {
  const [referrers, sig, att] = await Promise.all([
    referrerCandidates(source, i, limits),
    legacyCandidates(source, i, 'sig', limits),
    i.attestations ? legacyCandidates(source, i, 'att', limits) : Promise.resolve([]),
  ]);
  return [...referrers, ...sig, ...att];
}
