/**
 * A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with an ephemeral port,
 * filesystem storage and logs in a temp dir, and one of three auth set-ups (none, htpasswd, token server).
 * The registry's access log (Apache combined format on its stdout) is parsed so tests can count requests.
 * Distribution 2.8 has no referrers API (404), which exercises the `sha256-<hex>` fallback tag.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { findBinary } from './binaries.ts';
import { freePort } from './ports.ts';
import { startTokenServer } from './token-server.ts';
import type { TokenServer, TokenServerOptions } from './token-server.ts';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  /** Default `none`. */
  auth?: RegistryAuth;
  /** Credentials for htpasswd/token. Defaults: `sigpin` and a random password. */
  username?: string;
  password?: string;
  /** Token server settings (auth `token` only). */
  token?: Omit<TokenServerOptions, 'username' | 'password'>;
}

export interface RegistryRequest {
  method: string;
  /** Path with query string, as logged. */
  path: string;
  status: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  auth: RegistryAuth;
  username?: string;
  password?: string;
  /** The token server (auth `token` only). */
  tokenServer?: TokenServer;
  /** Requests the registry served since it became ready, oldest first (from its access log). */
  requests(): Promise<RegistryRequest[]>;
  /** The registry's own (application) log, for diagnosing failures. */
  appLog(): Promise<string>;
  stop(): Promise<void>;
}

const REGISTRY_BINARY = 'docker-registry';
const READY_TIMEOUT_MS = 15_000;
const MARKER_PREFIX = '/sigpin-log-marker-';
// 127.0.0.1 - - [26/Nov/2026:14:20:00 +0000] "HEAD /v2/app/manifests/1 HTTP/1.1" 200 0 "" "ua"
const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) /;

function registryConfig(port: number, storage: string, auth: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    auth,
    '',
  ].join('\n');
}

function parseAccessLog(text: string): RegistryRequest[] {
  const out: RegistryRequest[] = [];
  for (const line of text.split('\n')) {
    const m = ACCESS_LINE.exec(line);
    if (m) out.push({ method: m[1] ?? '', path: m[2] ?? '', status: Number(m[3]) });
  }
  return out;
}

async function waitUntilReady(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const binary = findBinary(REGISTRY_BINARY);
  if (!binary) throw new Error(`${REGISTRY_BINARY} not installed: apt-get install docker-registry`);
  const auth = options.auth ?? 'none';
  const username = auth === 'none' ? undefined : (options.username ?? 'sigpin');
  const password = auth === 'none' ? undefined : (options.password ?? randomBytes(9).toString('base64url'));
  const dir = await mkdtemp(join(tmpdir(), 'sigpin-registry-'));
  let tokenServer: TokenServer | undefined;
  let authYaml = '';
  try {
    if (auth === 'htpasswd') {
      const file = join(dir, 'htpasswd');
      // distribution only accepts bcrypt entries; cost 4 keeps start-up fast
      await writeFile(file, `${username}:${bcrypt.hashSync(password ?? '', 4)}\n`);
      authYaml = ['auth:', '  htpasswd:', '    realm: sigpin-test', `    path: ${JSON.stringify(file)}`].join(
        '\n'
      );
    } else if (auth === 'token') {
      tokenServer = await startTokenServer({ ...options.token, username, password });
      const bundle = join(dir, 'token.crt');
      await writeFile(bundle, tokenServer.certPem);
      authYaml = [
        'auth:',
        '  token:',
        `    realm: ${JSON.stringify(tokenServer.realm)}`,
        `    service: ${JSON.stringify(tokenServer.service)}`,
        `    issuer: ${JSON.stringify(tokenServer.issuer)}`,
        `    rootcertbundle: ${JSON.stringify(bundle)}`,
      ].join('\n');
    }

    const accessLog = join(dir, 'access.log');
    const appLog = join(dir, 'registry.log');
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const configFile = join(dir, 'config.yml');
      await writeFile(configFile, registryConfig(port, join(dir, 'storage'), authYaml));
      const out = openSync(accessLog, 'w');
      const err = openSync(appLog, 'w');
      // REGISTRY_* variables override the config file: start from a clean environment
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
      const child = spawn(binary, ['serve', configFile], { stdio: ['ignore', out, err], env });
      closeSync(out);
      closeSync(err);
      const url = `http://127.0.0.1:${port}`;
      if (!(await waitUntilReady(url, child))) {
        await stopChild(child);
        const log = await readFile(appLog, 'utf8');
        // another process may have taken the port between freePort() and bind: try a new one
        if (attempt < 3 && /address already in use/.test(log)) continue;
        throw new Error(`docker-registry did not start:\n${log}`);
      }
      const readyOffset = (await readFile(accessLog, 'utf8')).length;
      let markers = 0;

      const requests = async (): Promise<RegistryRequest[]> => {
        // The access log line is written after the response; a marker request served after ours proves that
        // earlier lines had their chance to land, then a short settle covers concurrent goroutines.
        const marker = `${MARKER_PREFIX}${++markers}`;
        await (await fetch(`${url}${marker}`)).arrayBuffer();
        const deadline = Date.now() + 5000;
        let text = '';
        while (Date.now() < deadline) {
          text = await readFile(accessLog, 'utf8');
          if (text.includes(`${marker} `)) break;
          await sleep(10);
        }
        await sleep(20);
        text = await readFile(accessLog, 'utf8');
        return parseAccessLog(text.slice(readyOffset)).filter((r) => !r.path.startsWith(MARKER_PREFIX));
      };

      return {
        host: `127.0.0.1:${port}`,
        url,
        auth,
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        ...(tokenServer ? { tokenServer } : {}),
        requests,
        appLog: () => readFile(appLog, 'utf8'),
        stop: async () => {
          await stopChild(child);
          await tokenServer?.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    await tokenServer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
