/**
 * A Docker Registry v2 token server on loopback for docker-registry (distribution 2.8) with `auth: token`
 * (https://distribution.github.io/distribution/spec/auth/token/).
 *
 *   GET /token?service=<svc>&scope=repository:<name>:<actions>[&scope=...]   optional Basic credentials
 *
 * Valid credentials get every requested action; anonymous callers get `pull` only when `anonymousPull` is set;
 * wrong credentials get 401. Tokens are ES256 JWTs whose `aud` is a plain string (what distribution 2.8
 * expects), with the signing certificate in `x5c` or its libtrust fingerprint in `kid`. Every request is
 * recorded so tests can count token round trips.
 */
import { createHash, createPrivateKey, randomUUID, sign, webcrypto, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';

export interface TokenServerOptions {
  /** JWT `iss`; the registry config must name the same issuer. Default `sigpin-test-issuer`. */
  issuer?: string;
  /** Default `service` when the request names none. Default `sigpin-test-registry`. */
  service?: string;
  /** Accepted Basic credentials; absent = nobody can authenticate. */
  username?: string;
  password?: string;
  /** `expires_in` in seconds. Default 300. */
  ttlSeconds?: number;
  /** How the JWT names its key. Default `x5c`. */
  keyMode?: 'x5c' | 'kid';
  /** Grant `pull` to anonymous requests. Default false. */
  anonymousPull?: boolean;
}

export interface TokenRequestRecord {
  /** `scope` parameters as sent (one entry per parameter). */
  scopes: string[];
  service: string | null;
  /** Authenticated user name, '' when anonymous. */
  subject: string;
  status: number;
}

export interface TokenServer {
  /** The realm URL to put in the registry config. */
  realm: string;
  issuer: string;
  service: string;
  /** PEM certificate of the signing key: the registry's `rootcertbundle`. */
  certPem: string;
  /** Every token request so far, in order. */
  requests(): TokenRequestRecord[];
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** libtrust KeyID: base32(sha256(SPKI DER)[:30]) in 4-character groups joined by ':'. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of hash) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return (out.match(/.{4}/g) ?? []).join(':');
}

/** `type:name:actions`; the name may contain ':' (a registry port), the actions are after the last one. */
function parseScope(scope: string): Access | undefined {
  const parts = scope.split(':');
  if (parts.length < 3) return undefined;
  return {
    type: parts[0] ?? '',
    name: parts.slice(1, -1).join(':'),
    actions: (parts.at(-1) ?? '').split(',').filter(Boolean),
  };
}

/** A fresh P-256 key and a self-signed certificate for it (the registry's trust anchor for tokens). */
async function createSigningCertificate(): Promise<{ privateKey: KeyObject; certPem: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'CN=sigpin test token signer',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 24 * 3600_000),
      signingAlgorithm: algorithm,
      keys,
    },
    webcrypto
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }),
    certPem: cert.toString('pem'),
  };
}

export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const issuer = options.issuer ?? 'sigpin-test-issuer';
  const service = options.service ?? 'sigpin-test-registry';
  const ttl = options.ttlSeconds ?? 300;
  const keyMode = options.keyMode ?? 'x5c';
  const signer = await createSigningCertificate();
  const privateKey = signer.privateKey;
  const cert = new X509Certificate(signer.certPem);
  const records: TokenRequestRecord[] = [];

  const signJwt = (claims: object): string => {
    const header: Record<string, unknown> = { typ: 'JWT', alg: 'ES256' };
    if (keyMode === 'kid') header.kid = libtrustKeyId(cert.publicKey);
    else header.x5c = [cert.raw.toString('base64')];
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 carries the raw r||s form, not DER
    const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(signature)}`;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token' || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    const record: TokenRequestRecord = {
      scopes,
      service: url.searchParams.get('service'),
      subject: '',
      status: 200,
    };
    records.push(record);
    const authorization = req.headers.authorization ?? '';
    if (authorization.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString();
      const colon = decoded.indexOf(':');
      const user = decoded.slice(0, colon);
      const pass = decoded.slice(colon + 1);
      if (
        colon < 0 ||
        options.username === undefined ||
        user !== options.username ||
        pass !== options.password
      ) {
        record.status = 401;
        res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="token"' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      record.subject = user;
    }
    const access: Access[] = [];
    for (const param of scopes) {
      for (const one of param.split(' ')) {
        const scope = parseScope(one);
        if (!scope) continue;
        const granted = record.subject
          ? scope.actions
          : options.anonymousPull
            ? scope.actions.filter((a) => a === 'pull')
            : [];
        access.push({ ...scope, actions: granted });
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({
      iss: issuer,
      sub: record.subject,
      aud: record.service ?? service,
      exp: now + ttl,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: ttl,
        issued_at: new Date(now * 1000).toISOString(),
      })
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    issuer,
    service,
    certPem: signer.certPem,
    requests: () => records.map((r) => ({ ...r, scopes: [...r.scopes] })),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
