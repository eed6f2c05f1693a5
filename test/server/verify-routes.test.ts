import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { writeFile } from 'node:fs/promises';
import { requireBinary } from '../support/binaries.ts';
import { pushImage, setupSigningSkopeo, type ImageKind, type PushedImage } from '../support/images.ts';
import { providerRequest, startProvider, type TestProvider } from '../support/provider.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { sigstoreRegistriesDir } from '../support/signing.ts';
import { FIXTURES } from '../verify/env.ts';

interface Item {
  key: string;
  value?: Record<string, unknown>;
  error?: string;
}
interface Response {
  response: { items: Item[]; systemError?: string };
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEY = join(FIXTURES, 'testbed-generated.key');
const PUB = join(FIXTURES, 'testbed-generated.pub');
const PASS = join(FIXTURES, 'testbed.pass');
const OTHER_KEY = join(FIXTURES, 'cosign-upstream-sigstore-label.key');
const OTHER_PASS = join(FIXTURES, 'cosign-upstream.pass');

const skip = requireBinary('docker-registry').skip ?? requireBinary('skopeo').skip;

describe('verify routes and `sigpin verify` with skopeo-signed images (real registry)', { skip }, () => {
  let registry: TestRegistry;
  let provider: TestProvider;
  let skopeo: string;
  const img: Record<string, PushedImage> = {};
  let config: Record<string, unknown>;

  async function signedPush(
    repo: string,
    tag: string,
    kind: ImageKind,
    key: string,
    pass: string,
    seed?: string
  ) {
    const d = await sigstoreRegistriesDir(registry.host);
    try {
      return await pushImage(registry, repo, tag, kind, {
        skopeo,
        ...(seed ? { seed } : {}),
        extraArgs: [
          '--registries.d',
          d.dir,
          '--sign-by-sigstore-private-key',
          key,
          '--sign-passphrase-file',
          pass,
        ],
      });
    } finally {
      await d.remove();
    }
  }

  before(async () => {
    registry = await startRegistry();
    skopeo = await setupSigningSkopeo();
    img['signed'] = await signedPush('acme/app', 'v1', 'oci-manifest', KEY, PASS);
    img['index'] = await signedPush('acme/multi', 'v1', 'oci-index', KEY, PASS);
    img['wrongKey'] = await signedPush('acme/other', 'v1', 'oci-manifest', OTHER_KEY, OTHER_PASS);
    img['unsigned'] = await pushImage(registry, 'acme/unsigned', 'v1', 'oci-manifest');
    img['open'] = await pushImage(registry, 'public/app', 'v1', 'docker-manifest');
    config = {
      registries: { allow: [registry.host], insecure: [registry.host] },
      authorities: [{ name: 'release', key: { path: PUB } }],
      policies: [
        { name: 'public', images: [`${registry.host}/public/**`], verify: false },
        { name: 'acme', images: [`${registry.host}/acme/**`], authorities: ['release'] },
      ],
    };
    provider = await startProvider({ config });
  });
  after(async () => {
    await provider?.stop();
    await registry?.stop();
  });

  async function verify(keys: string[], engine = 'gatekeeper'): Promise<Item[]> {
    const { status, body } = await provider.post(`/${engine}/v1/verify`, providerRequest(keys));
    assert.equal(status, 200);
    assert.equal((body as Response).response.systemError, undefined, JSON.stringify(body));
    return (body as Response).response.items;
  }

  test('signed image and signed index: verdicts with digest, pinned, policy, mode and the authority', async () => {
    for (const engine of ['gatekeeper', 'kyverno']) {
      const items = await verify(
        [(img['signed'] as PushedImage).reference, (img['index'] as PushedImage).reference],
        engine
      );
      for (const [i, name] of ['signed', 'index'].entries()) {
        const image = img[name] as PushedImage;
        assert.deepEqual(items[i]?.value && { ...items[i].value, signatures: undefined }, {
          digest: image.digest,
          pinned: `${image.reference}@${image.digest}`,
          policy: 'acme',
          mode: 'mutate',
          verified: true,
          signatures: undefined,
        });
        const signatures = items[i]?.value?.['signatures'] as Array<{ authority: string; kind: string }>;
        assert.ok(signatures.length >= 1);
        assert.ok(signatures.every((s) => s.authority === 'release' && s.kind === 'key'));
      }
    }
  });

  test('unsigned: UNSIGNED; signed by another key: UNTRUSTED; unknown repository policy: verify:false verdict', async () => {
    const items = await verify([
      (img['unsigned'] as PushedImage).reference,
      (img['wrongKey'] as PushedImage).reference,
      (img['open'] as PushedImage).reference,
    ]);
    assert.match(items[0]?.error ?? '', /^UNSIGNED: /);
    assert.match(items[1]?.error ?? '', /^UNTRUSTED: /);
    assert.equal(items[2]?.value?.['verified'], false);
    assert.equal(items[2]?.error, undefined);
  });

  test('UPDATE with an unchanged digest skips signature fetches; a moved tag is verified again', async () => {
    const signed = img['signed'] as PushedImage;
    const oldPinned = `${signed.reference}@${signed.digest}`;
    const skippedBefore = await provider.metric('sigpin_verify_skipped_total');
    const requestsBefore = (await registry.requests()).length;
    const [same] = await verify([`[ns=apps,old=${oldPinned}]${signed.reference}`]);
    assert.equal(same?.value?.['reason'], 'unchanged');
    assert.equal(same?.value?.['verified'], true);
    assert.equal((await provider.metric('sigpin_verify_skipped_total')) - skippedBefore, 1);
    const newRequests = (await registry.requests()).slice(requestsBefore);
    assert.ok(
      newRequests.every((r) => r.method === 'HEAD' && !r.path.includes('.sig')),
      `only a tag HEAD at most: ${JSON.stringify(newRequests)}`
    );

    // The tag moves to an unsigned image: the old digest no longer matches, so it is verified and refused.
    await pushImage(registry, 'acme/app', 'v1', 'oci-manifest', { seed: 'moved' });
    const fresh = await startProvider({ config });
    try {
      const { body } = await fresh.post(
        '/gatekeeper/v1/verify',
        providerRequest([`[old=${oldPinned}]${signed.reference}`])
      );
      assert.match((body as Response).response.items[0]?.error ?? '', /^UNSIGNED: /);
    } finally {
      await fresh.stop();
    }
  });

  test('mutate pins the tag it resolves, keeping the tag', async () => {
    const index = img['index'] as PushedImage;
    const { body } = await provider.post('/gatekeeper/v1/mutate', providerRequest([index.reference]));
    assert.deepEqual((body as Response).response.items, [
      { key: index.reference, value: `${index.reference}@${index.digest}` },
    ]);
  });

  test('sigpin verify: verdict lines, exit 0 when all trusted and 1 when any is not', async () => {
    const file = join(provider.dir, 'cli.yaml');
    await writeFile(file, stringify(config));
    const run = promisify(execFile);
    const cli = (args: string[]) =>
      run(join(ROOT, 'node_modules/.bin/node'), [
        join(ROOT, 'provider/bin/sigpin.js'),
        'verify',
        ...args,
        '--config',
        file,
      ]).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout })
      );
    const index = img['index'] as PushedImage;
    const ok = await cli([index.reference]);
    assert.equal(ok.code, 0);
    assert.equal(JSON.parse(ok.stdout).verified, true);
    const mixed = await cli([index.reference, (img['unsigned'] as PushedImage).reference]);
    assert.equal(mixed.code, 1);
    const lines = mixed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { error?: string });
    assert.match(lines[1]?.error ?? '', /^UNSIGNED: /);
  });
});
