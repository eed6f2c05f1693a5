/**
 * Trust material per authority. Loading (files, Secrets) happens once, into a plain serializable
 * `AuthorityMaterial`, so worker threads can rebuild the same authorities; `compileAuthority` turns material into
 * parsed KeyObjects and a `@sigstore/verify` TrustMaterial, once per process.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import type { AuthorityConfig } from '../config/index.ts';

export interface IdentityMaterial {
  issuer?: string;
  issuerRegExp?: string;
  subject?: string;
  subjectRegExp?: string;
  /** Extra Fulcio certificate claims by dotted OID: exact values. */
  extensions: Record<string, string>;
}

/** Everything an authority's verdicts depend on, as plain data (structured-clone safe, hashed for the fingerprint). */
export interface AuthorityMaterial {
  name: string;
  kind: 'key' | 'keyless';
  /** `required`: a verified transparency-log entry must be present. Keyless authorities always require one. */
  tlog: 'optional' | 'required';
  /** Key authorities: the SPKI DER of the public key, base64. */
  publicKey?: string;
  /** The trusted root JSON (keyless: CAs, CT logs, tlogs; key: the tlogs whose SETs/proofs are checked). */
  trustedRoot?: unknown;
  identities?: IdentityMaterial[];
}

export interface CompiledIdentity {
  matchesIssuer(issuer: string): boolean;
  matchesSubject(subject: string): boolean;
  extensions: Array<[oid: string, value: string]>;
}

/** An authority ready to verify: parsed once, shared by every request. */
export interface TrustedAuthority {
  name: string;
  kind: 'key' | 'keyless';
  tlog: 'optional' | 'required';
  publicKey?: KeyObject;
  trust: TrustMaterial;
  /** True when the trusted root names at least one transparency log (so present entries can be checked). */
  hasTlogs: boolean;
  identities: CompiledIdentity[];
}

export const EMPTY_TRUSTED_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

const SUPPORTED_EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** Parses a PEM public key (SPKI, or a certificate whose key is used) and rejects key types cosign never uses. */
export function parsePublicKey(pem: string | Buffer, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`${what}: not a PEM public key (${(err as Error).message})`);
  }
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    if (!SUPPORTED_EC_CURVES.has(curve)) throw new Error(`${what}: unsupported EC curve ${curve}`);
  } else if (type === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
      throw new Error(`${what}: RSA key shorter than 2048 bits`);
  } else if (type !== 'ed25519') {
    throw new Error(`${what}: unsupported key type ${type}`);
  }
  return key;
}

async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${what}: ${file} is not JSON (${(err as Error).message})`);
  }
}

export interface LoadOptions {
  baseDir: string;
  readSecret?: (namespace: string, name: string, key: string) => Promise<Buffer>;
}

/** Reads one authority's keys and roots (files, inline PEM, Secret) into plain material. */
export async function loadAuthorityMaterial(
  config: AuthorityConfig,
  o: LoadOptions
): Promise<AuthorityMaterial> {
  const what = `authority "${config.name}"`;
  const rootPath = config.trustedRoot;
  if (config.key) {
    let pem: string | Buffer;
    if (config.key.pem !== undefined) pem = config.key.pem;
    else if (config.key.path !== undefined) {
      const file = path.resolve(o.baseDir, config.key.path);
      try {
        pem = await readFile(file);
      } catch (err) {
        throw new Error(`${what}: cannot read key ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
      }
    } else if (config.key.secretRef !== undefined) {
      const ref = config.key.secretRef;
      if (!o.readSecret)
        throw new Error(`${what}: key.secretRef needs Kubernetes access (kubernetes.enabled)`);
      pem = await o.readSecret(ref.namespace, ref.name, ref.key);
    } else {
      throw new Error(`${what}: key needs path, pem or secretRef`);
    }
    const key = parsePublicKey(pem, what);
    const trustedRoot = rootPath ? await readJsonFile(path.resolve(o.baseDir, rootPath), what) : undefined;
    if (config.tlog === 'required' && trustedRoot === undefined) {
      throw new Error(`${what}: tlog: required needs trustedRoot (the transparency logs to trust)`);
    }
    return {
      name: config.name,
      kind: 'key',
      tlog: config.tlog,
      publicKey: key.export({ type: 'spki', format: 'der' }).toString('base64'),
      ...(trustedRoot === undefined ? {} : { trustedRoot }),
    };
  }
  if (config.keyless) {
    const trustedRoot = await readJsonFile(path.resolve(o.baseDir, config.keyless.trustedRoot), what);
    return {
      name: config.name,
      kind: 'keyless',
      tlog: 'required',
      trustedRoot,
      identities: config.keyless.identities.map((i) => ({
        ...(i.issuer === undefined ? {} : { issuer: i.issuer }),
        ...(i.issuerRegExp === undefined ? {} : { issuerRegExp: i.issuerRegExp }),
        ...(i.subject === undefined ? {} : { subject: i.subject }),
        ...(i.subjectRegExp === undefined ? {} : { subjectRegExp: i.subjectRegExp }),
        extensions: { ...(i.extensions ?? {}) },
      })),
    };
  }
  throw new Error(`${what}: needs key or keyless`);
}

/**
 * Identity regular expressions always match from the start of the value (an unanchored `acme` would accept
 * `https://evil.example/acme`); the end is anchored only when the user writes `$`.
 */
export function anchoredRegExp(source: string): RegExp {
  return new RegExp(`^(?:${source})`, 'u');
}

function compileIdentity(i: IdentityMaterial, what: string): CompiledIdentity {
  const exactOr = (
    exact: string | undefined,
    re: string | undefined,
    field: string
  ): ((v: string) => boolean) => {
    if (exact !== undefined) return (v) => v === exact;
    if (re !== undefined) {
      let compiled: RegExp;
      try {
        compiled = anchoredRegExp(re);
      } catch (err) {
        throw new Error(
          `${what}: ${field}RegExp is not a valid regular expression (${(err as Error).message})`
        );
      }
      return (v) => compiled.test(v);
    }
    throw new Error(`${what}: identity needs ${field} or ${field}RegExp`);
  };
  return {
    matchesIssuer: exactOr(i.issuer, i.issuerRegExp, 'issuer'),
    matchesSubject: exactOr(i.subject, i.subjectRegExp, 'subject'),
    extensions: Object.entries(i.extensions),
  };
}

/** Every key and CA in a trusted root must say from when it is valid: a missing start is malformed, not "always". */
function assertValidityStarts(json: Record<string, unknown>, what: string): void {
  const entries = (key: string): unknown[] => (Array.isArray(json[key]) ? (json[key] as unknown[]) : []);
  const startOf = (v: unknown): unknown =>
    (v as { validFor?: { start?: unknown } } | undefined)?.validFor?.start;
  for (const key of ['tlogs', 'ctlogs']) {
    entries(key).forEach((e, n) => {
      if (typeof startOf((e as { publicKey?: unknown }).publicKey) !== 'string') {
        throw new Error(`${what}: trusted root ${key}[${n}] has no publicKey.validFor.start`);
      }
    });
  }
  for (const key of ['certificateAuthorities', 'timestampAuthorities']) {
    entries(key).forEach((e, n) => {
      if (typeof startOf(e) !== 'string')
        throw new Error(`${what}: trusted root ${key}[${n}] has no validFor.start`);
    });
  }
}

function parseTrustedRoot(json: unknown, what: string): TrustedRoot {
  if (typeof json !== 'object' || json === null)
    throw new Error(`${what}: trusted root is not a JSON object`);
  assertValidityStarts(json as Record<string, unknown>, what);
  try {
    return TrustedRoot.fromJSON(json);
  } catch (err) {
    throw new Error(`${what}: invalid trusted root (${(err as Error).message})`);
  }
}

/** Parses material once: KeyObjects, trust material, identity matchers. Throws on anything malformed. */
export function compileAuthority(m: AuthorityMaterial): TrustedAuthority {
  const what = `authority "${m.name}"`;
  const root = parseTrustedRoot(m.trustedRoot ?? EMPTY_TRUSTED_ROOT, what);
  if (m.kind === 'key') {
    if (!m.publicKey) throw new Error(`${what}: no public key`);
    const publicKey = parsePublicKey(
      createPublicKey({ key: Buffer.from(m.publicKey, 'base64'), format: 'der', type: 'spki' }).export({
        type: 'spki',
        format: 'pem',
      }),
      what
    );
    // Only the transparency logs of the root matter for a key authority: certificates never make a key trusted.
    const keyRoot: TrustedRoot = {
      ...root,
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [],
    };
    const trust = toTrustMaterial(keyRoot, () => ({ publicKey, validFor: () => true }));
    return {
      name: m.name,
      kind: 'key',
      tlog: m.tlog,
      publicKey,
      trust,
      hasTlogs: trust.tlogs.length > 0,
      identities: [],
    };
  }
  const trust = toTrustMaterial(root);
  if (trust.certificateAuthorities.length === 0)
    throw new Error(`${what}: trusted root has no certificate authority`);
  const identities = (m.identities ?? []).map((i) => compileIdentity(i, what));
  if (identities.length === 0) throw new Error(`${what}: keyless needs at least one identity`);
  return {
    name: m.name,
    kind: 'keyless',
    tlog: 'required',
    trust,
    hasTlogs: trust.tlogs.length > 0,
    identities,
  };
}

/** sha256 over every authority's material, in config order: changes whenever keys, roots or identities change. */
export function fingerprintMaterials(materials: readonly AuthorityMaterial[]): string {
  const h = createHash('sha256');
  h.update('sigpin-authorities-v1\n');
  for (const m of materials) h.update(`${JSON.stringify(m)}\n`);
  return h.digest('hex');
}
