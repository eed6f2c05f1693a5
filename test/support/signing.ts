/**
 * Attaching signatures to images in the test registry, the way real signers do:
 *  - legacy cosign `.sig` / `.att` tags (one layer per signature, annotations as cosign writes them);
 *  - sigstore bundles as OCI referrers (cosign v3): an artifact manifest with `subject`, plus the `sha256-<hex>`
 *    fallback tag index, because distribution 2.8 has no referrers API;
 *  - skopeo 1.18 signing with a cosign key (an independent signer);
 *  - key-signed DSSE bundles built by @sigstore/sign (cosign v3 `--key` style).
 */
import { sign as cryptoSign, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { DSSEBundleBuilder, MessageSignatureBundleBuilder, RekorWitness, type Signer } from '@sigstore/sign';
import {
  blobOf,
  MEDIA_TYPES,
  pushArtifact,
  referrersTag,
  sha256Digest,
  TestRegistryHttp,
  type Descriptor,
  type RegistryTarget,
} from './images.ts';

export const SIG_MEDIA_TYPES = {
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
  bundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';

/** cosign's simple-signing payload (protocols.md 4.2); `optional: null` like cosign unless given. */
export function simpleSigningPayload(
  dockerReference: string,
  digest: string,
  optional: Record<string, unknown> | null = null,
  critical: Record<string, unknown> = {}
): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
        ...critical,
      },
      optional,
    })
  );
}

/** Signs bytes as cosign does for each key type: ECDSA/RSA over SHA-256 (DER), Ed25519 pure. */
export function signBytes(privateKey: KeyObject, data: Buffer, hash: string | null = 'sha256'): Buffer {
  return cryptoSign(privateKey.asymmetricKeyType === 'ed25519' ? null : hash, data, privateKey);
}

export interface SigLayer {
  /** The payload blob (simple-signing JSON for `.sig`, a DSSE envelope JSON for `.att`). */
  blob: Buffer;
  annotations: Record<string, string>;
  /** Override the layer descriptor's digest (to model a tampered blob). */
  digest?: string;
}

/** `.sig` layer for a key-based signature over `payload`. */
export function keySigLayer(
  privateKey: KeyObject,
  payload: Buffer,
  extra: Record<string, string> = {}
): SigLayer {
  return {
    blob: payload,
    annotations: {
      'dev.cosignproject.cosign/signature': signBytes(privateKey, payload).toString('base64'),
      ...extra,
    },
  };
}

/**
 * Writes the cosign attachment manifest `sha256-<hex>.<suffix>` with these layers (replacing any previous one),
 * as cosign does: OCI manifest, a config listing the layer digests, one layer per signature.
 */
export async function pushAttachment(
  target: RegistryTarget,
  repository: string,
  digest: string,
  suffix: 'sig' | 'att',
  layers: SigLayer[]
): Promise<string> {
  const http = new TestRegistryHttp(target);
  const mediaType = suffix === 'sig' ? SIG_MEDIA_TYPES.simpleSigning : SIG_MEDIA_TYPES.dsseEnvelope;
  const descriptors: Descriptor[] = [];
  for (const layer of layers) {
    await http.putBlob(repository, layer.blob);
    descriptors.push({
      mediaType,
      size: layer.blob.length,
      digest: layer.digest ?? sha256Digest(layer.blob),
      annotations: layer.annotations,
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: descriptors.map((d) => d.digest) },
    })
  );
  await http.putBlob(repository, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, size: config.length, digest: sha256Digest(config) },
      layers: descriptors,
    })
  );
  return http.putManifest(
    repository,
    `${digest.replace(':', '-')}.${suffix}`,
    manifest,
    MEDIA_TYPES.ociManifest
  );
}

/** An in-toto v1 statement about `digest`. */
export function inTotoStatement(digest: string, predicateType: string, predicate: object = {}): object {
  const [algorithm, hex] = digest.split(':');
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: '', digest: { [algorithm ?? 'sha256']: hex } }],
    predicateType,
    predicate,
  };
}

/** The referrer descriptors already in the fallback index of `digest` (none when the tag does not exist). */
async function existingReferrers(
  target: RegistryTarget,
  repository: string,
  digest: string
): Promise<Descriptor[]> {
  const http = new TestRegistryHttp(target);
  const res = await http.request('GET', `/v2/${repository}/manifests/${referrersTag(digest)}`, {
    scope: `repository:${repository}:pull`,
    headers: { Accept: MEDIA_TYPES.ociIndex },
  });
  if (res.status === 404) {
    await res.arrayBuffer();
    return [];
  }
  if (!res.ok) throw new Error(`GET fallback index -> ${res.status}`);
  return ((await res.json()) as { manifests?: Descriptor[] }).manifests ?? [];
}

/**
 * Attaches a sigstore bundle as a referrer of `subject` (cosign v3 layout, protocols.md 4.5) and adds it to the
 * `sha256-<hex>` fallback index, keeping referrers already listed there.
 */
export async function pushBundleReferrer(
  target: RegistryTarget,
  repository: string,
  subject: Descriptor,
  bundle: SerializedBundle | Buffer,
  predicateType = COSIGN_SIGN_PREDICATE
): Promise<Descriptor> {
  const bytes = Buffer.isBuffer(bundle) ? bundle : Buffer.from(JSON.stringify(bundle));
  const annotations = {
    'org.opencontainers.image.created': new Date().toISOString(),
    'dev.sigstore.bundle.content': 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': predicateType,
  };
  const artifact = await pushArtifact(target, repository, {
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    artifactType: SIG_MEDIA_TYPES.bundleV03,
    layers: [{ mediaType: SIG_MEDIA_TYPES.bundleV03, bytes }],
    annotations,
  });
  const referrers = await existingReferrers(target, repository, subject.digest);
  const index = blobOf(
    MEDIA_TYPES.ociIndex,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [...referrers, artifact.descriptor],
      })
    )
  );
  await new TestRegistryHttp(target).putManifest(
    repository,
    referrersTag(subject.digest),
    index.bytes,
    MEDIA_TYPES.ociIndex
  );
  return artifact.descriptor;
}

function keySigner(privateKey: KeyObject): Signer {
  const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return {
    sign: (data) =>
      Promise.resolve({
        signature: signBytes(privateKey, data),
        key: { $case: 'publicKey', publicKey, hint: '' },
      }),
  };
}

/**
 * A message-signature bundle over `payload` signed with a plain key by @sigstore/sign, logged (hashedrekord with
 * the public key) in the Rekor at `rekorURL` when given: what `cosign sign --key` uploads in v2.
 */
export async function keySignedMessageBundle(
  privateKey: KeyObject,
  payload: Buffer,
  rekorURL?: string
): Promise<SerializedBundle> {
  const witnesses = rekorURL ? [new RekorWitness({ rekorBaseURL: rekorURL })] : [];
  const builder = new MessageSignatureBundleBuilder({ signer: keySigner(privateKey), witnesses });
  return bundleToJSON(await builder.create({ data: payload }));
}

/** A DSSE bundle signed with a plain key by @sigstore/sign (what `cosign sign --key` writes in v3), no tlog. */
export async function keySignedStatementBundle(
  privateKey: KeyObject,
  statement: object
): Promise<SerializedBundle> {
  const builder = new DSSEBundleBuilder({ signer: keySigner(privateKey), witnesses: [] });
  return bundleToJSON(
    await builder.create({
      data: Buffer.from(JSON.stringify(statement)),
      type: 'application/vnd.in-toto+json',
    })
  );
}

/**
 * A registries.d folder telling containers/image to read and write cosign attachments for `host`, for
 * `skopeo copy --registries.d DIR --sign-by-sigstore-private-key KEY --sign-passphrase-file F`.
 */
export async function sigstoreRegistriesDir(
  host: string
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sigpin-registries-d-'));
  await writeFile(
    join(dir, 'sigpin.yaml'),
    `docker:\n  ${JSON.stringify(host)}:\n    use-sigstore-attachments: true\n`
  );
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
