/**
 * `sigpin verify-bundle` (sigstore-conformance CLI protocol) on bundles made here by @sigstore/sign: keyless
 * against @sigstore/mock on loopback, and managed keys of each type, by file path and by digest. The upstream
 * conformance assets themselves are run by hand (test/verify/conformance-local.ts): no registry ships them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { verifyBundleCommand } from '../../provider/src/commands/verify-bundle.ts';
import { MOCK_ISSUER, MOCK_SUBJECT, startKeylessMock, type KeylessMock } from '../support/keyless.ts';
import {
  inTotoStatement,
  keySignedMessageBundle,
  keySignedStatementBundle,
  SLSA_PROVENANCE_V1,
} from '../support/signing.ts';

const run = promisify(execFile);
const NODE = process.execPath;
const SIGPIN = new URL('../../provider/bin/sigpin.js', import.meta.url).pathname;
const ARTIFACT = Buffer.from('an artifact to sign\n');

/** Runs the command in-process with its output captured. */
async function verifyBundle(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((c: string) => ((stdout += c), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => ((stderr += c), true)) as typeof process.stderr.write;
  try {
    return { code: await verifyBundleCommand(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

describe('sigpin verify-bundle', () => {
  let mock: KeylessMock;
  let dir: string;
  let artifact: string;
  let digest: string;
  let root: string;
  const write = async (name: string, content: string | Buffer): Promise<string> => {
    const file = join(dir, name);
    await writeFile(file, content);
    return file;
  };
  const writeJson = (name: string, value: unknown): Promise<string> => write(name, JSON.stringify(value));
  const writePublicKey = (name: string, key: KeyObject): Promise<string> =>
    write(name, key.export({ type: 'spki', format: 'pem' }));
  /** Keyless verification of `bundle` for the mock identity against the mock trusted root (the input goes last). */
  const keylessArgs = (bundle: string): string[] => [
    '--bundle',
    bundle,
    '--certificate-identity',
    MOCK_SUBJECT,
    '--certificate-oidc-issuer',
    MOCK_ISSUER,
    '--trusted-root',
    root,
  ];

  before(async () => {
    mock = await startKeylessMock();
    dir = await mkdtemp(join(tmpdir(), 'sigpin-verify-bundle-'));
    artifact = await write('artifact.txt', ARTIFACT);
    digest = `sha256:${createHash('sha256').update(ARTIFACT).digest('hex')}`;
    root = await writeJson('trusted_root.json', mock.trustedRoot);
  });
  after(async () => {
    await mock.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('keyless message signature: by path and by digest; wrong identity, issuer, artifact fail', async () => {
    const base = keylessArgs(await writeJson('message.json', await mock.signMessage(ARTIFACT)));
    for (const input of [artifact, digest]) {
      const ok = await verifyBundle([...base, input]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(JSON.parse(ok.stdout).identity.subject, MOCK_SUBJECT);
    }
    const other = await write('other.txt', 'another artifact\n');
    assert.equal((await verifyBundle([...base, other])).code, 1);
    assert.equal((await verifyBundle([...base, `sha256:${'0'.repeat(64)}`])).code, 1);
    const wrongSan = base.map((a) => (a === MOCK_SUBJECT ? 'https://github.com/acme/evil' : a));
    assert.equal((await verifyBundle([...wrongSan, artifact])).code, 1);
    const wrongIssuer = base.map((a) => (a === MOCK_ISSUER ? 'https://accounts.google.com' : a));
    assert.equal((await verifyBundle([...wrongIssuer, artifact])).code, 1);
    // no trusted root: sigpin never fetches the public-good one, so keyless cannot verify
    const noRoot = await verifyBundle([...base.slice(0, -2), artifact]);
    assert.equal(noRoot.code, 1);
    assert.match(noRoot.stderr, /trusted-root/);
  });

  test('keyless DSSE statement: the artifact must be a subject', async () => {
    const base = keylessArgs(
      await writeJson('dsse.json', await mock.signStatement(inTotoStatement(digest, SLSA_PROVENANCE_V1)))
    );
    assert.equal((await verifyBundle([...base, artifact])).code, 0);
    assert.equal((await verifyBundle([...base, digest])).code, 0);
    assert.equal((await verifyBundle([...base, `sha256:${'1'.repeat(64)}`])).code, 1);
  });

  for (const [name, pair] of Object.entries({
    p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  })) {
    test(`managed ${name} key: message signature by path and by digest (pre-hashed check); wrong key fails`, async () => {
      const bundle = await writeJson(`${name}.json`, await keySignedMessageBundle(pair.privateKey, ARTIFACT));
      const key = await writePublicKey(`${name}.pub`, pair.publicKey);
      for (const input of [artifact, digest]) {
        const res = await verifyBundle(['--bundle', bundle, '--key', key, input]);
        assert.equal(res.code, 0, `${input}: ${res.stderr}`);
      }
      const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
      const wrong = await writePublicKey(`${name}-wrong.pub`, stranger);
      assert.equal((await verifyBundle(['--bundle', bundle, '--key', wrong, artifact])).code, 1);
      assert.equal((await verifyBundle(['--bundle', bundle, '--key', wrong, digest])).code, 1);
      assert.equal(
        (await verifyBundle(['--bundle', bundle, '--key', key, `sha256:${'2'.repeat(64)}`])).code,
        1
      );
    });
  }

  test('managed ed25519 key: DSSE bundle', async () => {
    const pair = generateKeyPairSync('ed25519');
    const bundle = await writeJson(
      'ed.json',
      await keySignedStatementBundle(pair.privateKey, inTotoStatement(digest, SLSA_PROVENANCE_V1))
    );
    const key = await writePublicKey('ed.pub', pair.publicKey);
    assert.equal((await verifyBundle(['--bundle', bundle, '--key', key, artifact])).code, 0);
    assert.equal((await verifyBundle(['--bundle', bundle, '--key', key, digest])).code, 0);
  });

  test('usage errors exit 2; the sigpin binary dispatches verify-bundle', async () => {
    assert.equal((await verifyBundle(['--bundle', 'b.json'])).code, 2);
    assert.equal(
      (await verifyBundle(['--bundle', 'b.json', '--key', 'k', '--certificate-identity', 'x', 'f'])).code,
      2
    );
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const bundle = await writeJson('cli.json', await keySignedMessageBundle(pair.privateKey, ARTIFACT));
    const key = await writePublicKey('cli.pub', pair.publicKey);
    const { stdout } = await run(NODE, [SIGPIN, 'verify-bundle', '--bundle', bundle, '--key', key, artifact]);
    assert.equal(JSON.parse(stdout).verified, true);
    await assert.rejects(
      run(NODE, [SIGPIN, 'verify-bundle', '--bundle', bundle, '--key', key, `sha256:${'3'.repeat(64)}`]),
      (e: { code?: number }) => e.code === 1
    );
  });
});
