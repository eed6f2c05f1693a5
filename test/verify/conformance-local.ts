/**
 * Runs sigstore-conformance's bundle-verify cases against `sigpin verify-bundle`, the way the upstream suite does
 * (test/test_bundle.py test_verify: each case by file path and by digest; `_fail` cases must fail).
 *
 * NOT part of `npm test`: the assets are third-party data that no package registry ships and that may not be
 * committed here, and tests have no network. Run it by hand against a checkout of sigstore/sigstore-conformance:
 *   node test/verify/conformance-local.ts /path/to/sigstore-conformance [--all]
 * Only offline cases run by default: those shipping their own trusted_root.json, and the managed-key cases.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { verifyBundleCommand } from '../../provider/src/commands/verify-bundle.ts';

const IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

const [root, flag] = process.argv.slice(2);
if (!root) {
  process.stderr.write('usage: node test/verify/conformance-local.ts SIGSTORE_CONFORMANCE_DIR [--all]\n');
  process.exit(2);
}
const assets = join(root, 'test', 'assets');
const casesDir = join(assets, 'bundle-verify');
let passed = 0;
let failed = 0;
const failures: string[] = [];

// keep the command's diagnostics out of the report
const write = process.stderr.write.bind(process.stderr);
const out = process.stdout.write.bind(process.stdout);

for (const name of readdirSync(casesDir).sort()) {
  const dir = join(casesDir, name);
  if (!statSync(dir).isDirectory()) continue;
  const has = (f: string): boolean => existsSync(join(dir, f));
  const offline = has('trusted_root.json') || has('key.pub') || name.startsWith('managed-key');
  if (!offline && flag !== '--all') continue;
  const expectFail = name.endsWith('_fail');
  const artifact = has('artifact') ? join(dir, 'artifact') : join(assets, 'a.txt');
  const args = ['--bundle', join(dir, 'bundle.sigstore.json')];
  if (has('key.pub')) args.push('--key', join(dir, 'key.pub'));
  else {
    const identity = has('identity') ? (await readFile(join(dir, 'identity'), 'utf8')).trim() : IDENTITY;
    const issuer = has('issuer') ? (await readFile(join(dir, 'issuer'), 'utf8')).trim() : ISSUER;
    args.push('--certificate-identity', identity, '--certificate-oidc-issuer', issuer);
  }
  if (has('trusted_root.json')) args.push('--trusted-root', join(dir, 'trusted_root.json'));
  const digest = `sha256:${createHash('sha256')
    .update(await readFile(artifact))
    .digest('hex')}`;
  for (const [mode, input] of [
    ['path', artifact],
    ['digest', digest],
  ] as const) {
    let detail = '';
    process.stderr.write = ((chunk: string) => ((detail += chunk), true)) as typeof process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    const code = await verifyBundleCommand([...args, input]);
    process.stderr.write = write;
    process.stdout.write = out;
    const ok = expectFail ? code !== 0 : code === 0;
    if (ok) passed++;
    else {
      failed++;
      failures.push(`${name} [${mode}] exit ${code}${detail ? `: ${detail.trim()}` : ''}`);
    }
  }
}
for (const f of failures) process.stdout.write(`FAIL ${f}\n`);
process.stdout.write(
  `conformance bundle-verify (${flag === '--all' ? 'all' : 'offline'} cases): ${passed} passed, ${failed} failed\n`
);
