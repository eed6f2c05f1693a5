/**
 * The baseline of `npm run bench` (performance.md B2/B4): a bare express + Map HTTPS server answering the same
 * ProviderRequest/ProviderResponse exchange as sigpin's cached resolve, with nothing else (no validation beyond
 * JSON, no metrics, no logging). sigpin's cached figures are compared with this one measured in the same run,
 * so machine noise cancels.
 *
 *   node bench/baseline-server.ts <cert.pem> <key.pem> <entries.json>   (prints {"port":N} on stdout)
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';

const [certFile, keyFile, entriesFile] = process.argv.slice(2);
if (!certFile || !keyFile || !entriesFile) {
  process.stderr.write('usage: baseline-server.ts CERT KEY ENTRIES_JSON\n');
  process.exit(2);
}
const entries = JSON.parse(readFileSync(entriesFile, 'utf8')) as Record<string, string>;
const cache = new Map<string, string>(Object.entries(entries));

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '1mb', type: () => true }));
app.post('/gatekeeper/v1/resolve', (req, res) => {
  const keys = (req.body as { request?: { keys?: string[] } }).request?.keys ?? [];
  const items = keys.map((key) => {
    const value = cache.get(key);
    return value === undefined ? { key, error: 'NOT_FOUND: not cached' } : { key, value };
  });
  res.json({
    apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
    kind: 'ProviderResponse',
    response: { idempotent: true, items },
  });
});

const server = https.createServer(
  { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.3' },
  app
);
server.keepAliveTimeout = 95_000;
server.headersTimeout = 100_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
