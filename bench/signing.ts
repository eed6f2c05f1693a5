/**
 * Fast in-process signers for the benchmark (and the verifier fuzz tests): cosign-compatible legacy `.sig`
 * attachments (simple-signing payload layer + annotations, protocols.md 4.2/5.5) made with node:crypto (key-based)
 * or with @sigstore/mock's Fulcio and Rekor served on 127.0.0.1 (keyless: Fulcio certificate, SCT, Rekor SET).
 * Pushing hundreds of signed images through skopeo would take minutes; these produce the same wire format in
 * milliseconds, so the benchmark measures sigpin rather than its set-up. (skopeo 1.18 signing is covered by the
 * verify tests; this is the same format, written by another signer.)
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { Server } from 'node:http';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler } from '@sigstore/mock';
import { DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } from '@sigstore/sign';
import { bundleToJSON } from '@sigstore/bundle';
import { buildImage, TestRegistryHttp, type RegistryTarget } from '../test/support/images.ts';
import {
  keyPair,
  legacyAnnotationsFromBundle,
  mockTrustedRoot,
  serve,
  serveLazy,
  unsignedIdToken,
} from '../test/support/keyless.ts';
import { pushAttachment, SIG_MEDIA_TYPES, signBytes } from '../test/support/signing.ts';

export { simpleSigningPayload } from '../test/support/signing.ts';

export const SIMPLE_SIGNING_MEDIA_TYPE = SIG_MEDIA_TYPES.simpleSigning;
export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';

/** A signature attachment before it is pushed: the payload bytes and the layer annotations. */
export interface SignatureLayer {
  payload: Buffer;
  annotations: Record<string, string>;
}

/** Key-based signing with an ECDSA P-256 key made for this run. */
export class KeySigner {
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;

  constructor() {
    const { privateKey, publicKey } = keyPair();
    this.privateKey = privateKey;
    this.publicKeyPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }

  sign(payload: Buffer): SignatureLayer {
    return {
      payload,
      annotations: { [ANNOTATION_SIGNATURE]: signBytes(this.privateKey, payload).toString('base64') },
    };
  }
}

export const KEYLESS_ISSUER = 'https://oidc.bench.invalid';
export const KEYLESS_SUBJECT = 'https://github.com/acme/bench/.github/workflows/release.yml@refs/heads/main';

/** Keyless signing against @sigstore/mock Fulcio + Rekor on loopback; `trustedRoot` verifies what it signs. */
export class KeylessSigner {
  readonly trustedRoot: Record<string, unknown>;
  readonly #servers: Server[];
  readonly #builder: MessageSignatureBundleBuilder;
  readonly #dsseBuilder: DSSEBundleBuilder;
  readonly #rootPem: string;

  private constructor(
    trustedRoot: Record<string, unknown>,
    servers: Server[],
    builders: { message: MessageSignatureBundleBuilder; dsse: DSSEBundleBuilder },
    rootPem: string
  ) {
    this.trustedRoot = trustedRoot;
    this.#servers = servers;
    this.#builder = builders.message;
    this.#dsseBuilder = builders.dsse;
    this.#rootPem = rootPem;
  }

  static async start(): Promise<KeylessSigner> {
    const notBefore = new Date(Date.now() - 60_000).toISOString();
    const ctlog = await initializeCTLog(keyPair());
    const ca = await initializeCA(keyPair(), ctlog);
    const fulcio = await serve(fulcioHandler(ca, { strict: true }));
    let rekorPublicKey: Buffer = Buffer.alloc(0);
    const rekor = await serveLazy(async (url) => {
      const tlog = await initializeTLog(url, keyPair());
      rekorPublicKey = tlog.publicKey;
      return rekorHandler(tlog, { strict: true });
    });
    // The benchmark may end without stopping the signer: its servers must not keep the process alive.
    fulcio.server.unref();
    rekor.server.unref();
    const trustedRoot = mockTrustedRoot({
      rekorURL: rekor.url,
      rekorPublicKey,
      fulcioURL: fulcio.url,
      caRoots: [ca.rootCertificate],
      ctlog,
      validFrom: notBefore,
    });
    const now = Math.floor(Date.now() / 1000);
    const idToken = unsignedIdToken({
      iss: KEYLESS_ISSUER,
      sub: KEYLESS_SUBJECT,
      aud: 'sigstore',
      iat: now,
      exp: now + 3600,
    });
    const signer = new FulcioSigner({
      identityProvider: { getToken: () => Promise.resolve(idToken) },
      fulcioBaseURL: fulcio.url,
    });
    const builder = new MessageSignatureBundleBuilder({
      signer,
      witnesses: [new RekorWitness({ rekorBaseURL: rekor.url })],
    });
    const dsse = new DSSEBundleBuilder({
      signer,
      // The mock Rekor's `dsse` entries do not verify with @sigstore/verify; `intoto` ones do (as in the testbed).
      witnesses: [new RekorWitness({ rekorBaseURL: rekor.url, entryType: 'intoto' })],
    });
    const root = ca.rootCertificate;
    const rootPem = new X509Certificate(
      Buffer.from(root.buffer, root.byteOffset, root.byteLength)
    ).toString();
    return new KeylessSigner(trustedRoot, [fulcio.server, rekor.server], { message: builder, dsse }, rootPem);
  }

  async sign(payload: Buffer): Promise<SignatureLayer> {
    const bundle = bundleToJSON(await this.#builder.create({ data: payload }));
    if (
      !bundle.verificationMaterial.tlogEntries[0]?.inclusionPromise ||
      bundle.messageSignature === undefined
    ) {
      throw new Error('mock Rekor returned no inclusion promise');
    }
    return { payload, annotations: legacyAnnotationsFromBundle(bundle, this.#rootPem) };
  }

  /** A cosign v3 style sigstore bundle: an in-toto statement in a DSSE envelope, as bundle JSON. */
  async signStatement(statement: object): Promise<unknown> {
    const bundle = await this.#dsseBuilder.create({
      data: Buffer.from(JSON.stringify(statement)),
      type: 'application/vnd.in-toto+json',
    });
    return bundleToJSON(bundle);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** The legacy cosign attachment tag of a digest. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** Pushes `layers` as the `sha256-<hex>.sig` manifest of `digest` (raw distribution API, no skopeo). */
export async function pushSignatures(
  target: RegistryTarget,
  repository: string,
  digest: string,
  layers: SignatureLayer[]
): Promise<void> {
  await pushAttachment(
    target,
    repository,
    digest,
    'sig',
    layers.map((layer) => ({ blob: layer.payload, annotations: layer.annotations }))
  );
}

/** Pushes a deterministic single-manifest image by raw API (config, layer, manifest) under `tag`; its digest. */
export async function pushRawImage(
  target: RegistryTarget,
  repository: string,
  tag: string,
  seed: string
): Promise<string> {
  const http = new TestRegistryHttp(target);
  const image = buildImage('oci-manifest', seed);
  for (const blob of image.blobs) await http.putBlob(repository, blob.bytes);
  await http.putManifest(repository, tag, image.manifest.bytes, image.manifest.descriptor.mediaType);
  return image.manifest.descriptor.digest;
}
