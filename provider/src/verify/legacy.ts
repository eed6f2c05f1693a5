/**
 * Legacy cosign attachments (`sha256-<hex>.sig` simple-signing layers, `.att` DSSE layers) converted to sigstore
 * bundle form (protocols.md 5.5), so one verifier serves both formats. Annotation values are untrusted input:
 * they are parsed with schemas, and a malformed one makes the layer invalid rather than silently ignored.
 */
import { createHash } from 'node:crypto';
import { BUNDLE_V01_MEDIA_TYPE } from '@sigstore/bundle';
import { z } from 'zod';

export const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
export const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
export const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
export const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';
export const ANNOTATION_RFC3161 = 'dev.sigstore.cosign/rfc3161timestamp';

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');

/** cosign `pkg/cosign/bundle/rekor.go` RekorBundle. */
const rekorBundleSchema = z.object({
  SignedEntryTimestamp: base64.min(1),
  Payload: z.object({
    body: base64.min(1),
    integratedTime: z.number().int().nonnegative(),
    logIndex: z.number().int().nonnegative(),
    logID: z.string().regex(/^[0-9a-f]{64}$/, 'not a hex sha256'),
  }),
});

const rekorBodySchema = z.object({ kind: z.string().min(1), apiVersion: z.string().min(1) });

const rfc3161Schema = z.object({ SignedRFC3161Timestamp: base64.min(1) });

/** A DSSE envelope as cosign writes it into `.att` layers. */
const envelopeSchema = z.object({
  payloadType: z.string().min(1),
  payload: base64.min(1),
  signatures: z.array(z.object({ keyid: z.string().optional(), sig: base64.min(1) })).length(1),
});

export class LegacyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LegacyFormatError';
  }
}

function parseJsonWith<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new LegacyFormatError(`${what} is not JSON`);
  }
  const parsed = schema.safeParse(doc);
  if (!parsed.success)
    throw new LegacyFormatError(`${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** The DER of the first certificate in a PEM text. */
export function firstCertificateDer(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!m?.[1]) throw new LegacyFormatError('certificate annotation holds no PEM certificate');
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

function tlogEntriesOf(annotations: Record<string, string>): unknown[] {
  const text = annotations[ANNOTATION_BUNDLE];
  if (text === undefined) return [];
  const rekor = parseJsonWith(rekorBundleSchema, text, 'bundle annotation');
  const body = Buffer.from(rekor.Payload.body, 'base64');
  const kind = parseJsonWith(rekorBodySchema, body.toString('utf8'), 'Rekor entry body');
  return [
    {
      logIndex: String(rekor.Payload.logIndex),
      logId: { keyId: Buffer.from(rekor.Payload.logID, 'hex').toString('base64') },
      kindVersion: { kind: kind.kind, version: kind.apiVersion },
      integratedTime: String(rekor.Payload.integratedTime),
      inclusionPromise: { signedEntryTimestamp: rekor.SignedEntryTimestamp },
      canonicalizedBody: rekor.Payload.body,
    },
  ];
}

function verificationMaterialOf(annotations: Record<string, string>): Record<string, unknown> {
  const certificate = annotations[ANNOTATION_CERTIFICATE];
  const rfc3161 = annotations[ANNOTATION_RFC3161];
  const timestamps =
    rfc3161 === undefined
      ? {}
      : {
          timestampVerificationData: {
            rfc3161Timestamps: [
              {
                signedTimestamp: parseJsonWith(rfc3161Schema, rfc3161, 'RFC 3161 annotation')
                  .SignedRFC3161Timestamp,
              },
            ],
          },
        };
  return {
    // the chain annotation is not used: intermediates must come from the trusted root (protocols.md 5.5)
    ...(certificate
      ? { certificate: { rawBytes: firstCertificateDer(certificate).toString('base64') } }
      : { publicKey: { hint: '' } }),
    tlogEntries: tlogEntriesOf(annotations),
    ...timestamps,
  };
}

/**
 * A `.sig` layer (payload blob + annotations) as a message-signature bundle whose artifact is the payload.
 * The v0.1 media type is used because cosign's Rekor bundle carries a SET but no inclusion proof.
 */
export function legacySignatureToBundle(payload: Buffer, annotations: Record<string, string>): unknown {
  const signature = annotations[ANNOTATION_SIGNATURE];
  if (signature === undefined || !base64.safeParse(signature).success || signature === '') {
    throw new LegacyFormatError(`layer has no valid ${ANNOTATION_SIGNATURE} annotation`);
  }
  return {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: verificationMaterialOf(annotations),
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') },
      signature,
    },
  };
}

/** An `.att` layer (a DSSE envelope blob + annotations) as a DSSE bundle. */
export function legacyAttestationToBundle(envelope: Buffer, annotations: Record<string, string>): unknown {
  const env = parseJsonWith(envelopeSchema, envelope.toString('utf8'), 'DSSE envelope');
  return {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: verificationMaterialOf(annotations),
    dsseEnvelope: {
      payload: env.payload,
      payloadType: env.payloadType,
      signatures: env.signatures.map((s) => ({ sig: s.sig, keyid: s.keyid ?? '' })),
    },
  };
}
