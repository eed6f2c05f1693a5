/**
 * Fast in-process signers for the benchmark (and the verifier fuzz tests): cosign-compatible legacy `.sig`
 * attachments (simple-signing payload layer + annotations, protocols.md 4.2/5.5) made with node:crypto (key-based)
 * or with @sigstore/mock's Fulcio and Rekor served on 127.0.0.1 (keyless: Fulcio certificate, SCT, Rekor SET).
 * Pushing hundreds of signed images through skopeo would take minutes; these produce the same wire format in
 * milliseconds, so the benchmark measures sigpin rather than its set-up. (skopeo 1.18 signing is covered by the
 * verify tests; this is the same format, written by another signer.)
 */
import { createHash, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler } from '@sigstore/mock';
import { DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } from '@sigstore/sign';
import { bundleToJSON } from '@sigstore/bundle';
import {
  blobOf,
  buildImage,
  MEDIA_TYPES,
  TestRegistryHttp,
  type RegistryTarget,
} from '../test/support/images.ts';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';

/** A signature attachment before it is pushed: the payload bytes and the layer annotations. */
export interface SignatureLayer {
  payload: Buffer;
  annotations: Record<string, string>;
}

export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    })
  );
}

/** Key-based signing with an ECDSA P-256 key made for this run. */
export class KeySigner {
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.privateKey = privateKey;
    this.publicKeyPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }

  sign(payload: Buffer): SignatureLayer {
    return {
      payload,
      annotations: { [ANNOTATION_SIGNATURE]: sign('sha256', payload, this.privateKey).toString('base64') },
    };
  }
}

export const KEYLESS_ISSUER = 'https://oidc.bench.invalid';
export const KEYLESS_SUBJECT = 'https://github.com/acme/bench/.github/workflows/release.yml@refs/heads/main';

/** Keyless signing against @sigstore/mock Fulcio + Rekor on loopback; `trustedRoot` verifies what it signs. */
export class KeylessSigner {
  readonly trustedRoot: Record<string, unknown>;
  readonly #servers: http.Server[];
  readonly #builder: MessageSignatureBundleBuilder;
  readonly #dsseBuilder: DSSEBundleBuilder;
  readonly #rootPem: string;

  private constructor(
    trustedRoot: Record<string, unknown>,
    servers: http.Server[],
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
    const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const notBefore = new Date(Date.now() - 60_000).toISOString();
    const fulcio = await listen();
    const rekor = await listen();
    const ctlog = await initializeCTLog(keyPair());
    const ca = await initializeCA(keyPair(), ctlog);
    const tlog = await initializeTLog(rekor.url, keyPair());
    fulcio.handle(fulcioHandler(ca, { strict: true }));
    rekor.handle(rekorHandler(tlog, { strict: true }));
    const b64 = (b: ArrayBufferView): string => bytes(b).toString('base64');
    const trustedRoot = {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: rekor.url,
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: b64(tlog.publicKey),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start: notBefore },
          },
          logId: { keyId: b64(createHash('sha256').update(bytes(tlog.publicKey)).digest()) },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore-mock', commonName: 'mock fulcio' },
          uri: fulcio.url,
          certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
          validFor: { start: notBefore },
        },
      ],
      ctlogs: [
        {
          baseUrl: 'http://127.0.0.1/ctlog',
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: b64(ctlog.publicKey),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start: notBefore },
          },
          logId: { keyId: b64(ctlog.logID) },
        },
      ],
      timestampAuthorities: [],
    };
    const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    // The mock Fulcio decodes the identity token without checking its signature.
    const idToken = [
      part({ alg: 'none', typ: 'JWT' }),
      part({ iss: KEYLESS_ISSUER, sub: KEYLESS_SUBJECT, aud: 'sigstore', iat: now, exp: now + 3600 }),
      'unsigned',
    ].join('.');
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
    const rootPem = new X509Certificate(bytes(ca.rootCertificate)).toString();
    return new KeylessSigner(trustedRoot, [fulcio.server, rekor.server], { message: builder, dsse }, rootPem);
  }

  async sign(payload: Buffer): Promise<SignatureLayer> {
    const bundle = bundleToJSON(await this.#builder.create({ data: payload }));
    const material = bundle.verificationMaterial;
    const leaf =
      material.certificate?.rawBytes ?? material.x509CertificateChain?.certificates[0]?.rawBytes ?? '';
    const entry = material.tlogEntries[0];
    if (!entry?.inclusionPromise || bundle.messageSignature === undefined) {
      throw new Error('mock Rekor returned no inclusion promise');
    }
    const rekorBundle = {
      SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
      Payload: {
        body: entry.canonicalizedBody,
        integratedTime: Number(entry.integratedTime),
        logIndex: Number(entry.logIndex),
        logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex'),
      },
    };
    return {
      payload,
      annotations: {
        [ANNOTATION_SIGNATURE]: bundle.messageSignature.signature,
        [ANNOTATION_CERTIFICATE]: new X509Certificate(Buffer.from(leaf, 'base64')).toString(),
        [ANNOTATION_CHAIN]: this.#rootPem,
        [ANNOTATION_BUNDLE]: JSON.stringify(rekorBundle),
      },
    };
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

type Handler = ReturnType<typeof fulcioHandler>;

function bytes(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** A loopback HTTP server that gets its @sigstore/mock handler after it knows its own URL. */
async function listen(): Promise<{ server: http.Server; url: string; handle(h: Handler): void }> {
  let handler: Handler | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!handler || req.method !== 'POST' || req.url !== handler.path) {
        res.writeHead(404).end();
        return;
      }
      void handler.fn(Buffer.concat(chunks).toString()).then((r) => {
        res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'text/plain' }).end(r.response);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  server.unref();
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, url, handle: (h) => (handler = h) };
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
  const http = new TestRegistryHttp(target);
  const descriptors = [];
  for (const layer of layers) {
    await http.putBlob(repository, layer.payload);
    descriptors.push({
      ...blobOf(SIMPLE_SIGNING_MEDIA_TYPE, layer.payload).descriptor,
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
      config: blobOf(MEDIA_TYPES.ociConfig, config).descriptor,
      layers: descriptors,
    })
  );
  await http.putManifest(repository, signatureTag(digest), manifest, MEDIA_TYPES.ociManifest);
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
