/**
 * A fake Kubernetes API server (node:http on 127.0.0.1) serving the few read endpoints sigpin uses:
 * ServiceAccounts and Secrets. No real API server runs here; this one answers like it (Status objects on 404/403).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface FakeObject {
  kind: 'ServiceAccount' | 'Secret';
  namespace: string;
  name: string;
  body: Record<string, unknown>;
}

export interface FakeApiServer {
  url: string;
  kubeConfig: KubeConfig;
  /** `METHOD path` of every request. */
  requests: string[];
  /** Objects by `kind/namespace/name`; tests may change them. */
  objects: Map<string, FakeObject>;
  /** Paths (prefixes) answered with this status instead. */
  failures: Map<string, number>;
  put(object: FakeObject): void;
  stop(): Promise<void>;
}

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
}

export async function startFakeApiServer(): Promise<FakeApiServer> {
  const requests: string[] = [];
  const objects = new Map<string, FakeObject>();
  const failures = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    res.setHeader('Content-Type', 'application/json');
    for (const [prefix, code] of failures) {
      if (path.startsWith(prefix)) {
        res
          .writeHead(code)
          .end(status(code, code === 403 ? 'Forbidden' : 'InternalError', 'injected failure'));
        return;
      }
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/(serviceaccounts|secrets)\/([^/]+)$/.exec(path);
    const kind = m?.[2] === 'secrets' ? 'Secret' : 'ServiceAccount';
    const object = m ? objects.get(`${kind}/${m[1]}/${m[3]}`) : undefined;
    if (req.method !== 'GET' || !object) {
      res.writeHead(404).end(status(404, 'NotFound', `${m?.[2] ?? 'object'} "${m?.[3] ?? ''}" not found`));
      return;
    }
    res.writeHead(200).end(
      JSON.stringify({
        apiVersion: 'v1',
        kind: object.kind,
        metadata: { name: object.name, namespace: object.namespace },
        ...object.body,
      })
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'sigpin', token: 'fake-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'sigpin' }],
    currentContext: 'fake',
  });
  return {
    url,
    kubeConfig,
    requests,
    objects,
    failures,
    put: (object) => objects.set(`${object.kind}/${object.namespace}/${object.name}`, object),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `{ data: { '.dockerconfigjson': base64(JSON) } }` for a dockerconfigjson Secret. */
export function dockerConfigSecret(
  namespace: string,
  name: string,
  auths: Record<string, unknown>
): FakeObject {
  const json = Buffer.from(JSON.stringify({ auths })).toString('base64');
  return {
    kind: 'Secret',
    namespace,
    name,
    body: { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': json } },
  };
}

export function serviceAccount(namespace: string, pullSecrets: string[], name = 'default'): FakeObject {
  return {
    kind: 'ServiceAccount',
    namespace,
    name,
    body: { imagePullSecrets: pullSecrets.map((n) => ({ name: n })) },
  };
}
