/**
 * A fake Kubernetes API server (none runs here) that answers only TokenReviews, the way the real one does for a
 * projected ServiceAccount token: authenticated when the token is the one it issued and the review asks for an
 * audience the token carries. Plain HTTP on 127.0.0.1, ephemeral port; every review is recorded.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';

export interface TokenReviewRecord {
  token: string;
  audiences: string[];
  authenticated: boolean;
}

export interface FakeTokenReviewServer {
  url: string;
  reviews: TokenReviewRecord[];
  /** Writes a kubeconfig pointing at this server and returns its path. */
  writeKubeconfig(path: string): Promise<string>;
  close(): Promise<void>;
}

export async function startFakeTokenReviewServer(issued: {
  token: string;
  audiences: string[];
  username: string;
}): Promise<FakeTokenReviewServer> {
  const reviews: TokenReviewRecord[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url?.split('?')[0] !== '/apis/authentication.k8s.io/v1/tokenreviews') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 }));
        return;
      }
      const review = JSON.parse(body) as { spec?: { token?: string; audiences?: string[] } };
      const token = review.spec?.token ?? '';
      const audiences = review.spec?.audiences ?? [];
      const matching = audiences.filter((a) => issued.audiences.includes(a));
      const authenticated = token === issued.token && matching.length > 0;
      reviews.push({ token, audiences, authenticated });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: review.spec ?? {},
          status: authenticated
            ? { authenticated: true, audiences: matching, user: { username: issued.username } }
            : { authenticated: false, error: 'invalid bearer token' },
        })
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    reviews,
    async writeKubeconfig(path) {
      await writeFile(
        path,
        [
          'apiVersion: v1',
          'kind: Config',
          // client-node refuses plain http unless TLS verification is off (there is no TLS to verify here)
          `clusters: [{ name: fake, cluster: { server: "${url}", insecure-skip-tls-verify: true } }]`,
          'users: [{ name: sigpin, user: { token: sigpin-service-account-token } }]',
          'contexts: [{ name: fake, context: { cluster: fake, user: sigpin } }]',
          'current-context: fake',
          '',
        ].join('\n')
      );
      return path;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
