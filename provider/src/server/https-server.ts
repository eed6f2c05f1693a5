import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import { secureContextOptions, type TlsMaterial } from './tls.ts';

export interface HttpsServerOptions {
  host: string;
  port: number;
  tls: TlsMaterial;
  keepAliveTimeoutMs: number;
  logger: Logger;
}

export interface RunningServer {
  readonly server: https.Server;
  readonly port: number;
  readonly url: string;
  /** Swaps certificate, key and client CA for new connections (hot reload). */
  reloadTls(tls: TlsMaterial): void;
  /** Stops accepting, lets in-flight requests finish (bounded), then closes idle keep-alive connections. */
  close(graceMs?: number): Promise<void>;
}

export async function startHttpsServer(
  handler: RequestListener,
  o: HttpsServerOptions
): Promise<RunningServer> {
  const server = https.createServer(
    {
      ...secureContextOptions(o.tls),
      // Kyverno speaks TLS 1.2+ and never sends a client certificate; Gatekeeper routes demand 1.3 and check the
      // certificate per route (client-auth.ts), so the socket only asks for one.
      minVersion: 'TLSv1.2',
      requestCert: o.tls.ca !== undefined,
      rejectUnauthorized: false,
    },
    handler
  );
  // Gatekeeper keeps idle connections for 90 s and does not retry a POST the server closed under it.
  server.keepAliveTimeout = o.keepAliveTimeoutMs;
  server.headersTimeout = o.keepAliveTimeoutMs + 5_000;
  server.requestTimeout = 30_000;
  server.on('tlsClientError', (err) =>
    o.logger.debug({ err: { message: err.message } }, 'TLS handshake failed')
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  return {
    server,
    port,
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    reloadTls(tls) {
      server.setSecureContext({ ...secureContextOptions(tls) });
    },
    close(graceMs = 10_000) {
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
