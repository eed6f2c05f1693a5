/**
 * Shared pieces of the resilience tests: a registry seeded with signed and unsigned images, provider configs
 * that point at it (directly or through the fault proxy), and the checks every scenario makes (a well-formed
 * ProviderResponse, nothing unverified trusted, the provider alive with bounded memory).
 */
import assert from 'node:assert/strict';
import { KeySigner, pushRawImage, pushSignatures, simpleSigningPayload } from '../../bench/signing.ts';
import type { TestProvider } from '../support/provider.ts';
import type { RegistryTarget } from '../support/images.ts';

export interface Item {
  key: string;
  value?: unknown;
  error?: string;
}

export interface Response {
  items: Item[];
  systemError?: string;
}

/** Checks the ProviderResponse shape strictly and returns its response part. */
export function providerResponseOf(status: number, body: unknown): Response {
  assert.equal(status, 200, `HTTP ${status}: ${JSON.stringify(body)}`);
  assert.ok(typeof body === 'object' && body !== null, 'body is an object');
  const b = body as Record<string, unknown>;
  assert.equal(b.apiVersion, 'externaldata.gatekeeper.sh/v1beta1');
  assert.equal(b.kind, 'ProviderResponse');
  const r = b.response as Record<string, unknown>;
  assert.equal(r.idempotent, true);
  assert.ok(Array.isArray(r.items), 'items is an array');
  for (const item of r.items as Item[]) {
    assert.equal(typeof item.key, 'string');
    assert.ok((item.value === undefined) !== (item.error === undefined), 'an item has a value or an error');
    if (item.error !== undefined) {
      // Definitive codes only: a transient failure is never an item error (Gatekeeper would cache it).
      assert.match(
        item.error,
        /^(INVALID_REFERENCE|NOT_FOUND|NOT_ALLOWED|UNAUTHORIZED|NO_POLICY|UNSIGNED|UNTRUSTED|ATTESTATION_MISSING): /
      );
    }
  }
  if (r.systemError !== undefined) assert.match(String(r.systemError), /^(REGISTRY_UNAVAILABLE|INTERNAL): /);
  return r as unknown as Response;
}

export function itemFor(r: Response, key: string): Item | undefined {
  return r.items.find((i) => i.key === key);
}

/** The verdict of a verify item when it says trusted, else undefined. */
export function trustedVerdict(item: Item | undefined): { digest: string; verified: true } | undefined {
  const v = item?.value as { verified?: unknown; digest?: unknown } | undefined;
  return v?.verified === true ? (v as { digest: string; verified: true }) : undefined;
}

export function request(keys: string[]): Record<string, unknown> {
  return { apiVersion: 'externaldata.gatekeeper.sh/v1beta1', kind: 'ProviderRequest', request: { keys } };
}

export async function post(provider: TestProvider, route: string, keys: string[]): Promise<Response> {
  const { status, body } = await provider.post(`/gatekeeper/v1/${route}`, request(keys));
  return providerResponseOf(status, body);
}

/** Resident memory of the provider process, from its own metrics. */
export async function rssMiB(provider: TestProvider): Promise<number> {
  return (await provider.metric('sigpin_process_resident_memory_bytes')) / 1048576;
}

/** No crash and memory bounded (generous: the bound catches leaks per request, not tuning). */
export async function assertHealthy(provider: TestProvider, maxRssMiB = 400): Promise<void> {
  assert.ok(provider.running(), `provider exited:\n${provider.logs().slice(-3000)}`);
  const health = await provider.get('/healthz');
  assert.equal(health.status, 200);
  const rss = await rssMiB(provider);
  assert.ok(rss > 0 && rss < maxRssMiB, `provider RSS ${rss.toFixed(0)} MiB exceeds ${maxRssMiB} MiB`);
}

export interface SeededImages {
  signer: KeySigner;
  /** `repo:tag` -> digest of images signed by `signer`. */
  signed: Map<string, string>;
  /** `repo:tag` -> digest of images without any signature. */
  unsigned: Map<string, string>;
}

/** Pushes `signed` signed and `unsigned` unsigned images (repositories `signed/app` and `unsigned/app`). */
export async function seedImages(
  target: RegistryTarget,
  counts: { signed: number; unsigned: number },
  signer = new KeySigner()
): Promise<SeededImages> {
  const signed = new Map<string, string>();
  const unsigned = new Map<string, string>();
  for (let i = 0; i < counts.signed; i++) {
    const digest = await pushRawImage(target, 'signed/app', `s${i}`, `resilience-signed-${i}`);
    await pushSignatures(target, 'signed/app', digest, [
      signer.sign(simpleSigningPayload(`${target.host}/signed/app`, digest)),
    ]);
    signed.set(`signed/app:s${i}`, digest);
  }
  for (let i = 0; i < counts.unsigned; i++) {
    unsigned.set(
      `unsigned/app:u${i}`,
      await pushRawImage(target, 'unsigned/app', `u${i}`, `resilience-unsigned-${i}`)
    );
  }
  return { signer, signed, unsigned };
}

/** Extra tags on one image, for "fresh" (never resolved) keys; returns `repo:tag` names. */
export async function pushTags(target: RegistryTarget, prefix: string, count: number): Promise<string[]> {
  const tags: string[] = [];
  for (let i = 0; i < count; i++) {
    await pushRawImage(target, 'fresh/app', `${prefix}${i}`, 'resilience-fresh');
    tags.push(`fresh/app:${prefix}${i}`);
  }
  return tags;
}

/**
 * A provider config for a registry at `host` (the real one or the fault proxy): the signed repository needs the
 * key signature, everything else is resolve-only.
 */
export function providerConfig(
  host: string,
  publicKeyPem: string,
  overrides: { registries?: object; cache?: object; server?: object } = {}
): { config: Record<string, unknown>; files: Record<string, string> } {
  return {
    config: {
      server: { timeouts: { resolve: '1500ms', mutate: '1500ms', verify: '2s' }, ...overrides.server },
      registries: {
        allow: [host],
        insecure: [host],
        timeout: '400ms',
        maxRetries: 1,
        ...overrides.registries,
      },
      cache: { digestTTL: '1m', negativeTTL: '30s', ...overrides.cache },
      authorities: [{ name: 'release', key: { path: 'cosign.pub' } }],
      policies: [
        { name: 'signed', images: [`${host}/signed/**`, `${host}/unsigned/**`], authorities: ['release'] },
        { name: 'rest', images: ['**'], verify: false },
      ],
    },
    files: { 'cosign.pub': publicKeyPem },
  };
}

/**
 * Runs `rounds` rounds of `concurrency` parallel calls of `work` (a bounded load that stops by itself); returns
 * every result in order. A rejected call (socket error) fails the test.
 */
export async function boundedLoad<T>(
  rounds: number,
  concurrency: number,
  work: (round: number, slot: number) => Promise<T>,
  between?: (round: number) => Promise<void>
): Promise<T[]> {
  const out: T[] = [];
  for (let round = 0; round < rounds; round++) {
    out.push(...(await Promise.all(Array.from({ length: concurrency }, (_, slot) => work(round, slot)))));
    await between?.(round);
  }
  return out;
}
