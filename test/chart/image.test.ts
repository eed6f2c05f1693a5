/**
 * What provider/Dockerfile builds, without a Docker engine: the same production install (`npm ci --omit=dev
 * --ignore-scripts` of package.json + package-lock.json) into a fresh folder holding only the files the image copies
 * (.dockerignore), the same build (`tsc -p tsconfig.build.json`, run with the checkout's TypeScript as the image's
 * build stage does), then the image's start command `node provider/dist/main.js serve --config ...` from there, with
 * the config file and TLS Secret the chart renders (paths moved under a temp root). Node is the main checkout's
 * Node 24 (the `node` devDependency is absent from a production install, as in the image, whose base has Node 24).
 * The install is `--offline` (from npm's cache, filled by the checkout's own `npm ci`): tests make no traffic to
 * non-loopback addresses.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { createCertificateAuthority, issueCertificate } from '../../provider/src/server/certificates.ts';
import { ROOT, find, renderChart, requireChartTools, type KubeObject } from './tools.ts';

const NODE = path.join(ROOT, 'node_modules/.bin/node');
const skip = requireChartTools();

/** Copies what the Dockerfile's build context holds: package files, TypeScript configs, provider/src. */
function copyImageFiles(dest: string): void {
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
    cpSync(path.join(ROOT, f), path.join(dest, f));
  }
  for (const d of ['provider/src']) {
    cpSync(path.join(ROOT, d), path.join(dest, d), {
      recursive: true,
      filter: (src) => !src.endsWith('.test.ts') && !src.includes(`${path.sep}testdata`),
    });
  }
}

function httpsGet(
  port: number,
  route: string,
  ca: string,
  servername: string,
  client?: { cert: string; key: string }
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: route, method: 'GET', ca, servername, agent: false, ...client },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      }
    );
    req.on('error', reject);
    req.end();
  });
}

describe('container image contents: production install and start command', skip, () => {
  let dir = '';
  let child: ChildProcess | undefined;
  let output = '';
  let port = 0;
  let ca = '';
  let gatekeeperCA: Awaited<ReturnType<typeof createCertificateAuthority>> | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sigpin-image-'));
    const app = path.join(dir, 'app');
    mkdirSync(app);
    copyImageFiles(app);
    const install = spawnSync(
      'npm',
      ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--offline'],
      { cwd: app, encoding: 'utf8', env: { ...process.env, NODE_ENV: 'production' }, timeout: 300_000 }
    );
    assert.equal(install.status, 0, `npm ci --omit=dev failed:\n${install.stdout}${install.stderr}`);
    // The build stage: the checkout's TypeScript compiles the copied sources (types resolve from the checkout).
    const build = spawnSync(
      NODE,
      [
        path.join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        path.join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        path.join(app, 'provider/dist'),
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 300_000 }
    );
    assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
    rmSync(path.join(app, 'provider/src'), { recursive: true, force: true });

    // The chart's own config and TLS Secret (default profile: Gatekeeper with mTLS), moved under dir/etc/sigpin.
    const { objects } = renderChart({});
    const etc = path.join(dir, 'etc/sigpin');
    const configSecret = find(objects, 'Secret', 'sigpin-config') as KubeObject & {
      stringData: Record<string, string>;
    };
    const config = parseYaml(configSecret.stringData['config.yaml'] ?? '') as { log?: unknown };
    const configText = stringify({ ...config, log: { level: 'info' } }).replaceAll('/etc/sigpin/', `${etc}/`);
    const tls = find(objects, 'Secret', 'sigpin-tls') as KubeObject & { data: Record<string, string> };
    const hmac = find(objects, 'Secret', 'sigpin-cache-hmac') as KubeObject & {
      data: Record<string, string>;
    };
    for (const sub of ['tls', 'cache', 'gatekeeper-ca']) mkdirSync(path.join(etc, sub), { recursive: true });
    for (const key of ['tls.crt', 'tls.key']) {
      writeFileSync(path.join(etc, 'tls', key), Buffer.from(tls.data[key] ?? '', 'base64'));
    }
    writeFileSync(path.join(etc, 'cache/hmac-key'), Buffer.from(hmac.data['hmac-key'] ?? '', 'base64'));
    ca = Buffer.from(tls.data['ca.crt'] ?? '', 'base64').toString();
    gatekeeperCA = await createCertificateAuthority('gatekeeper-ca');
    writeFileSync(path.join(etc, 'gatekeeper-ca/ca.crt'), gatekeeperCA.certPem);
    writeFileSync(path.join(etc, 'config.yaml'), configText);

    child = spawn(
      NODE,
      [
        'provider/dist/main.js',
        'serve',
        '--config',
        path.join(etc, 'config.yaml'),
        '--port',
        '0',
        '--host',
        '127.0.0.1',
      ],
      { cwd: app, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] }
    );
    const started = child;
    started.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    started.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`provider did not start:\n${output}`)), 30_000);
      started.stdout?.on('data', () => {
        const m = /"url":"https:\/\/[^"]*:(\d+)"[^\n]*listening/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      started.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`provider exited with ${code}:\n${output}`));
      });
    });
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the production install has the runtime dependencies and none of the dev tools', () => {
    const modules = path.join(dir, 'app/node_modules');
    for (const dep of Object.keys(
      (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: object })
        .dependencies
    )) {
      assert.ok(existsSync(path.join(modules, dep, 'package.json')), `${dep} installed`);
    }
    for (const dev of ['typescript', 'eslint', 'prettier', 'node', '@sigstore/mock']) {
      assert.ok(!existsSync(path.join(modules, dev)), `${dev} must not be in the image`);
    }
  });

  test('serve answers /healthz and /readyz over HTTPS with the chart-generated certificate', async () => {
    // verified against the chart's CA for the Service name the policies call
    const health = await httpsGet(port, '/healthz', ca, 'sigpin.sigpin-system.svc');
    assert.equal(health.status, 200, output);
    const ready = await httpsGet(port, '/readyz', ca, 'sigpin.sigpin-system.svc');
    assert.equal(ready.status, 200, `${ready.text}\n${output}`);
  });

  test('Gatekeeper routes require the Gatekeeper client certificate the chart config names', async () => {
    assert.ok(gatekeeperCA);
    const body = JSON.stringify({
      apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
      kind: 'ProviderRequest',
      request: { keys: [] },
    });
    const post = (client?: { cert: string; key: string }): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/gatekeeper/v1/resolve',
            method: 'POST',
            ca,
            servername: 'sigpin.sigpin-system.svc',
            agent: false,
            headers: { 'content-type': 'application/json' },
            ...client,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }
        );
        req.on('error', reject);
        req.end(body);
      });
    const anonymous = await post();
    assert.ok(anonymous === 401 || anonymous === 403, `no client certificate: got ${anonymous}`);
    const leaf = await issueCertificate(gatekeeperCA, {
      commonName: 'gatekeeper-webhook-service.gatekeeper-system.svc',
      clientAuth: true,
      dnsNames: ['gatekeeper-webhook-service.gatekeeper-system.svc'],
    });
    assert.equal(await post({ cert: leaf.certPem, key: leaf.keyPem }), 200, output);
  });
});

describe('provider/Dockerfile matches what this test installs and runs', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'provider/Dockerfile'), 'utf8');
  const instructions = dockerfile
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => l.trim());

  test('multi-stage on Node 24, production dependencies only, non-root, the serve command', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    assert.equal(froms.length, 3, 'a build stage, a dependency stage and a runtime stage');
    for (const f of froms) assert.match(f, /^FROM node:24[-.\w]*( AS \w+)?$/);
    assert.ok(
      instructions.some((l) => /npm ci --omit=dev --ignore-scripts/.test(l)),
      'npm ci --omit=dev --ignore-scripts'
    );
    const user = instructions.filter((l) => l.startsWith('USER ')).pop() ?? '';
    assert.match(user, /^USER [1-9]\d*:[1-9]\d*$/, 'numeric non-root user (runAsNonRoot can check it)');
    assert.equal(
      instructions.find((l) => l.startsWith('ENTRYPOINT')),
      'ENTRYPOINT ["node", "provider/dist/main.js"]'
    );
    assert.equal(
      instructions.find((l) => l.startsWith('CMD')),
      'CMD ["serve", "--config", "/etc/sigpin/config.yaml"]'
    );
  });

  test('the build context is the package files, the TypeScript configs and provider/src; the image gets dist', () => {
    const copied = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) =>
        l
          .replace(/--chown=\S+\s*/, '')
          .split(/\s+/)
          .slice(1, -1)
      );
    assert.deepEqual(copied.sort(), [
      'package-lock.json',
      'package-lock.json',
      'package.json',
      'package.json',
      'package.json',
      'provider/src',
      'tsconfig.build.json',
      'tsconfig.json',
    ]);
    assert.ok(
      instructions.some(
        (l) => l === 'COPY --from=build --chown=root:root /app/provider/dist ./provider/dist'
      ),
      'the runtime stage takes only the compiled provider'
    );
    assert.ok(instructions.includes('RUN npm run build'), 'the build stage compiles with npm run build');
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
    for (const p of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'provider/src/',
    ]) {
      assert.ok(ignore.includes(`!${p}`), `.dockerignore lets ${p} in`);
    }
    assert.match(ignore, /^\*$/m, '.dockerignore starts from nothing');
  });
});
