/**
 * Keyless (Fulcio + Rekor) signing for tests, fully offline: @sigstore/mock's CA, CT log and transparency logs
 * served by node:http on 127.0.0.1 (ephemeral ports), signed by @sigstore/sign's FulcioSigner + RekorWitness
 * (the same client code as real keyless signers), and a trusted_root.json built from the mock keys.
 *
 * Two transparency logs run: `trusted` is in the trusted root, `rogue` is not (an SET from an untrusted log).
 *   const mock = await startKeylessMock();
 *   const bundle = await mock.signMessage(payload);                 // hashedrekord entry, like cosign keyless
 *   const att = await mock.signStatement(statement);                 // DSSE + intoto entry, like cosign v3
 *   const layer = legacyLayerFromBundle(bundle);                     // cosign .sig layer annotations
 */
import { generateKeyPairSync, createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler } from '@sigstore/mock';
import {
  DSSEBundleBuilder,
  FulcioSigner,
  MessageSignatureBundleBuilder,
  RekorWitness,
  type IdentityProvider,
} from '@sigstore/sign';

export const MOCK_ISSUER = 'https://oidc.sigpin-test.invalid';
export const MOCK_SUBJECT = 'https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main';

interface Handler {
  path: string;
  fn: (
    body: string
  ) => Promise<{ statusCode: number; response: string | ArrayBufferView; contentType?: string }>;
}

export interface SignOptions {
  /** OIDC token claims: `iss`, `sub`, plus any Fulcio claim the mock maps (`repository`, `sha`, ...). */
  claims?: Record<string, string>;
  /** Which transparency log witnesses the signature; `none` leaves the bundle without a tlog entry. */
  rekor?: 'trusted' | 'rogue' | 'none';
  /** Use the CA whose clock is an hour behind: its leaves are already expired. */
  expiredLeaf?: boolean;
}

export interface KeylessMock {
  /** trusted_root.json content: the mock CA, CT log and the `trusted` Rekor only. */
  trustedRoot: Record<string, unknown>;
  /** Base URL of a mock Rekor (for signers other than the keyless ones, e.g. key-based with a tlog entry). */
  rekorURL(which: 'trusted' | 'rogue'): string;
  signMessage(payload: Buffer, options?: SignOptions): Promise<SerializedBundle>;
  /** Signs an in-toto statement in a DSSE envelope (Rekor `intoto` entry). */
  signStatement(statement: object, options?: SignOptions): Promise<SerializedBundle>;
  stop(): Promise<void>;
}

type Route = (body: string, authorization: string) => ReturnType<Handler['fn']>;

async function serveRoutes(routes: Record<string, Route>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const route = req.method === 'POST' ? routes[req.url ?? ''] : undefined;
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      route(Buffer.concat(chunks).toString(), req.headers.authorization ?? '')
        .then((r) =>
          res
            .writeHead(r.statusCode, { 'Content-Type': r.contentType ?? 'text/plain' })
            .end(
              typeof r.response === 'string'
                ? r.response
                : Buffer.from(r.response.buffer, r.response.byteOffset, r.response.byteLength)
            )
        )
        .catch((err: Error) => res.writeHead(500).end(err.message));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Serves one @sigstore/mock handler on 127.0.0.1 (ephemeral port). */
export function serve(handler: Handler): Promise<{ server: Server; url: string }> {
  return serveRoutes({ [handler.path]: (body) => handler.fn(body) });
}

/**
 * Fulcio's legacy v1 API (`POST /api/v1/signingCert`, bearer token, base64 DER key; answers a PEM chain), which
 * cosign v2 still calls, translated onto the mock's v2 handler.
 */
function fulcioV1(v2: Handler): Route {
  return async (body, authorization) => {
    const request = JSON.parse(body) as {
      publicKey?: { content?: string; algorithm?: string };
      signedEmailAddress?: string;
    };
    // cosign sends base64 of the PEM (older clients: of the DER)
    const decoded = Buffer.from(request.publicKey?.content ?? '', 'base64');
    const pemKey = decoded.toString('utf8').startsWith('-----BEGIN')
      ? decoded.toString('utf8')
      : `-----BEGIN PUBLIC KEY-----\n${(decoded.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END PUBLIC KEY-----\n`;
    const answer = await v2.fn(
      JSON.stringify({
        credentials: { oidcIdentityToken: authorization.replace(/^Bearer\s+/i, '') },
        publicKeyRequest: {
          publicKey: { algorithm: 'ECDSA', content: pemKey },
          proofOfPossession: request.signedEmailAddress ?? '',
        },
      })
    );
    if (answer.statusCode !== 201 || typeof answer.response !== 'string') return answer;
    const chain = (
      JSON.parse(answer.response) as { signedCertificateEmbeddedSct: { chain: { certificates: string[] } } }
    ).signedCertificateEmbeddedSct.chain.certificates;
    return { statusCode: 201, response: chain.join(''), contentType: 'application/pem-certificate-chain' };
  };
}

/** Serves a mock Rekor, allocating the port first: the Rekor mock needs its own URL at initialisation. */
export async function serveLazy(
  make: (url: string) => Promise<Handler>
): Promise<{ server: Server; url: string }> {
  const slot: { handler?: Handler } = {};
  const served = await serve({
    path: '/api/v1/log/entries',
    fn: (body) =>
      slot.handler ? slot.handler.fn(body) : Promise.resolve({ statusCode: 503, response: 'starting' }),
  });
  slot.handler = await make(served.url);
  return served;
}

const b64 = (b: ArrayBufferView): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
/** A fresh ECDSA P-256 key pair (the mock CA, CT log and Rekor keys). */
export const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

/** trusted_root.json for a mock set-up: one Rekor, the Fulcio CA roots and one CT log, valid from `validFrom`. */
export function mockTrustedRoot(mock: {
  rekorURL: string;
  rekorPublicKey: Buffer;
  fulcioURL: string;
  caRoots: ArrayBufferView[];
  ctlog: { publicKey: Buffer; logID: ArrayBufferView };
  validFrom: string;
}): Record<string, unknown> {
  const { validFrom } = mock;
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: mock.rekorURL,
        hashAlgorithm: 'SHA2_256',
        publicKey: {
          rawBytes: b64(mock.rekorPublicKey),
          keyDetails: 'PKIX_ECDSA_P256_SHA_256',
          validFor: { start: validFrom },
        },
        logId: { keyId: b64(createHash('sha256').update(mock.rekorPublicKey).digest()) },
      },
    ],
    certificateAuthorities: mock.caRoots.map((root) => ({
      subject: { organization: 'sigstore-mock', commonName: 'mock fulcio' },
      uri: mock.fulcioURL,
      certChain: { certificates: [{ rawBytes: b64(root) }] },
      validFor: { start: validFrom },
    })),
    ctlogs: [
      {
        baseUrl: 'http://127.0.0.1/ctlog',
        hashAlgorithm: 'SHA2_256',
        publicKey: {
          rawBytes: b64(mock.ctlog.publicKey),
          keyDetails: 'PKIX_ECDSA_P256_SHA_256',
          validFor: { start: validFrom },
        },
        logId: { keyId: b64(mock.ctlog.logID) },
      },
    ],
    timestampAuthorities: [],
  };
}

/**
 * An OIDC identity token for the mock Fulcio: it decodes the token without verifying it, like a CA that trusts its
 * OIDC front end.
 */
export function unsignedIdToken(claims: Record<string, unknown>): string {
  const part = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.unsigned`;
}

export async function startKeylessMock(): Promise<KeylessMock> {
  const validFrom = new Date(Date.now() - 60_000).toISOString();
  const ctlog = await initializeCTLog(keyPair());
  const ca = await initializeCA(keyPair(), ctlog);
  const pastCa = await initializeCA(keyPair(), ctlog, new Date(Date.now() - 3_600_000));
  const tlogKeys: Record<'trusted' | 'rogue', Buffer> = { trusted: Buffer.alloc(0), rogue: Buffer.alloc(0) };
  const rekorTrusted = await serveLazy(async (url) => {
    const tlog = await initializeTLog(url, keyPair());
    tlogKeys.trusted = tlog.publicKey;
    return rekorHandler(tlog, { strict: true });
  });
  const rekorRogue = await serveLazy(async (url) => {
    const tlog = await initializeTLog(url, keyPair());
    tlogKeys.rogue = tlog.publicKey;
    return rekorHandler(tlog, { strict: true });
  });
  const fulcioV2 = fulcioHandler(ca, { strict: true });
  const fulcio = await serveRoutes({
    [fulcioV2.path]: (body) => fulcioV2.fn(body),
    '/api/v1/signingCert': fulcioV1(fulcioV2),
  });
  const fulcioPast = await serve(fulcioHandler(pastCa, { strict: true }));
  const servers = [rekorTrusted.server, rekorRogue.server, fulcio.server, fulcioPast.server];

  const trustedRoot = mockTrustedRoot({
    rekorURL: rekorTrusted.url,
    rekorPublicKey: tlogKeys.trusted,
    fulcioURL: fulcio.url,
    caRoots: [ca.rootCertificate, pastCa.rootCertificate],
    ctlog,
    validFrom,
  });

  const signerFor = (o: SignOptions): FulcioSigner => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: MOCK_ISSUER,
      sub: MOCK_SUBJECT,
      aud: 'sigstore',
      iat: now,
      exp: now + 600,
      ...o.claims,
    };
    const token = unsignedIdToken(claims);
    const identityProvider: IdentityProvider = { getToken: () => Promise.resolve(token) };
    return new FulcioSigner({ identityProvider, fulcioBaseURL: o.expiredLeaf ? fulcioPast.url : fulcio.url });
  };
  const witnessesFor = (o: SignOptions, entryType?: 'intoto') => {
    const rekor = o.rekor ?? 'trusted';
    if (rekor === 'none') return [];
    const url = rekor === 'trusted' ? rekorTrusted.url : rekorRogue.url;
    return [new RekorWitness({ rekorBaseURL: url, ...(entryType ? { entryType } : {}) })];
  };

  return {
    trustedRoot,
    rekorURL: (which) => (which === 'trusted' ? rekorTrusted.url : rekorRogue.url),
    async signMessage(payload, o = {}) {
      const builder = new MessageSignatureBundleBuilder({ signer: signerFor(o), witnesses: witnessesFor(o) });
      return bundleToJSON(await builder.create({ data: payload }));
    },
    async signStatement(statement, o = {}) {
      const builder = new DSSEBundleBuilder({ signer: signerFor(o), witnesses: witnessesFor(o, 'intoto') });
      return bundleToJSON(
        await builder.create({
          data: Buffer.from(JSON.stringify(statement)),
          type: 'application/vnd.in-toto+json',
        })
      );
    },
    async stop() {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            })
        )
      );
    },
  };
}

const pem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;

/**
 * The cosign `.sig` layer annotations for a message-signature bundle (what cosign keyless writes: signature,
 * certificate, chain, and the Rekor bundle with its SET), so keyless signatures can be attached the legacy way.
 */
export function legacyAnnotationsFromBundle(bundle: SerializedBundle, chainPem = ''): Record<string, string> {
  const vm = bundle.verificationMaterial;
  const certificate = vm.certificate?.rawBytes ?? vm.x509CertificateChain?.certificates[0]?.rawBytes;
  // key-signed bundles have no certificate: cosign then writes only the signature (and the Rekor bundle);
  // `.att` layers (DSSE) carry the signature inside the envelope blob, not in an annotation
  const annotations: Record<string, string> = {
    ...(bundle.messageSignature
      ? { 'dev.cosignproject.cosign/signature': bundle.messageSignature.signature }
      : {}),
    ...(certificate ? { 'dev.sigstore.cosign/certificate': pem(Buffer.from(certificate, 'base64')) } : {}),
  };
  if (chainPem) annotations['dev.sigstore.cosign/chain'] = chainPem;
  const entry = vm.tlogEntries?.[0];
  if (entry?.inclusionPromise) {
    annotations['dev.sigstore.cosign/bundle'] = JSON.stringify({
      SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
      Payload: {
        body: entry.canonicalizedBody,
        integratedTime: Number(entry.integratedTime),
        logIndex: Number(entry.logIndex),
        logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex'),
      },
    });
  }
  return annotations;
}

/** A cosign `.att` layer for a DSSE bundle: the envelope JSON as the blob, certificate and Rekor bundle annotations. */
export function legacyAttestationLayer(bundle: SerializedBundle): {
  blob: Buffer;
  annotations: Record<string, string>;
} {
  if (!bundle.dsseEnvelope) throw new Error('bundle is not a DSSE envelope');
  const { payload, payloadType, signatures } = bundle.dsseEnvelope;
  return {
    blob: Buffer.from(
      JSON.stringify({
        payloadType,
        payload,
        signatures: signatures.map((sig) => ({ keyid: sig.keyid, sig: sig.sig })),
      })
    ),
    annotations: legacyAnnotationsFromBundle(bundle),
  };
}

/** The leaf certificate of a keyless bundle (for assertions on identity and validity). */
export function bundleLeaf(bundle: SerializedBundle): X509Certificate {
  const vm = bundle.verificationMaterial;
  const der = vm.certificate?.rawBytes ?? vm.x509CertificateChain?.certificates[0]?.rawBytes;
  if (!der) throw new Error('bundle has no certificate');
  return new X509Certificate(Buffer.from(der, 'base64'));
}
