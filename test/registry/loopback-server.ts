/**
 * A programmable node:http server on 127.0.0.1 for what a real registry cannot be made to do (fault injection,
 * redirects, wrong digests). Tests using it say "fake" in their names. It records every request and counts
 * TCP connections, so tests can assert that nothing reached it.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface LoopbackServer {
  host: string;
  port: number;
  url: string;
  requests: RecordedRequest[];
  connections(): number;
  stop(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => unknown;

export async function startLoopbackServer(handler: Handler): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const index = requests.length;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    void Promise.resolve(handler(req, res, index)).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
