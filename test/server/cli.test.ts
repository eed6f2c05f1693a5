import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, type PushedImage } from '../support/images.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const SIGPIN = path.join(ROOT, 'provider/bin/sigpin.js');
const run = promisify(execFile);

async function sigpin(args: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(NODE, [SIGPIN, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sigpin-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('sigpin config check: 0 for a valid file, 2 with every problem and its path otherwise', async () => {
  const good = path.join(dir, 'good.yaml');
  await writeFile(
    good,
    'registries: {allow: ["ghcr.io"]}\npolicies: [{name: all, images: ["**"], verify: false}]\n'
  );
  const ok = await sigpin(['config', 'check', good]);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /ok \(1 policies, 0 authorities, cache memory:\/\/\)/);
  const bad = path.join(dir, 'bad.yaml');
  await writeFile(bad, 'server: {port: -1}\ncache: {digestTTL: soon}\n');
  const problems = await sigpin(['config', 'check', bad]);
  assert.equal(problems.code, 2);
  assert.match(problems.stdout, /server\.port: /);
  assert.match(problems.stdout, /cache\.digestTTL: "soon" is not a duration/);
});

test('usage errors exit 2 with a message', async () => {
  assert.equal((await sigpin([])).code, 2);
  const unknown = await sigpin(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badFlag = await sigpin(['serve', '--nope']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /Unknown option '--nope'/);
  assert.equal((await sigpin(['resolve'])).code, 2);
  const badTimeout = await sigpin(['resolve', 'nginx:1', '--timeout', 'abc']);
  assert.equal(badTimeout.code, 2);
  assert.match(badTimeout.stderr, /--timeout must be a number of seconds/);
  assert.equal((await sigpin(['config', 'check'])).code, 2);
});

describe(
  'sigpin resolve against a real registry',
  { skip: requireBinary('docker-registry').skip ?? requireBinary('skopeo').skip },
  () => {
    let registry: TestRegistry;
    let image: PushedImage;
    let config: string;
    before(async () => {
      registry = await startRegistry({ auth: 'htpasswd' });
      image = await pushImage(registry, 'team/app', 'v1', 'docker-list');
      config = path.join(dir, 'resolve.yaml');
      await writeFile(path.join(dir, 'password'), `${registry.password}\n`);
      await writeFile(
        config,
        [
          `registries:`,
          `  allow: ["${registry.host}"]`,
          `  insecure: ["${registry.host}"]`,
          `  credentials: [{registry: "${registry.host}", username: "${registry.username}", passwordFile: password}]`,
          `policies: [{name: all, images: ["**"], verify: false}]`,
        ].join('\n')
      );
    });
    after(async () => registry?.stop());

    test('prints {key, digest, pinned} per reference; an unknown tag exits 1 with its coded error', async () => {
      const ok = await sigpin(['resolve', image.reference, '--config', config]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(JSON.parse(ok.stdout), {
        key: image.reference,
        digest: image.digest,
        pinned: `${image.reference}@${image.digest}`,
      });
      const missing = await sigpin(['resolve', `${registry.host}/team/app:nope`, '--config', config]);
      assert.equal(missing.code, 1);
      assert.match(JSON.parse(missing.stdout).error, /^NOT_FOUND: /);
      assert.doesNotMatch(missing.stdout + missing.stderr, new RegExp(registry.password ?? 'x'.repeat(40)));
    });
  }
);

test('sigpin serve with no config: embedded defaults, a development CA written and printed, loopback refused', async () => {
  const child = spawn(NODE, [SIGPIN, 'serve', '--port', '0', '--host', '127.0.0.1'], { cwd: dir });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not started: ${out}${err}`)), 15_000);
      child.stdout.on('data', () => {
        const m = /"url":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    const ca = await readFile(path.join(dir, '.sigpin/dev-ca.pem'), 'utf8');
    assert.match(ca, /BEGIN CERTIFICATE/);
    assert.ok(err.includes(ca.trim()), 'the CA is printed');
    const agent = new Agent({ ca });
    const body = JSON.stringify({
      request: { keys: ['127.0.0.1:5000/app:1', 'localhost/app:1', '[::1]:5000/app:1'] },
    });
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/kyverno/v1/resolve', method: 'POST', agent },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(text));
        }
      );
      req.on('error', reject);
      req.end(body);
    });
    const items = (JSON.parse(answer) as { response: { items: Array<{ error?: string }> } }).response.items;
    assert.deepEqual(
      items.map((i) => i.error?.split(':')[0]),
      ['NOT_ALLOWED', 'NOT_ALLOWED', 'NOT_ALLOWED']
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
