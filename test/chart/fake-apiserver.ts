/**
 * A fake Kubernetes API server (no API server runs here) answering just what `helm template --dry-run=server` asks
 * for: version, discovery of the core group, and GETs of Secrets, so the chart's `lookup` calls see what an
 * earlier install stored. Plain HTTP on 127.0.0.1, ephemeral port; every request is recorded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeSecret {
  namespace: string;
  name: string;
  data: Record<string, string>; // plain values; served base64-encoded as the API does
}

export interface FakeApiServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function notFound(res: ServerResponse, path: string): void {
  json(res, 404, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${path} not found`,
    reason: 'NotFound',
    code: 404,
  });
}

/** A kind the fake server's discovery lists (Helm 4 maps every rendered object to a resource before it renders). */
export interface FakeKind {
  apiVersion: string;
  kind: string;
  namespaced: boolean;
}

function resourceOf(k: FakeKind): Record<string, unknown> {
  const singular = k.kind.toLowerCase();
  const plural = singular.endsWith('y')
    ? `${singular.slice(0, -1)}ies`
    : singular.endsWith('s')
      ? `${singular}es`
      : `${singular}s`;
  return {
    name: plural,
    singularName: singular,
    namespaced: k.namespaced,
    kind: k.kind,
    verbs: ['get', 'list', 'create'],
  };
}

export async function startFakeApiServer(
  secrets: FakeSecret[],
  kinds: FakeKind[] = []
): Promise<FakeApiServer> {
  const all: FakeKind[] = [
    { apiVersion: 'v1', kind: 'Secret', namespaced: true },
    { apiVersion: 'v1', kind: 'ConfigMap', namespaced: true },
    ...kinds.filter((k) => !(k.apiVersion === 'v1' && (k.kind === 'Secret' || k.kind === 'ConfigMap'))),
  ];
  const groupVersions = [...new Set(all.map((k) => k.apiVersion).filter((v) => v.includes('/')))];
  const resourceList = (groupVersion: string): Record<string, unknown> => ({
    kind: 'APIResourceList',
    groupVersion,
    resources: [
      ...new Map(
        all.filter((k) => k.apiVersion === groupVersion).map((k) => [k.kind, resourceOf(k)])
      ).values(),
    ],
  });
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push(`${req.method} ${path}`);
    if (path === '/version') {
      return json(res, 200, { major: '1', minor: '35', gitVersion: 'v1.35.0', platform: 'linux/amd64' });
    }
    if (path === '/api')
      return json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (path === '/apis') {
      const groups = [...new Set(groupVersions.map((gv) => gv.split('/')[0] as string))].map((name) => {
        const versions = groupVersions
          .filter((gv) => gv.startsWith(`${name}/`))
          .map((gv) => ({ groupVersion: gv, version: gv.split('/')[1] }));
        return { name, versions, preferredVersion: versions[0] };
      });
      return json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
    }
    if (path === '/api/v1') return json(res, 200, resourceList('v1'));
    const gv = /^\/apis\/([^/]+\/[^/]+)$/.exec(path)?.[1];
    if (gv && groupVersions.includes(gv)) return json(res, 200, resourceList(gv));
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(path);
    if (m && req.method === 'GET') {
      const secret = secrets.find((s) => s.namespace === m[1] && s.name === m[2]);
      if (!secret) return notFound(res, path);
      return json(res, 200, {
        apiVersion: 'v1',
        kind: 'Secret',
        // what an earlier `helm install` of release "sigpin" leaves on its objects (Helm 4 checks ownership)
        metadata: {
          name: secret.name,
          namespace: secret.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'Helm' },
          annotations: {
            'meta.helm.sh/release-name': 'sigpin',
            'meta.helm.sh/release-namespace': secret.namespace,
          },
        },
        type: 'Opaque',
        data: Object.fromEntries(
          Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])
        ),
      });
    }
    return notFound(res, path);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A kubeconfig pointing at the fake server. */
export function kubeconfigFor(url: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fake', cluster: { server: url } }],
    users: [{ name: 'fake', user: { token: 'fake-token' } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    'current-context': 'fake',
  });
}
