/**
 * `sigpin verify-bundle`: the sigstore-conformance CLI protocol (docs/cli_protocol.md upstream), so the
 * conformance suite's offline cases run against sigpin's verifier:
 *   verify-bundle [--staging] --bundle FILE --certificate-identity I --certificate-oidc-issuer U [--trusted-root F] FILE_OR_DIGEST
 *   verify-bundle [--staging] --bundle FILE --key PATH_TO_KEY [--trusted-root F] FILE_OR_DIGEST
 * FILE_OR_DIGEST is a digest when it is `sha256:` + 64 hex and not an existing path. Exit 0 verified, 1 not
 * verified, 2 usage error. sigpin never goes online: `--staging` is accepted and ignored, and keyless needs
 * `--trusted-root`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parsePublicKey } from '../verify/authorities.ts';
import { verifyArtifactBundle } from '../verify/artifact.ts';
import type { Artifact } from '../verify/candidate.ts';

const USAGE =
  'usage: sigpin verify-bundle --bundle FILE (--certificate-identity I --certificate-oidc-issuer U | --key FILE) [--trusted-root FILE] FILE_OR_DIGEST\n';

async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${what} ${file} is not JSON`);
  }
}

export async function verifyBundleCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        staging: { type: 'boolean' },
        bundle: { type: 'string' },
        'certificate-identity': { type: 'string' },
        'certificate-oidc-issuer': { type: 'string' },
        key: { type: 'string' },
        'trusted-root': { type: 'string' },
      },
    }));
  } catch (err) {
    process.stderr.write(`sigpin verify-bundle: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const bundleFile = values.bundle;
  const identity = values['certificate-identity'];
  const issuer = values['certificate-oidc-issuer'];
  const keyFile = values.key;
  const input = positionals[0];
  if (
    typeof bundleFile !== 'string' ||
    positionals.length !== 1 ||
    input === undefined ||
    (typeof keyFile === 'string') === (typeof identity === 'string' || typeof issuer === 'string') ||
    (typeof keyFile !== 'string' && (typeof identity !== 'string' || typeof issuer !== 'string'))
  ) {
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    const artifact: Artifact =
      /^sha256:[0-9a-f]{64}$/.test(input) && !existsSync(input)
        ? { sha256: Buffer.from(input.slice('sha256:'.length), 'hex') }
        : await readFile(input);
    const trustedRootFile = values['trusted-root'];
    const verdict = verifyArtifactBundle({
      bundle: await readJson(bundleFile, 'bundle'),
      artifact,
      ...(typeof trustedRootFile === 'string'
        ? { trustedRoot: await readJson(trustedRootFile, 'trusted root') }
        : {}),
      ...(typeof keyFile === 'string'
        ? { key: parsePublicKey(await readFile(keyFile), `key ${keyFile}`) }
        : {}),
      ...(typeof identity === 'string' && typeof issuer === 'string'
        ? { identity: { subject: identity, issuer } }
        : {}),
    });
    process.stdout.write(`${JSON.stringify({ verified: true, ...verdict })}\n`);
    return 0;
  } catch (err) {
    const e = err as { code?: unknown; message?: string };
    process.stderr.write(
      `sigpin verify-bundle: not verified: ${typeof e.code === 'string' ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`
    );
    return 1;
  }
}
