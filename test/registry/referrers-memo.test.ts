/**
 * RegistryClient remembers for 10 minutes that a repository of a registry answered 404 to the referrers API and
 * then goes straight to the `sha256-<hex>` fallback tag there. Against fake loopback registries (node:http on 127.0.0.1) that
 * count requests and can switch the API on, and against the real docker-registry (distribution 2.8, no API).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { RegistryClient } from '../../provider/src/registry/index.ts';
import type { RequestContext } from '../../provider/src/registry/index.ts';
import { requireBinary } from '../support/binaries.ts';
import {
  MEDIA_TYPES,
  blobOf,
  pushArtifact,
  pushReferrersFallbackIndex,
  sha256Digest,
} from '../support/images.ts';
import type { Descriptor } from '../support/images.ts';
import { startRegistry } from '../support/registry.ts';
import { startLoopbackServer } from './loopback-server.ts';
import type { LoopbackServer } from './loopback-server.ts';

const silent = pino({ level: 'silent' });
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const RECHECK_MS = 10 * 60_000;
const ctx = (): RequestContext => ({ signal: AbortSignal.timeout(20_000) });

/** A subject digest and one referrer of it (a descriptor only: listing never fetches the referrer). */
function subject(seed: string): { digest: string; referrer: Descriptor } {
  const referrer = blobOf(MEDIA_TYPES.ociManifest, Buffer.from(`{"referrer":"${seed}"}`), {
    artifactType: BUNDLE,
  }).descriptor;
  return { digest: sha256Digest(`subject ${seed}`), referrer };
}

const D1 = subject('one');
const D2 = subject('two');
const D3 = subject('three');

/** What a fake registry holds and how it answers; tests change `api` while it runs. */
interface FakeState {
  /** `missing`: 404 on every referrers path (distribution 2.8). `present`: the API, 404 only for unknown repos. */
  api: 'missing' | 'present';
  /** Repositories that exist. */
  repositories: Set<string>;
  /** Referrers per subject digest (the same in every repository, for brevity). */
  referrers: Map<string, Descriptor[]>;
  /** Whether the fallback tag index of a subject was pushed (it lists the same referrers). */
  fallbackTags: boolean;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/json'
): void {
  const bytes = Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {
    'Content-Type': contentType,
    'Content-Length': bytes.length,
  };
  if (status === 200) headers['Docker-Content-Digest'] = sha256Digest(bytes);
  res.writeHead(status, headers).end(bytes);
}

const ociError = (code: string) => ({ errors: [{ code, message: code.toLowerCase() }] });
const indexOf = (manifests: Descriptor[]) => ({
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.ociIndex,
  manifests,
});

/** A registry as far as listing referrers needs: the referrers API and fallback-tag manifests. */
function fakeRegistry(state: FakeState) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const referrers = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (referrers) {
      const [, repository = '', digest = ''] = referrers;
      // distribution 2.8 has no route for it: gorilla/mux's plain-text 404
      if (state.api === 'missing')
        return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      // zot: the API exists, but an unknown repository is a 404 (NAME_UNKNOWN or no body)
      if (!state.repositories.has(repository)) return sendJson(res, 404, ociError('NAME_UNKNOWN'));
      return sendJson(res, 200, indexOf(state.referrers.get(digest) ?? []), MEDIA_TYPES.ociIndex);
    }
    const manifest = /^\/v2\/(.+)\/manifests\/sha256-([0-9a-f]{64})$/.exec(path);
    if (manifest) {
      const [, repository = '', hex = ''] = manifest;
      if (!state.repositories.has(repository)) return sendJson(res, 404, ociError('NAME_UNKNOWN'));
      const listed = state.referrers.get(`sha256:${hex}`);
      if (!state.fallbackTags || listed === undefined)
        return sendJson(res, 404, ociError('MANIFEST_UNKNOWN'));
      return sendJson(res, 200, indexOf(listed), MEDIA_TYPES.ociIndex);
    }
    sendJson(res, 404, ociError('NAME_UNKNOWN'));
  };
}

/** Starts a fake registry and a client for it (stopped after the test); `asked()` lists what reached it. */
async function fake(t: { after: (fn: () => Promise<void>) => void }, state: Partial<FakeState> = {}) {
  const full: FakeState = {
    api: 'missing',
    repositories: new Set(['team/app', 'team/other']),
    referrers: new Map([
      [D1.digest, [D1.referrer]],
      [D2.digest, [D2.referrer]],
      [D3.digest, [D3.referrer]],
    ]),
    fallbackTags: true,
    ...state,
  };
  const server = await startLoopbackServer(fakeRegistry(full));
  const client = new RegistryClient({ allow: [server.host], insecure: [server.host], logger: silent });
  t.after(async () => {
    await client.close();
    await server.stop();
  });
  return { server, client, state: full, asked: () => asked(server) };
}

/** Requests as `API repo@digest` (referrers API) or `TAG repo@digest` (fallback tag), oldest first. */
function asked(server: LoopbackServer): string[] {
  return server.requests.map((r) => {
    const api = /^\/v2\/(.+)\/referrers\/sha256:([0-9a-f]{8})/.exec(r.url);
    if (api) return `API ${api[1]}@${api[2]}`;
    const tag = /^\/v2\/(.+)\/manifests\/sha256-([0-9a-f]{8})/.exec(r.url);
    if (tag) return `TAG ${tag[1]}@${tag[2]}`;
    return `${r.method} ${r.url}`;
  });
}

const short = (digest: string) => digest.slice('sha256:'.length, 'sha256:'.length + 8);

describe('referrers API memo: a registry without the API (fake)', () => {
  test('the first lookup asks the API then the fallback tag; the next digest goes straight to the tag', async (t) => {
    const { server, client, asked } = await fake(t);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(asked(), [`API team/app@${short(D1.digest)}`, `TAG team/app@${short(D1.digest)}`]);

    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D2.digest, ctx(), BUNDLE), [
      D2.referrer,
    ]);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(asked().slice(2), [
      `TAG team/app@${short(D2.digest)}`,
      `TAG team/app@${short(D1.digest)}`,
    ]);

    // Another repository of the same registry asks once itself (see the unknown-repository test below).
    assert.deepEqual(await client.listReferrers(server.host, 'team/other', D3.digest, ctx()), [D3.referrer]);
    assert.deepEqual(await client.listReferrers(server.host, 'team/other', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(asked().slice(4), [
      `API team/other@${short(D3.digest)}`,
      `TAG team/other@${short(D3.digest)}`,
      `TAG team/other@${short(D1.digest)}`,
    ]);
  });

  test('answers stay the same with the memo: no fallback index is no referrers', async (t) => {
    const { server, client, state, asked } = await fake(t, { fallbackTags: false });
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), []);
    state.fallbackTags = true;
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(asked(), [
      `API team/app@${short(D1.digest)}`,
      `TAG team/app@${short(D1.digest)}`,
      `TAG team/app@${short(D1.digest)}`,
    ]);
  });

  test('concurrent first lookups each ask the API once, then the memo holds', async (t) => {
    const { server, client, asked } = await fake(t);
    const all = await Promise.all(
      [D1, D2].map((d) => client.listReferrers(server.host, 'team/app', d.digest, ctx()))
    );
    assert.deepEqual(all, [[D1.referrer], [D2.referrer]]);
    assert.equal(asked().filter((r) => r.startsWith('API ')).length, 2);
    await client.listReferrers(server.host, 'team/app', D3.digest, ctx());
    assert.deepEqual(asked().slice(4), [`TAG team/app@${short(D3.digest)}`]);
  });

  test('the memo is per registry: another registry is asked on its own', async (t) => {
    const a = await fake(t);
    const b = await fake(t, { api: 'present' });
    const client = new RegistryClient({
      allow: [a.server.host, b.server.host],
      insecure: [a.server.host, b.server.host],
      logger: silent,
    });
    t.after(() => client.close());
    await client.listReferrers(a.server.host, 'team/app', D1.digest, ctx());
    assert.deepEqual(await client.listReferrers(b.server.host, 'team/app', D2.digest, ctx()), [D2.referrer]);
    assert.deepEqual(await client.listReferrers(b.server.host, 'team/app', D3.digest, ctx()), [D3.referrer]);
    assert.deepEqual(b.asked(), [`API team/app@${short(D2.digest)}`, `API team/app@${short(D3.digest)}`]);
  });

  test('after 10 minutes it asks the API again, and uses it once the registry has it', async (t) => {
    // The client reads Date.now() and has no clock option: only Date is mocked, timers and sockets stay real.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const { server, client, state, asked } = await fake(t);
    await client.listReferrers(server.host, 'team/app', D1.digest, ctx());
    t.mock.timers.tick(RECHECK_MS - 1);
    await client.listReferrers(server.host, 'team/app', D2.digest, ctx());
    assert.deepEqual(asked().slice(2), [`TAG team/app@${short(D2.digest)}`], 'still remembered just before');

    t.mock.timers.tick(1);
    await client.listReferrers(server.host, 'team/app', D2.digest, ctx());
    assert.deepEqual(asked().slice(3), [
      `API team/app@${short(D2.digest)}`,
      `TAG team/app@${short(D2.digest)}`,
    ]);

    // Still no API: remembered for another 10 minutes from this answer.
    t.mock.timers.tick(RECHECK_MS - 1);
    await client.listReferrers(server.host, 'team/app', D3.digest, ctx());
    assert.deepEqual(asked().slice(5), [`TAG team/app@${short(D3.digest)}`]);

    // The registry was upgraded (API, no fallback tags): found through the API once the memo ends.
    state.api = 'present';
    state.fallbackTags = false;
    t.mock.timers.tick(1);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D3.digest, ctx()), [D3.referrer]);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(asked().slice(6), [
      `API team/app@${short(D3.digest)}`,
      `API team/app@${short(D1.digest)}`,
    ]);
  });
});

describe('referrers API memo: a registry with the API (fake)', () => {
  test('an API that answers 200 is never remembered as missing, also with no referrers', async (t) => {
    const { server, client, state, asked } = await fake(t, { api: 'present', fallbackTags: false });
    state.referrers.set(D2.digest, []);
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D2.digest, ctx()), []);
    t.mock.timers.tick(RECHECK_MS);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D3.digest, ctx()), [D3.referrer]);
    assert.deepEqual(asked(), [
      `API team/app@${short(D1.digest)}`,
      `API team/app@${short(D2.digest)}`,
      `API team/app@${short(D3.digest)}`,
    ]);
  });

  test('a 404 for an unknown repository does not hide the API of the other repositories', async (t) => {
    // The spec allows the 404 ("assuming a repository is found, ... 200"); zot answers it. Signatures stored
    // through the API have no fallback tag, so remembering the registry as a whole would lose them.
    const { server, client, asked } = await fake(t, { api: 'present', fallbackTags: false });
    assert.deepEqual(await client.listReferrers(server.host, 'team/missing', D1.digest, ctx()), []);
    assert.deepEqual(await client.listReferrers(server.host, 'team/app', D1.digest, ctx()), [D1.referrer]);
    assert.deepEqual(await client.listReferrers(server.host, 'team/other', D2.digest, ctx()), [D2.referrer]);
    assert.deepEqual(asked(), [
      `API team/missing@${short(D1.digest)}`,
      `TAG team/missing@${short(D1.digest)}`,
      `API team/app@${short(D1.digest)}`,
      `API team/other@${short(D2.digest)}`,
    ]);
  });
});

describe(
  'referrers API memo: real docker-registry (distribution 2.8, no API)',
  requireBinary('docker-registry'),
  () => {
    test('one referrers 404, then only fallback-tag GETs for the other digests of the repository', async (t) => {
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const client = new RegistryClient({
        allow: [registry.host],
        insecure: [registry.host],
        logger: silent,
      });
      t.after(() => client.close());
      const image = (seed: string) =>
        pushArtifact(registry, 'team/app', {
          artifactType: 'application/vnd.example.image',
          layers: [{ mediaType: 'application/vnd.example.layer', bytes: Buffer.from(seed) }],
        });
      const [one, two] = [await image('one'), await image('two')];
      const signature = await pushArtifact(registry, 'team/app', {
        subject: one.descriptor,
        artifactType: BUNDLE,
        layers: [{ mediaType: BUNDLE, bytes: Buffer.from('{"bundle":1}') }],
      });
      await pushReferrersFallbackIndex(registry, 'team/app', one.descriptor.digest, [signature.descriptor]);
      const before = (await registry.requests()).length;

      assert.deepEqual(await client.listReferrers(registry.host, 'team/app', one.descriptor.digest, ctx()), [
        signature.descriptor,
      ]);
      assert.deepEqual(
        await client.listReferrers(registry.host, 'team/app', two.descriptor.digest, ctx()),
        []
      );
      assert.deepEqual(await client.listReferrers(registry.host, 'team/app', one.descriptor.digest, ctx()), [
        signature.descriptor,
      ]);
      const seen = (await registry.requests()).slice(before).map((r) => `${r.method} ${r.path} ${r.status}`);
      const tag = (digest: string) => `GET /v2/team/app/manifests/${digest.replace(':', '-')}`;
      assert.deepEqual(seen, [
        `GET /v2/team/app/referrers/${one.descriptor.digest} 404`,
        `${tag(one.descriptor.digest)} 200`,
        `${tag(two.descriptor.digest)} 404`,
        `${tag(one.descriptor.digest)} 200`,
      ]);
    });
  }
);
