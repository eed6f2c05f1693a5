/**
 * A fault-injecting HTTP proxy for resilience tests: it sits on 127.0.0.1 in front of a real docker-registry and
 * forwards every request unchanged, unless a fault is set, in which case the requests it matches are answered
 * with that fault instead. Faults are switched at run time, so a test can break the registry under load and heal
 * it again. The proxy records what it did with each request.
 *
 *   const proxy = await startFaultProxy(registry.url);
 *   proxy.setFault({ kind: 'status', status: 429, retryAfter: '1' }, manifestHeads);
 *   ... proxy.clear(); await proxy.stop();
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /** Holds the request for `delayMs` (or until the fault is cleared), then forwards it. */
  | { kind: 'slow'; delayMs: number }
  /** Resets the connection without answering (a registry that is down or crashed mid-request). */
  | { kind: 'down' }
  /** Answers this status with a small JSON error body (429 with Retry-After, 500, 503 ...). */
  | { kind: 'status'; status: number; retryAfter?: string }
  /** Forwards, but sends only the first half of the body (Content-Length kept) and then cuts the connection. */
  | { kind: 'truncate' }
  /** Forwards, with the Docker-Content-Digest header replaced. */
  | { kind: 'wrong-digest'; digest: string };

export interface ProxiedRequest {
  method: string;
  path: string;
  /** `forwarded`, or the kind of fault applied. */
  outcome: 'forwarded' | Fault['kind'];
}

export type RequestMatcher = (method: string, path: string) => boolean;

export interface FaultProxy {
  /** `127.0.0.1:PORT`: the registry part of image references going through the proxy. */
  host: string;
  url: string;
  setFault(fault: Fault, match?: RequestMatcher): void;
  /** Back to forwarding everything; requests held by a `slow` fault are forwarded now. */
  clear(): void;
  /** Everything the proxy saw since start (or since the last `resetLog`). */
  log(): ProxiedRequest[];
  resetLog(): void;
  stop(): Promise<void>;
}

/** Matches manifest requests (HEAD/GET of `/v2/<name>/manifests/<ref>`). */
export const manifestRequests: RequestMatcher = (_method, path) => /^\/v2\/.+\/manifests\//.test(path);

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let current: { fault: Fault; match: RequestMatcher } | undefined;
  let entries: ProxiedRequest[] = [];
  const held = new Set<() => void>();
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const active = current && current.match(method, path) ? current.fault : undefined;
    entries.push({ method, path, outcome: active ? active.kind : 'forwarded' });
    if (active?.kind === 'down') {
      req.socket.destroy();
      return;
    }
    if (active?.kind === 'status') {
      const body = JSON.stringify({ errors: [{ code: 'FAULT', message: `injected ${active.status}` }] });
      res.writeHead(active.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(active.retryAfter !== undefined ? { 'retry-after': active.retryAfter } : {}),
      });
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    const forward = (): void => {
      if (req.destroyed || res.destroyed) return;
      const upstreamReq = http.request(
        {
          host: target.hostname,
          port: target.port,
          method,
          path,
          headers: { ...req.headers, host: target.host },
          agent,
        },
        (upstreamRes) => {
          const headers = { ...upstreamRes.headers };
          if (active?.kind === 'wrong-digest' && headers['docker-content-digest'] !== undefined) {
            headers['docker-content-digest'] = active.digest;
          }
          res.writeHead(upstreamRes.statusCode ?? 502, headers);
          if (active?.kind === 'truncate') {
            const chunks: Buffer[] = [];
            upstreamRes.on('data', (c: Buffer) => chunks.push(c));
            upstreamRes.on('end', () => {
              const body = Buffer.concat(chunks);
              res.write(body.subarray(0, Math.floor(body.length / 2)));
              // Give the half body a moment to leave, then cut the connection mid-response.
              setTimeout(() => res.socket?.destroy(), 5);
            });
            return;
          }
          upstreamRes.pipe(res);
        }
      );
      upstreamReq.on('error', () => res.socket?.destroy());
      req.pipe(upstreamReq);
    };
    if (active?.kind === 'slow') {
      let timer: NodeJS.Timeout | undefined = undefined;
      const release = (): void => {
        clearTimeout(timer);
        held.delete(release);
        forward();
      };
      timer = setTimeout(release, active.delayMs);
      held.add(release);
      req.socket.once('close', () => {
        clearTimeout(timer);
        held.delete(release);
      });
      return;
    }
    forward();
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    setFault(fault, match = () => true) {
      current = { fault, match };
    },
    clear() {
      current = undefined;
      for (const release of [...held]) release();
    },
    log: () => [...entries],
    resetLog() {
      entries = [];
    },
    async stop() {
      current = undefined;
      held.clear();
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
