import express, { type NextFunction, type Request, type Response } from 'express';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import {
  parseProviderRequest,
  providerResponse,
  RequestError,
  type LookupService,
  type Route,
} from '../lookup/index.ts';
import { MAX_LOOKUP_KEY_LENGTH } from '../reference/index.ts';
import { checkGatekeeperClient, type GatekeeperClientPolicy } from './client-auth.ts';
import type { Metrics } from './metrics.ts';
import type { BearerAuthenticator } from './token-review.ts';

export type Engine = 'gatekeeper' | 'kyverno';

export interface AppOptions {
  lookup: LookupService;
  metrics: Metrics;
  logger: Logger;
  maxKeys: number;
  bodyLimitBytes: number;
  timeouts: Record<Route, number>;
  gatekeeperClients: GatekeeperClientPolicy;
  kyvernoAuth?: BearerAuthenticator;
  /** Readiness: config loaded and (when required) the shared cache reachable. */
  ready: () => Promise<boolean>;
}

const ROUTES: readonly Route[] = ['resolve', 'mutate', 'verify'];

function sendError(res: Response, status: number, message: string): void {
  res.status(status).json({ error: message });
}

export function createApp(o: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = await o.ready().catch(() => false);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(o.metrics.registry.contentType).send(await o.metrics.registry.metrics());
  });

  // Kyverno sends no Content-Type, so the body is read raw whatever it claims to be and parsed here.
  const rawBody = express.raw({ type: () => true, limit: o.bodyLimitBytes });

  for (const engine of ['gatekeeper', 'kyverno'] as const) {
    for (const route of ROUTES) {
      app.post(`/${engine}/v1/${route}`, authenticate(engine, o), rawBody, (req, res) =>
        handleLookup(engine, route, req, res, o)
      );
    }
  }

  app.use((_req: Request, res: Response) => sendError(res, 404, 'no such route'));
  // Express recognises error handlers by their four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      o.metrics.badRequests.inc({ reason: 'body_too_large' });
      return sendError(res, 400, `request body larger than ${o.bodyLimitBytes} bytes`);
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      o.metrics.badRequests.inc({ reason: 'unreadable_body' });
      return sendError(res, 400, `unreadable request body: ${e.message ?? 'bad request'}`);
    }
    o.logger.error({ err, path: req.path }, 'request failed');
    return sendError(res, 500, 'internal error');
  });
  return app;
}

function authenticate(engine: Engine, o: AppOptions) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (engine === 'gatekeeper') {
      const check = checkGatekeeperClient(req.socket as TLSSocket, o.gatekeeperClients);
      if (!check.ok) {
        o.metrics.badRequests.inc({ reason: 'client_certificate' });
        // Gatekeeper reads the body, not the status: a ProviderResponse with systemError shows operators the
        // real reason (it still denies) instead of "no answer from provider".
        res.status(check.status).json(providerResponse([], `UNAUTHORIZED: ${check.message}`));
        return;
      }
    } else if (o.kyvernoAuth) {
      const denied = await o.kyvernoAuth.check(req.get('authorization'));
      if (denied) {
        o.metrics.badRequests.inc({ reason: 'bearer_token' });
        return sendError(res, denied.status, denied.message);
      }
    }
    next();
  };
}

async function handleLookup(
  engine: Engine,
  route: Route,
  req: Request,
  res: Response,
  o: AppOptions
): Promise<void> {
  const started = process.hrtime.bigint();
  let status = 200;
  try {
    const keys = parseKeys(req.body, o);
    // The deadline also ends when the client goes away, so abandoned lookups stop waiting.
    const controller = new AbortController();
    const onClose = (): void => controller.abort();
    res.once('close', onClose);
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(o.timeouts[route])]);
    const outcome = await o.lookup.lookup(route, keys, signal);
    res.off('close', onClose);
    status = kyvernoFailureStatus(engine, req, outcome.items, outcome.systemError);
    res.status(status).json(providerResponse(outcome.items, outcome.systemError));
  } catch (err) {
    if (!(err instanceof RequestError)) throw err;
    status = 400;
    o.metrics.badRequests.inc({ reason: 'malformed_request' });
    sendError(res, 400, err.message);
  } finally {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    o.metrics.requestLatency.observe({ engine, route, status: String(status) }, seconds);
  }
}

function parseKeys(body: unknown, o: AppOptions): string[] {
  if (!Buffer.isBuffer(body) || body.length === 0)
    throw new RequestError('empty request body: expected a ProviderRequest');
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RequestError('request body is not JSON: expected a ProviderRequest');
  }
  return parseProviderRequest(document, { maxKeys: o.maxKeys, maxKeyLength: MAX_LOOKUP_KEY_LENGTH });
}

/**
 * Kyverno treats any non-2xx answer as a failed apiCall, which is how a ClusterPolicy mutation can be made to
 * block: with `?failOnError=true` a definitive item error answers 422 and a systemError 503, same JSON body.
 * Gatekeeper routes always answer 200 (Gatekeeper reads the body, not the status).
 */
function kyvernoFailureStatus(
  engine: Engine,
  req: Request,
  items: ReadonlyArray<{ error?: string }>,
  systemError: string | undefined
): number {
  if (engine !== 'kyverno' || req.query['failOnError'] !== 'true') return 200;
  if (systemError) return 503;
  return items.some((i) => i.error) ? 422 : 200;
}
