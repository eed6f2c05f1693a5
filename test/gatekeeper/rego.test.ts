/**
 * `opa test` on the SigpinVerifiedImages Rego (OPA at the version Gatekeeper v3.23.0 embeds, built by
 * scripts/setup-opa.sh), with `external_data` declared through a capabilities file and mocked in each test.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { missingComponent } from '../support/binaries.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const REGO_DIR = path.join(ROOT, 'policies/gatekeeper/rego');

/** Builds (once, cached) OPA and returns its path; under CI a failure fails, locally it skips. */
async function setupOpa(): Promise<{ opa?: string; skip?: string }> {
  try {
    const { stdout } = await run('bash', [path.join(ROOT, 'scripts/setup-opa.sh')], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    const opa = stdout.trim().split('\n').pop();
    if (!opa) throw new Error('setup-opa.sh printed no path');
    return { opa };
  } catch (err) {
    const reason = `opa not available (scripts/setup-opa.sh failed: ${(err as Error).message})`;
    return missingComponent(reason, err);
  }
}

interface OpaTestResult {
  location?: { file: string };
  package: string;
  name: string;
  fail?: boolean;
  error?: unknown;
  skip?: boolean;
}

describe('SigpinVerifiedImages Rego under opa test (external_data mocked)', async () => {
  const setup = await setupOpa();
  let dir = '';
  let results: OpaTestResult[] = [];
  let opaOutput = '';
  let capsFile = '';

  before(async () => {
    if (!setup.opa) return;
    dir = await mkdtemp(path.join(tmpdir(), 'sigpin-opa-'));
    // OPA's own builtins plus Gatekeeper's external_data, declared as frameworks' rego driver declares it
    // (one argument of any type, any result).
    const { stdout } = await run(setup.opa, ['capabilities', '--current'], { maxBuffer: 64 * 1024 * 1024 });
    const caps = JSON.parse(stdout) as { builtins: { name: string }[] };
    caps.builtins = caps.builtins.filter((b) => b.name !== 'http.send'); // disabled by Gatekeeper by default
    caps.builtins.push({
      name: 'external_data',
      decl: { type: 'function', args: [{ type: 'any' }], result: { type: 'any' } },
    } as { name: string });
    capsFile = path.join(dir, 'capabilities.json');
    await writeFile(capsFile, JSON.stringify(caps));
    try {
      const out = await run(setup.opa, ['test', '--capabilities', capsFile, '--format', 'json', REGO_DIR], {
        maxBuffer: 64 * 1024 * 1024,
      });
      opaOutput = out.stdout;
    } catch (err) {
      // opa test exits 2 when a test fails; the JSON is still on stdout
      const e = err as { stdout?: string; stderr?: string };
      opaOutput = e.stdout ?? '';
      if (!opaOutput.trim().startsWith('[')) throw new Error(`opa test failed: ${e.stderr ?? String(err)}`);
    }
    results = JSON.parse(opaOutput) as OpaTestResult[];
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('opa test ran the unit tests', setup.skip ? { skip: setup.skip } : {}, () => {
    assert.ok(results.length >= 20, `expected the Rego unit tests, got ${results.length}: ${opaOutput}`);
    const failed = results.filter((r) => r.fail || r.error || r.skip);
    assert.deepEqual(
      failed.map((r) => `${r.name}: ${JSON.stringify(r.error ?? 'failed')}`),
      [],
      'every Rego unit test passes'
    );
  });

  test(
    'the Rego is opa fmt formatted and compiles as Rego v1',
    setup.skip ? { skip: setup.skip } : {},
    async () => {
      const opa = setup.opa ?? '';
      const { stdout } = await run(opa, ['fmt', '--list', REGO_DIR]);
      assert.equal(stdout.trim(), '', `run: opa fmt -w ${REGO_DIR}`);
      await run(opa, ['check', '--strict', '--capabilities', capsFile, REGO_DIR]);
    }
  );
});
