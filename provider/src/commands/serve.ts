import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { defaultConfig, loadConfigFile, type LoadedConfig } from '../config/index.ts';
import { createLogger } from '../logger.ts';
import { createRuntime } from '../runtime.ts';
import { createApp } from '../server/app.ts';
import { startHttpsServer, type RunningServer } from '../server/https-server.ts';
import { TlsFileWatcher, type TlsMaterial } from '../server/tls.ts';
import { BearerAuthenticator, kubernetesTokenReviewer } from '../server/token-review.ts';
import { resolveConfigPath } from '../config/index.ts';
import type { Runtime } from '../runtime.ts';

export interface ServeOptions {
  config?: string;
  port?: number;
  host?: string;
  /** Where the embedded-defaults mode writes its development CA. */
  stateDir?: string;
}

export interface Serving {
  server: RunningServer;
  runtime: Runtime;
  logger: Logger;
  stop(): Promise<void>;
}

/** The development TLS set of the embedded defaults: a CA (written to a file for caBundle) and a localhost leaf. */
async function devTls(stateDir: string, logger: Logger): Promise<TlsMaterial> {
  // X.509 issuing is loaded only here: a configured deployment never needs it.
  const { createCertificateAuthority, issueCertificate } = await import('../server/certificates.ts');
  const ca = await createCertificateAuthority('sigpin development CA', 30);
  const leaf = await issueCertificate(ca, {
    commonName: 'localhost',
    dnsNames: ['localhost', hostname()],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  await mkdir(stateDir, { recursive: true });
  const caFile = path.join(stateDir, 'dev-ca.pem');
  await writeFile(caFile, ca.certPem, { mode: 0o644 });
  logger.info({ caFile }, 'no TLS files configured: serving a development certificate; its CA is in caFile');
  process.stderr.write(`sigpin: development CA written to ${caFile}\n${ca.certPem}`);
  return { cert: leaf.certPem, key: leaf.keyPem };
}

export async function serve(o: ServeOptions): Promise<Serving> {
  const loaded: LoadedConfig = o.config ? await loadConfigFile(o.config) : defaultConfig();
  const { config } = loaded;
  const logger = createLogger({ level: config.log.level });
  const runtime = await createRuntime(loaded, logger);
  const tlsConfig = config.server.tls;
  const watcher =
    tlsConfig.certFile && tlsConfig.keyFile
      ? new TlsFileWatcher({
          certFile: resolveConfigPath(loaded, tlsConfig.certFile),
          keyFile: resolveConfigPath(loaded, tlsConfig.keyFile),
          ...(tlsConfig.clientCAFile
            ? { clientCAFile: resolveConfigPath(loaded, tlsConfig.clientCAFile) }
            : {}),
          intervalMs: tlsConfig.reloadInterval,
          logger: logger.child({ component: 'tls' }),
        })
      : undefined;
  const tls = watcher ? await watcher.load() : await devTls(o.stateDir ?? path.resolve('.sigpin'), logger);
  const kyvernoAuth = config.server.kyvernoAuth.tokenReview
    ? new BearerAuthenticator({
        review: await kubernetesTokenReviewer(
          config.kubernetes.kubeconfig ? resolveConfigPath(loaded, config.kubernetes.kubeconfig) : undefined
        ),
        audience: config.server.kyvernoAuth.audience,
        usernames: config.server.kyvernoAuth.usernames,
        cacheTtlMs: config.server.kyvernoAuth.cacheTTL,
        logger: logger.child({ component: 'auth' }),
      })
    : undefined;
  const app = createApp({
    lookup: runtime.lookup,
    metrics: runtime.metrics,
    logger,
    maxKeys: config.server.maxKeys,
    bodyLimitBytes: config.server.bodyLimitBytes,
    timeouts: config.server.timeouts,
    gatekeeperClients: { requireClientCert: tls.ca !== undefined, names: tlsConfig.clientNames },
    ...(kyvernoAuth ? { kyvernoAuth } : {}),
    ready: runtime.ready,
  });
  const server = await startHttpsServer(app, {
    host: o.host ?? config.server.host,
    port: o.port ?? config.server.port,
    tls,
    keepAliveTimeoutMs: config.server.keepAliveTimeout,
    logger,
  });
  watcher?.start((m) => server.reloadTls(m));
  logger.info({ url: server.url, config: loaded.source }, 'sigpin provider listening');
  return {
    server,
    runtime,
    logger,
    async stop() {
      watcher?.stop();
      await server.close();
      await runtime.close();
      logger.flush();
    },
  };
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      'state-dir': { type: 'string' },
    },
    strict: true,
  });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    process.stderr.write(`sigpin serve: --port must be 0-65535, got "${values.port}"\n`);
    return 2;
  }
  const serving = await serve({
    ...(values.config ? { config: values.config } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(values.host ? { host: values.host } : {}),
    ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
  });
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      serving.logger.info({ signal }, 'shutting down');
      void serving.stop().then(resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return 0;
}
