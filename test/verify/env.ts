/**
 * Shared set-up for the verification tests: a real docker-registry, the real RegistryClient as the verifier's
 * ArtifactSource, and authority configs as the config schema produces them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { AuthorityConfig } from '../../provider/src/config/index.ts';
import { RegistryClient } from '../../provider/src/registry/index.ts';
import {
  createImageVerifier,
  type ImageVerifier,
  type RequestContext,
  type VerificationRequirements,
  type VerificationResult,
} from '../../provider/src/verify/index.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { SLSA_PROVENANCE_V1 } from '../support/signing.ts';

/** The testbed's key fixtures, read in place (never copied): `shared/` sits beside the checkout, here and in CI. */
export const FIXTURES =
  process.env.SIGPIN_TESTBED_FIXTURES ??
  fileURLToPath(new URL('../../../shared/testbed/fixtures', import.meta.url));
export const logger = pino({ level: 'silent' });

export interface VerifyEnv {
  registry: TestRegistry;
  client: RegistryClient;
  /** A scratch folder for keys and trusted roots written by the test. */
  dir: string;
  write(name: string, content: string | Buffer): Promise<string>;
  verifier(
    authorities: AuthorityConfig[],
    extra?: { workers?: number; workerMinBatch?: number }
  ): Promise<ImageVerifier>;
  stop(): Promise<void>;
}

/** Starts the registry and client; the caller stops everything with `stop()` (in its `after` hook). */
export async function startVerifyEnv(): Promise<VerifyEnv> {
  const registry = await startRegistry();
  const client = new RegistryClient({ allow: [registry.host], insecure: [registry.host], logger });
  const dir = await mkdtemp(join(tmpdir(), 'sigpin-verify-'));
  const verifiers: ImageVerifier[] = [];
  return {
    registry,
    client,
    dir,
    async write(name, content) {
      const file = join(dir, name);
      await writeFile(file, content);
      return file;
    },
    async verifier(authorities, extra = {}) {
      const v = await createImageVerifier({ authorities, baseDir: dir, source: client, logger, ...extra });
      verifiers.push(v);
      return v;
    },
    async stop() {
      await Promise.all(verifiers.map((v) => v.close()));
      await client.close();
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function keyAuthority(
  name: string,
  path: string,
  more: Partial<AuthorityConfig> = {}
): AuthorityConfig {
  return { name, key: { path }, tlog: 'optional', ...more };
}

export function keylessAuthority(
  name: string,
  trustedRoot: string,
  identities: NonNullable<AuthorityConfig['keyless']>['identities']
): AuthorityConfig {
  return { name, keyless: { trustedRoot, identities }, tlog: 'optional' };
}

export function ctx(): RequestContext {
  return { signal: AbortSignal.timeout(30_000) };
}

export function requires(
  authorities: string[],
  threshold = 1,
  attestations: VerificationRequirements['attestations'] = []
): VerificationRequirements {
  return { authorities, threshold, attestations };
}

/** `requires` one signature plus an SLSA provenance attestation by one of `attesters` (by default the signers). */
export function requiresProvenance(authorities: string[], attesters = authorities): VerificationRequirements {
  return requires(authorities, 1, [{ predicateType: SLSA_PROVENANCE_V1, authorities: attesters }]);
}

/** Verifies `host/repository@digest`. */
export function verifyDigest(
  verifier: ImageVerifier,
  env: VerifyEnv,
  repository: string,
  digest: string,
  requirements: VerificationRequirements
): Promise<VerificationResult> {
  return verifier.verify({ registry: env.registry.host, repository, digest, requirements, ctx: ctx() });
}

/** An assert.rejects matcher for a SigpinError code (and optionally a message fragment). */
export function code(expected: string, fragment?: string | RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    const e = err as { code?: string; message?: string };
    if (e.code !== expected)
      throw new Error(`expected ${expected}, got ${e.code ?? 'no code'}: ${e.message ?? String(err)}`);
    if (
      fragment !== undefined &&
      !(typeof fragment === 'string' ? (e.message ?? '').includes(fragment) : fragment.test(e.message ?? ''))
    ) {
      throw new Error(`message "${e.message}" lacks ${String(fragment)}`);
    }
    return true;
  };
}
