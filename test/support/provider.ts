import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type IssuedCertificate,
} from '../../provider/src/server/certificates.ts';

/**
 * A real sigpin provider as a child process (`node provider/bin/sigpin.js serve`), on 127.0.0.1 with an ephemeral
 * port and a serving certificate from a test CA. The config document is written as YAML beside the TLS files;
 * `server.tls` and `server.port` are filled in unless the document sets them.
 */
export interface TestProvider {
  url: string;
  port: number;
  dir: string;
  /** The CA that issued the serving certificate (and can issue client certificates). */
  ca: CertificateAuthority;
  /** That CA's certificate as a file (for clients that take a path). */
  caFile: string;
  /** The child's process id. */
  pid: number;
  /** False once the process has exited (crashed, killed or stopped). */
  running(): boolean;
  /** The /metrics text. */
  metrics(): Promise<string>;
  /** POST a JSON (or raw) body; returns status and parsed JSON (or text). */
  post(route: string, body: unknown, o?: PostOptions): Promise<{ status: number; body: unknown }>;
  get(route: string): Promise<{ status: number; text: string }>;
  /** A sample value from /metrics, summed over all label sets matching `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  logs(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface PostOptions {
  raw?: boolean;
  headers?: Record<string, string>;
  clientCert?: IssuedCertificate;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface StartProviderOptions {
  config: Record<string, unknown>;
  /** Extra files to write into the provider's folder (relative name -> content). */
  files?: Record<string, string | Buffer>;
  /** Reuse a folder (and its TLS files) across restarts. */
  dir?: string;
  ca?: CertificateAuthority;
  port?: number;
  env?: NodeJS.ProcessEnv;
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');

export async function startProvider(o: StartProviderOptions): Promise<TestProvider> {
  const dir = o.dir ?? (await mkdtemp(path.join(tmpdir(), 'sigpin-provider-')));
  const ca = o.ca ?? (await createCertificateAuthority('sigpin test CA'));
  const leaf = await issueCertificate(ca, {
    commonName: 'localhost',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  await writeFile(path.join(dir, 'tls.crt'), leaf.certPem);
  await writeFile(path.join(dir, 'tls.key'), leaf.keyPem);
  await writeFile(path.join(dir, 'ca.crt'), ca.certPem);
  for (const [name, content] of Object.entries(o.files ?? {})) await writeFile(path.join(dir, name), content);
  const server = (o.config['server'] ?? {}) as Record<string, unknown>;
  const document = {
    ...o.config,
    server: {
      host: '127.0.0.1',
      port: o.port ?? 0,
      ...server,
      tls: { certFile: 'tls.crt', keyFile: 'tls.key', ...((server['tls'] as object | undefined) ?? {}) },
    },
    log: { level: 'info', ...((o.config['log'] as object | undefined) ?? {}) },
  };
  const configFile = path.join(dir, 'config.yaml');
  await writeFile(configFile, stringify(document));

  const child = spawn(NODE, [path.join(ROOT, 'provider/bin/sigpin.js'), 'serve', '--config', configFile], {
    cwd: dir,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`provider did not start:\n${output}`)), 20_000);
    const onData = (): void => {
      const m = /"url":"https:\/\/[^"]*:(\d+)"[^\n]*listening/.exec(output);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`provider exited with ${code}:\n${output}`));
    });
  });
  const url = `https://127.0.0.1:${port}`;
  const agent = new Agent({ ca: ca.certPem, keepAlive: true });

  function send(method: string, route: string, body: string | Buffer | undefined, po: PostOptions = {}) {
    return new Promise<{ status: number; text: string }>((resolve, reject) => {
      const options: RequestOptions = {
        method,
        host: '127.0.0.1',
        port,
        path: route,
        headers: {
          ...(body !== undefined && !po.raw ? { 'content-type': 'application/json' } : {}),
          ...po.headers,
        },
        ...(po.clientCert || po.maxVersion
          ? {
              ca: ca.certPem,
              ...(po.clientCert ? { cert: po.clientCert.certPem, key: po.clientCert.keyPem } : {}),
              ...(po.maxVersion ? { maxVersion: po.maxVersion } : {}),
              agent: false,
            }
          : { agent }),
      };
      const req = request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  return {
    url,
    port,
    dir,
    ca,
    caFile: path.join(dir, 'ca.crt'),
    pid: child.pid ?? 0,
    running: () => child.exitCode === null && child.signalCode === null,
    metrics: async () => (await send('GET', '/metrics', undefined)).text,
    async post(route, body, po = {}) {
      const payload = po.raw ? (body as string | Buffer) : JSON.stringify(body);
      const { status, text } = await send('POST', route, payload, po);
      try {
        return { status, body: JSON.parse(text) as unknown };
      } catch {
        return { status, body: text };
      }
    },
    get: (route) => send('GET', route, undefined),
    async metric(name, labels = {}) {
      const { text } = await send('GET', '/metrics', undefined);
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? ([0-9.eE+-]+|NaN)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const set = Object.fromEntries(
          [...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]])
        );
        if (Object.entries(labels).every(([k, v]) => set[k] === v)) sum += Number(m[4]);
      }
      return sum;
    },
    logs: () => output,
    async stop() {
      agent.destroy();
      process.off('exit', killOnExit);
      await terminate(child, 'SIGTERM');
      if (!o.dir) await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      agent.destroy();
      process.off('exit', killOnExit);
      await terminate(child, 'SIGKILL');
    },
  };
}

function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill(signal);
  });
}

/** The Gatekeeper ProviderRequest body for some keys. */
export function providerRequest(keys: string[]): Record<string, unknown> {
  return { apiVersion: 'externaldata.gatekeeper.sh/v1beta1', kind: 'ProviderRequest', request: { keys } };
}
