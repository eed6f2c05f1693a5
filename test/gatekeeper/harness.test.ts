/**
 * Gatekeeper's own engine against the real provider: runs the Go harness (test/gatekeeper/*_test.go, built by
 * scripts/setup-gatekeeper.sh) with a real registry holding signed, unsigned, untrusted and moved-tag images, and
 * a sigpin provider over TLS 1.3 that verifies Gatekeeper's client certificate. Each Go subtest becomes a
 * node:test subtest, so a Gatekeeper-side failure fails `npm test` with the Go output.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createCertificateAuthority, issueCertificate } from '../../provider/src/server/certificates.ts';
import { requireBinary, missingComponent } from '../support/binaries.ts';
import { pushImage, type PushedImage } from '../support/images.ts';
import { startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { keySigLayer, pushAttachment, simpleSigningPayload } from '../support/signing.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
/** The name Gatekeeper's webhook certificate carries (cert-controller: gatekeeper-webhook-service.<ns>.svc). */
const GATEKEEPER_NAME = 'gatekeeper-webhook-service.gatekeeper-system.svc';

/** Builds (once per source hash, cached) the Go harness; under CI a failure fails, locally it skips. */
async function setupHarness(): Promise<{ binary?: string; skip?: string }> {
  try {
    const { stdout } = await run('bash', [path.join(ROOT, 'scripts/setup-gatekeeper.sh')], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 20 * 60_000,
    });
    const binary = stdout.trim().split('\n').pop();
    if (!binary) throw new Error('setup-gatekeeper.sh printed no path');
    return { binary };
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    const reason = `Gatekeeper harness not built (scripts/setup-gatekeeper.sh: ${e.stderr ?? e.message})`;
    return missingComponent(reason, err);
  }
}

interface GoResult {
  name: string;
  passed: boolean;
}

/** `--- PASS: TestX/sub/case (0.01s)` lines of `go test -v` output (SKIP counts as not passed). */
function parseGoResults(output: string): GoResult[] {
  const results: GoResult[] = [];
  for (const m of output.matchAll(/^\s*--- (PASS|FAIL|SKIP): (\S+) \(/gm)) {
    results.push({ name: m[2] ?? '', passed: m[1] === 'PASS' });
  }
  return results;
}

/** The Go output belonging to one test or subtest: its === RUN line up to the next === RUN of another test. */
function outputOf(output: string, name: string): string {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.trim() === `=== RUN   ${name}`);
  if (start < 0) return output;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^=== (RUN|CONT|PAUSE)\s/.test(l.trim()) && !l.includes(name));
  return [lines[start], ...(end < 0 ? rest : rest.slice(0, end))].join('\n');
}

function runHarness(
  binary: string,
  env: NodeJS.ProcessEnv
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['-test.v', '-test.count=1', '-test.timeout=10m'], {
      cwd: path.join(ROOT, 'test/gatekeeper'),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

const needs = [requireBinary('docker-registry'), requireBinary('skopeo')].find((o) => o.skip) ?? {};

describe('Gatekeeper v3.23.0 engine with the shipped policies against sigpin', needs, async () => {
  const harness = needs.skip ? {} : await setupHarness();
  const skip = needs.skip ?? harness.skip;
  let registry: TestRegistry | undefined;
  let provider: TestProvider | undefined;
  let dir = '';
  let results: GoResult[] = [];
  let output = '';
  let exitCode: number | null = null;

  before(async () => {
    if (skip || !harness.binary) return;
    dir = await mkdtemp(path.join(tmpdir(), 'sigpin-gatekeeper-'));
    registry = await startRegistry();
    const target = registry;

    // Signing keys: one the trust policy names, one it does not.
    const trusted = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sign = async (image: PushedImage, key: typeof trusted.privateKey): Promise<void> => {
      const repository = image.reference.slice(target.host.length + 1).replace(/:[^:/]+$/, '');
      const payload = simpleSigningPayload(`${target.host}/${repository}`, image.digest);
      await pushAttachment(target, repository, image.digest, 'sig', [keySigLayer(key, payload)]);
    };
    const push = (repo: string, tag: string, seed: string): Promise<PushedImage> =>
      pushImage(target, repo, tag, 'oci-index', { seed });

    const signed = await push('sigpin/app', '1.0', 'app-1.0');
    await sign(signed, trusted.privateKey);
    const signedInit = await push('sigpin/init', '1.0', 'init-1.0');
    await sign(signedInit, trusted.privateKey);
    const unsigned = await push('sigpin/unsigned', '1.0', 'unsigned-1.0');
    const untrusted = await push('sigpin/untrusted', '1.0', 'untrusted-1.0');
    await sign(untrusted, stranger.privateKey);
    // Moved tags: the old object runs the first digest; the tag now points at a second one.
    const movedSignedOld = await push('sigpin/moving-signed', '1', 'moving-signed-old');
    await sign(movedSignedOld, trusted.privateKey);
    const movedSigned = await push('sigpin/moving-signed', '1', 'moving-signed-new');
    await sign(movedSigned, trusted.privateKey);
    const movedUnsignedOld = await push('sigpin/moving-unsigned', '1', 'moving-unsigned-old');
    await sign(movedUnsignedOld, trusted.privateKey);
    const movedUnsigned = await push('sigpin/moving-unsigned', '1', 'moving-unsigned-new');

    // Gatekeeper's client certificate (its webhook serving cert, from cert-controller's CA), and a rogue one with
    // the same names from another CA.
    const gatekeeperCa = await createCertificateAuthority('gatekeeper-ca');
    const gatekeeperLeaf = await issueCertificate(gatekeeperCa, {
      commonName: GATEKEEPER_NAME,
      dnsNames: [GATEKEEPER_NAME],
      serverAuth: true,
      clientAuth: true,
    });
    const rogueCa = await createCertificateAuthority('gatekeeper-ca');
    const rogueLeaf = await issueCertificate(rogueCa, {
      commonName: GATEKEEPER_NAME,
      dnsNames: [GATEKEEPER_NAME],
      serverAuth: true,
      clientAuth: true,
    });
    const files: Record<string, string> = {
      'gatekeeper-ca.crt': gatekeeperCa.certPem,
      'gatekeeper.crt': gatekeeperLeaf.certPem,
      'gatekeeper.key': gatekeeperLeaf.keyPem,
      'rogue.crt': rogueLeaf.certPem,
      'rogue.key': rogueLeaf.keyPem,
      'release.pub': trusted.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);

    provider = await startProvider({
      config: {
        server: {
          tls: { clientCAFile: path.join(dir, 'gatekeeper-ca.crt'), clientNames: [GATEKEEPER_NAME] },
        },
        registries: { allow: [target.host], insecure: [target.host] },
        cache: { url: 'memory://' },
        authorities: [{ name: 'release', key: { path: path.join(dir, 'release.pub') } }],
        policies: [
          { name: 'test', images: [`${target.host}/sigpin/**`], authorities: ['release'], mode: 'mutate' },
        ],
      },
    });
    await writeFile(path.join(dir, 'provider-ca.crt'), provider.ca.certPem);

    const image = (p: PushedImage, old?: PushedImage): Record<string, string> => ({
      ref: p.reference,
      digest: p.digest,
      ...(old ? { oldDigest: old.digest } : {}),
    });
    const result = await runHarness(harness.binary, {
      SIGPIN_GK_POLICIES: path.join(ROOT, 'policies/gatekeeper'),
      SIGPIN_GK_PROVIDER: provider.url,
      SIGPIN_GK_PROVIDER_CA: path.join(dir, 'provider-ca.crt'),
      SIGPIN_GK_CLIENT_CERT: path.join(dir, 'gatekeeper.crt'),
      SIGPIN_GK_CLIENT_KEY: path.join(dir, 'gatekeeper.key'),
      SIGPIN_GK_ROGUE_CERT: path.join(dir, 'rogue.crt'),
      SIGPIN_GK_ROGUE_KEY: path.join(dir, 'rogue.key'),
      SIGPIN_GK_IMAGES: JSON.stringify({
        signed: image(signed),
        signedInit: image(signedInit),
        unsigned: image(unsigned),
        untrusted: image(untrusted),
        movedSigned: image(movedSigned, movedSignedOld),
        movedUnsigned: image(movedUnsigned, movedUnsignedOld),
      }),
    });
    output = result.output;
    exitCode = result.code;
    results = parseGoResults(output);
  });

  after(async () => {
    await provider?.stop();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // The scenarios the harness must report; a missing one fails as surely as a failing one.
  const expected = [
    'TestShippedProviders/resolve',
    'TestShippedProviders/mutate',
    'TestShippedProviders/verify',
    'TestAdmission/create/pod/signed-is-pinned-and-allowed',
    'TestAdmission/create/pod/unsigned-is-denied',
    'TestAdmission/create/pod/unsigned-init-container-is-denied',
    'TestAdmission/create/pod/untrusted-signer-is-denied',
    'TestAdmission/create/deployment/signed-template-is-pinned-and-allowed',
    'TestAdmission/create/deployment/unsigned-is-denied',
    'TestAdmission/create/deployment/untrusted-is-denied',
    'TestAdmission/create/cronjob/signed-is-pinned-and-allowed',
    'TestAdmission/create/pod/one-batched-call-per-webhook',
    'TestAdmission/create/pod/already-pinned-stays-as-is',
    'TestAdmission/update/deployment/tag-still-at-old-digest-skips-signature-checks',
    'TestAdmission/update/pod/unchanged-digest-is-not-verified-again',
    'TestAdmission/update/deployment/tag-moved-to-signed-digest-is-verified-and-pinned',
    'TestAdmission/update/deployment/tag-moved-to-unsigned-digest-is-denied',
    'TestAdmission/update/pod/unsigned-ephemeral-container-is-denied',
    'TestAdmission/update/pod/signed-ephemeral-container-is-pinned',
    'TestAdmission/cache/second-review-is-served-by-gatekeeper',
    'TestAdmission/audit/unsigned-deployment-is-reported',
    'TestAdmission/audit/signed-deployment-is-clean',
    'TestPodsOnly/deployment/is-neither-rewritten-nor-checked',
    'TestPodsOnly/pod/signed-is-pinned',
    'TestPodsOnly/pod/unsigned-is-denied',
    'TestCreateOnly/create/is-pinned',
    'TestCreateOnly/update/is-verified-but-not-rewritten',
    'TestCreateOnly/update/unsigned-is-still-denied',
    'TestProviderDown/validation/denies',
    'TestProviderDown/mutation/rejects',
    'TestMutualTLS/validation/untrusted-client-is-denied',
    'TestMutualTLS/mutation/untrusted-client-is-rejected',
  ];

  for (const name of expected) {
    test(name, skip ? { skip } : {}, (t) => {
      const r = results.find((x) => x.name === name);
      assert.ok(r, `the Go harness did not report ${name} (exit ${exitCode}):\n${output}`);
      assert.ok(r.passed, `${name} failed in Gatekeeper's engine:\n${outputOf(output, name)}`);
      // What Gatekeeper decided and what the provider counted, as evidence in the test report.
      for (const line of outputOf(output, name).split('\n').slice(1)) {
        if (line.includes('.go:')) t.diagnostic(line.trim());
      }
    });
  }

  test('the Go harness passed as a whole', skip ? { skip } : {}, () => {
    const unexpected = results.filter((r) => !r.passed).map((r) => r.name);
    assert.deepEqual(unexpected, [], output);
    assert.equal(exitCode, 0, `go test exit code ${exitCode}:\n${output}`);
  });
});
