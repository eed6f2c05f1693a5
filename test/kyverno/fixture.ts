/**
 * The world the Kyverno policy tests run in: a real docker-registry with images signed by an independent signer
 * (skopeo 1.18, cosign-compatible `.sig` attachments), and the real provider trusting one key.
 *
 * Images (HOST = the registry's 127.0.0.1:PORT):
 *   HOST/team/app:1.0, :2.0       signed with the trusted key (testbed-generated.key)
 *   HOST/team/init:1.0            signed with the trusted key
 *   HOST/team/unsigned:1.0        not signed                                      -> UNSIGNED
 *   HOST/team/untrusted:1.0       signed with another key (cosign upstream test key) -> UNTRUSTED
 *   HOST/team/missing:1.0         never pushed                                    -> NOT_FOUND
 *   HOST/legacy/app:1.0           signed; trust policy mode validate-only         -> mutate leaves it alone
 *   DEAD/team/app:1.0             DEAD is an allowed registry where nothing listens -> transient (systemError)
 */
import assert from 'node:assert/strict';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pushImage, setupSigningSkopeo, type PushedImage } from '../support/images.ts';
import { FIXTURES } from '../verify/env.ts';
import { freePort } from '../support/ports.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import {
  imagesOf,
  makeCertificates,
  POLICIES_DIR,
  pointPolicyAt,
  startProvider,
  tempDir,
  type ApplyOutcome,
  type RunningProvider,
} from './harness.ts';
import type { Images } from './resources.ts';
import { missingComponent } from '../support/binaries.ts';

/** Cosign key fixtures are read where the testbed keeps them (beside the checkout), never copied into the repo. */
export { FIXTURES };
const TRUSTED_KEY = 'testbed-generated.key';
const TRUSTED_PUB = 'testbed-generated.pub';
const TRUSTED_PASS = 'testbed.pass';
const OTHER_KEY = 'cosign-upstream-sigstore-label.key';
const OTHER_PASS = 'cosign-upstream.pass';

/** node:test option: skip locally when the testbed fixtures are absent; fail under CI. */
export async function requireFixtures(): Promise<{ skip?: string }> {
  try {
    await access(join(FIXTURES, TRUSTED_KEY));
    return {};
  } catch {
    const reason = `cosign key fixtures not found in ${FIXTURES} (set SIGPIN_TESTBED_FIXTURES)`;
    return missingComponent(reason);
  }
}

export interface KyvernoWorld {
  registry: TestRegistry;
  provider: RunningProvider;
  caPem: string;
  dir: string;
  images: {
    app1: PushedImage;
    app2: PushedImage;
    init: PushedImage;
    unsigned: PushedImage;
    untrusted: PushedImage;
    legacy: PushedImage;
  };
  /** `HOST/team/missing:1.0` (never pushed). */
  missing: string;
  /** `DEAD/team/app:1.0` on an allowed registry address where nothing listens. */
  unreachable: string;
  stop(): Promise<void>;
}

async function signedPush(
  registry: TestRegistry,
  repository: string,
  tag: string,
  registriesD: string,
  key?: { key: string; pass: string }
): Promise<PushedImage> {
  if (!key) return pushImage(registry, repository, tag, 'oci-manifest');
  return pushImage(registry, repository, tag, 'oci-manifest', {
    skopeo: await setupSigningSkopeo(),
    extraArgs: [
      '--registries.d',
      registriesD,
      '--sign-by-sigstore-private-key',
      join(FIXTURES, key.key),
      '--sign-passphrase-file',
      join(FIXTURES, key.pass),
    ],
  });
}

export interface WorldOptions {
  /** Require Kyverno's bearer token, checked by TokenReview against the API server in this kubeconfig. */
  tokenReview?: { audience: string; kubeconfig: string };
}

export async function startKyvernoWorld(options: WorldOptions = {}): Promise<KyvernoWorld> {
  const { dir, cleanup } = await tempDir('sigpin-kyverno-');
  const stops: Array<() => Promise<void>> = [cleanup];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const registry = await startRegistry();
    stops.push(() => registry.stop());
    // skopeo writes cosign `.sig` attachments only when registries.d asks for them, per registry
    const registriesD = join(dir, 'registries.d');
    await mkdir(registriesD);
    await writeFile(
      join(registriesD, 'sigpin-test.yaml'),
      `docker:\n  ${registry.host}:\n    use-sigstore-attachments: true\n`
    );
    const trusted = { key: TRUSTED_KEY, pass: TRUSTED_PASS };
    const images = {
      app1: await signedPush(registry, 'team/app', '1.0', registriesD, trusted),
      app2: await signedPush(registry, 'team/app', '2.0', registriesD, trusted),
      init: await signedPush(registry, 'team/init', '1.0', registriesD, trusted),
      unsigned: await signedPush(registry, 'team/unsigned', '1.0', registriesD),
      untrusted: await signedPush(registry, 'team/untrusted', '1.0', registriesD, {
        key: OTHER_KEY,
        pass: OTHER_PASS,
      }),
      legacy: await signedPush(registry, 'legacy/app', '1.0', registriesD, trusted),
    };

    // a loopback port that was free a moment ago: connections to it are refused (a transient failure)
    const dead = `127.0.0.1:${await freePort()}`;
    const certs = await makeCertificates(dir);
    const configFile = join(dir, 'sigpin.yaml');
    await writeFile(
      configFile,
      [
        'server:',
        '  host: 127.0.0.1',
        `  tls: { certFile: ${JSON.stringify(certs.certFile)}, keyFile: ${JSON.stringify(certs.keyFile)} }`,
        ...(options.tokenReview
          ? [
              `  kyvernoAuth: { tokenReview: true, audience: ${JSON.stringify(options.tokenReview.audience)} }`,
            ]
          : []),
        'registries:',
        `  allow: [${JSON.stringify(registry.host)}, ${JSON.stringify(dead)}]`,
        `  insecure: [${JSON.stringify(registry.host)}, ${JSON.stringify(dead)}]`,
        '  maxRetries: 0',
        '  timeout: 2s',
        'cache: { url: "memory://" }',
        'authorities:',
        '  - name: release',
        `    key: { path: ${JSON.stringify(join(FIXTURES, TRUSTED_PUB))} }`,
        'policies:',
        '  - name: legacy',
        `    images: [${JSON.stringify(`${registry.host}/legacy/**`)}]`,
        '    authorities: [release]',
        '    mode: validate-only',
        '  - name: team',
        `    images: [${JSON.stringify(`${registry.host}/team/**`)}, ${JSON.stringify(`${dead}/**`)}]`,
        '    authorities: [release]',
        ...(options.tokenReview
          ? [`kubernetes: { kubeconfig: ${JSON.stringify(options.tokenReview.kubeconfig)} }`]
          : []),
        'log: { level: info }',
        '',
      ].join('\n')
    );
    const provider = await startProvider(configFile, certs.caPem);
    stops.push(() => provider.stop());
    return {
      registry,
      provider,
      caPem: certs.caPem,
      dir,
      images,
      missing: `${registry.host}/team/missing:1.0`,
      unreachable: `${dead}/team/app:1.0`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The world's image references by role, as the resource builders take them. */
export function worldImages(world: KyvernoWorld): Images {
  return {
    app1: world.images.app1.reference,
    app2: world.images.app2.reference,
    init: world.images.init.reference,
    unsigned: world.images.unsigned.reference,
    untrusted: world.images.untrusted.reference,
    legacy: world.images.legacy.reference,
    missing: world.missing,
    unreachable: world.unreachable,
  };
}

/**
 * Temp copies of one generation's shipped policies (policies/kyverno/GENERATION/VARIANT/FILE.yaml) pointed at the
 * world's provider, by `variant/file` (`workloads/pin-images`, `pods-only/verify-images`, ...).
 */
export async function pointedPolicies(
  world: KyvernoWorld,
  generation: 'cel' | 'clusterpolicy'
): Promise<Map<string, string>> {
  const policy = new Map<string, string>();
  for (const variant of ['workloads', 'pods-only']) {
    for (const file of ['pin-images', 'verify-images']) {
      const path = join(world.dir, `${generation}-${variant}-${file}.yaml`);
      await writeFile(
        path,
        await pointPolicyAt(
          join(POLICIES_DIR, generation, variant, `${file}.yaml`),
          world.provider.url,
          world.caPem
        )
      );
      policy.set(`${variant}/${file}`, path);
    }
  }
  return policy;
}

/** The pin and verify policy files of one variant, from `pointedPolicies`, in the order they apply. */
export function pinAndVerify(policy: Map<string, string>, variant: 'workloads' | 'pods-only'): string[] {
  return [policy.get(`${variant}/pin-images`) ?? '', policy.get(`${variant}/verify-images`) ?? ''];
}

/** `ref@digest`: what the mutate policies make of an image reference. */
export const pinned = (ref: string, digest: string): string => `${ref}@${digest}`;

/** The names of the shipped pin and verify policies (the same in both generations). */
export const PIN = 'sigpin-pin-images';
export const VERIFY = 'sigpin-verify-images';

/**
 * The signed Pod of `workloadMix` after both policies: every container list pinned (tag kept), the validate-only
 * image left alone, and verified.
 */
export function assertSignedPodPinnedAndVerified(run: ApplyOutcome, world: KyvernoWorld): void {
  const img = worldImages(world);
  assert.equal(run.resultFor(PIN, 'Pod', 'signed').result, 'pass', run.cli.transcript);
  assert.deepEqual(imagesOf(run.patchedResource('Pod', 'signed')), {
    containers: [pinned(img.app1, world.images.app1.digest), img.legacy],
    initContainers: [pinned(img.init, world.images.init.digest)],
    ephemeralContainers: [pinned(img.app2, world.images.app2.digest)],
  });
  assert.equal(run.resultFor(VERIFY, 'Pod', 'signed').result, 'pass', run.cli.transcript);
}
