/**
 * Deterministic test images, pushed to a real registry.
 *
 * Images are made from a seed string only (no timestamps, no randomness), so their digests are known before the
 * push: a gzipped tar layer holding the seed, a config, and an OCI or Docker schema2 manifest; multi-arch images
 * add an OCI index or a Docker manifest list over linux/amd64 and linux/arm64. They are written to a local
 * layout directory and pushed with `skopeo copy --all --preserve-digests`, which sends the bytes as given.
 *
 * For content skopeo cannot make (artifacts with `subject`, the referrers fallback tag index) there is a small
 * HTTP pusher that speaks the distribution API with none, Basic or Bearer auth.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const ACCEPT_MANIFESTS = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(', ');

export type ImageKind = 'oci-manifest' | 'docker-manifest' | 'oci-index' | 'docker-list';

export interface Platform {
  architecture: string;
  os: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** A content-addressed object: its bytes and descriptor. */
export interface Blob {
  bytes: Buffer;
  descriptor: Descriptor;
}

/** An image built in memory: the top manifest plus every blob and child manifest it needs. */
export interface BuiltImage {
  kind: ImageKind;
  /** The top-level manifest (what a tag points at); its digest is the image digest. */
  manifest: Blob;
  /** Child manifests of an index/list (empty for a single manifest), each with `platform`. */
  children: Blob[];
  /** Configs and layers of every manifest. */
  blobs: Blob[];
}

/** What a registry needs to be pushed to. */
export interface RegistryTarget {
  host: string;
  url: string;
  username?: string;
  password?: string;
}

export interface PushedImage extends BuiltImage {
  /** `HOST/repo:tag` */
  reference: string;
  digest: string;
  mediaType: string;
  size: number;
}

export const PLATFORMS: readonly Platform[] = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux' },
];

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function blobOf(mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Blob {
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length, ...extra } };
}

/** The referrers fallback tag for a digest (distribution-spec "Referrers Tag Schema"): `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** A one-file ustar archive with fixed metadata, so the same seed always gives the same bytes. */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string): void => {
    header.write(value, offset, length, 'ascii');
  };
  const octal = (value: number, length: number): string => value.toString(8).padStart(length - 1, '0') + '\0';
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, '        '); // checksum is computed with this field as spaces
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/** One platform image (config + one layer + manifest) in OCI or Docker schema2 form. */
function buildSingle(seed: string, docker: boolean, platform: Platform): { manifest: Blob; blobs: Blob[] } {
  const tar = tarOf('seed.txt', Buffer.from(`${seed}\n`));
  // mtime 0 and a fixed OS byte in the gzip header keep the layer deterministic
  const layer = blobOf(docker ? MEDIA_TYPES.dockerLayer : MEDIA_TYPES.ociLayer, gzipSync(tar, { level: 9 }));
  const config = blobOf(
    docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig,
    Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        os: platform.os,
        config: { Labels: { 'dev.sigpin.test.seed': seed } },
        rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] },
      })
    )
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest,
      config: config.descriptor,
      layers: [layer.descriptor],
    })
  );
  return {
    manifest: blobOf(docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest, manifest),
    blobs: [config, layer],
  };
}

/** Builds an image of the given kind from a seed; equal inputs give byte-identical images. */
export function buildImage(kind: ImageKind, seed: string): BuiltImage {
  const docker = kind === 'docker-manifest' || kind === 'docker-list';
  if (kind === 'oci-manifest' || kind === 'docker-manifest') {
    const single = buildSingle(seed, docker, PLATFORMS[0] ?? { architecture: 'amd64', os: 'linux' });
    return { kind, manifest: single.manifest, children: [], blobs: single.blobs };
  }
  const children: Blob[] = [];
  const blobs: Blob[] = [];
  for (const platform of PLATFORMS) {
    const single = buildSingle(`${seed}/${platform.os}/${platform.architecture}`, docker, platform);
    children.push({ bytes: single.manifest.bytes, descriptor: { ...single.manifest.descriptor, platform } });
    blobs.push(...single.blobs);
  }
  const mediaType = docker ? MEDIA_TYPES.dockerList : MEDIA_TYPES.ociIndex;
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, manifests: children.map((c) => c.descriptor) })
  );
  return { kind, manifest: blobOf(mediaType, index), children, blobs };
}

/**
 * Writes an image in skopeo's `dir:` layout (manifest.json, child manifests as `<hex>.manifest.json`, blobs
 * named by hex digest). Unlike an OCI layout, it carries Docker schema2 manifests and lists too, and skopeo
 * reads the manifest bytes verbatim.
 */
async function writeDirLayout(dir: string, image: BuiltImage): Promise<void> {
  await mkdir(dir, { recursive: true });
  const hex = (digest: string): string => digest.slice('sha256:'.length);
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  await writeFile(join(dir, 'manifest.json'), image.manifest.bytes);
  for (const child of image.children) {
    await writeFile(join(dir, `${hex(child.descriptor.digest)}.manifest.json`), child.bytes);
  }
  for (const blob of image.blobs) await writeFile(join(dir, hex(blob.descriptor.digest)), blob.bytes);
}

/** `user:password` for skopeo's --dest-creds, when the registry has credentials. */
function credsArgs(flag: string, target: RegistryTarget): string[] {
  return target.username === undefined ? [] : [flag, `${target.username}:${target.password ?? ''}`];
}

export interface SkopeoCopyOptions {
  /** The skopeo binary; default `skopeo` on PATH (see setupSigningSkopeo for one that signs). */
  skopeo?: string;
  /** Extra `copy` arguments, e.g. signing options. */
  extraArgs?: string[];
  /** Extra environment, e.g. for a registries.d directory. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `skopeo copy --all --preserve-digests` from a local transport reference to `docker://HOST/repo:tag`,
 * over plain HTTP with the target's credentials.
 */
export async function skopeoCopy(
  source: string,
  target: RegistryTarget,
  repository: string,
  tag: string,
  options: SkopeoCopyOptions = {}
): Promise<void> {
  const args = [
    '--insecure-policy',
    'copy',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    ...credsArgs('--dest-creds', target),
    ...(options.extraArgs ?? []),
    source,
    `docker://${target.host}/${repository}:${tag}`,
  ];
  try {
    await run(options.skopeo ?? 'skopeo', args, {
      env: { ...process.env, ...options.env },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(`skopeo copy to ${target.host}/${repository}:${tag} failed: ${e.stderr ?? e.message}`, {
      cause: err,
    });
  }
}

export interface PushImageOptions extends SkopeoCopyOptions {
  /** Content seed; default `repository:tag`. Same seed and kind give the same digest. */
  seed?: string;
}

/**
 * Builds an image from a seed and pushes it with skopeo as `HOST/repository:tag`. The returned digest was
 * computed locally before the push.
 *   const image = await pushImage(registry, 'team/app', 'v1', 'oci-index');
 */
export async function pushImage(
  target: RegistryTarget,
  repository: string,
  tag: string,
  kind: ImageKind,
  options: PushImageOptions = {}
): Promise<PushedImage> {
  const seed = options.seed ?? `${repository}:${tag}`;
  const image = buildImage(kind, seed);
  const dir = await mkdtemp(join(tmpdir(), 'sigpin-image-'));
  try {
    await writeDirLayout(dir, image);
    await skopeoCopy(`dir:${dir}`, target, repository, tag, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    ...image,
    reference: `${target.host}/${repository}:${tag}`,
    digest: image.manifest.descriptor.digest,
    mediaType: image.manifest.descriptor.mediaType,
    size: image.manifest.descriptor.size,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Raw distribution API pushes, for content skopeo cannot make.

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

function parseChallenge(header: string | null): Challenge | undefined {
  const m = /^(\w+)\s+(.*)$/.exec(header ?? '');
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, value] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[key ?? ''] = value ?? '';
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

/** A minimal distribution API client for test set-up (not the code under test). */
export class TestRegistryHttp {
  readonly #target: RegistryTarget;
  readonly #tokens = new Map<string, string>();
  #basic = false;

  constructor(target: RegistryTarget) {
    this.#target = target;
  }

  #basicCredential(): string | undefined {
    const { username, password } = this.#target;
    return username === undefined
      ? undefined
      : Buffer.from(`${username}:${password ?? ''}`).toString('base64');
  }

  async #token(challenge: Challenge, scope: string): Promise<string> {
    const url = new URL(challenge.params.realm ?? '');
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const basic = this.#basicCredential();
    const res = await fetch(url, { headers: basic ? { Authorization: `Basic ${basic}` } : {} });
    if (!res.ok) throw new Error(`token server ${url.origin} -> ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error('token server answered no token');
    return token;
  }

  /** One request with auth negotiated from the 401 challenge; `scope` keys the bearer token. */
  async request(
    method: string,
    pathOrUrl: string,
    init: { headers?: Record<string, string>; body?: Buffer; scope: string }
  ): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.#target.url}${pathOrUrl}`;
    const send = (): Promise<Response> => {
      const headers = { ...init.headers };
      const token = this.#tokens.get(init.scope);
      const basic = this.#basicCredential();
      if (token) headers.Authorization = `Bearer ${token}`;
      else if (this.#basic && basic) headers.Authorization = `Basic ${basic}`;
      return fetch(url, { method, headers, ...(init.body ? { body: init.body } : {}) });
    };
    let res = await send();
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    await res.arrayBuffer();
    if (challenge?.scheme === 'basic') this.#basic = true;
    else if (challenge?.scheme === 'bearer')
      this.#tokens.set(init.scope, await this.#token(challenge, init.scope));
    res = await send();
    return res;
  }

  async putBlob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    const scope = `repository:${repository}:pull,push`;
    const head = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, { scope });
    if (head.ok) return digest;
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`, { scope });
    await start.arrayBuffer();
    if (start.status !== 202) throw new Error(`start upload -> ${start.status}`);
    const location = new URL(start.headers.get('location') ?? '', this.#target.url);
    location.searchParams.set('digest', digest);
    const put = await this.request('PUT', location.toString(), {
      scope,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
    if (put.status !== 201) throw new Error(`PUT blob -> ${put.status} ${await put.text()}`);
    await put.arrayBuffer().catch(() => undefined);
    return digest;
  }

  /** PUT a manifest by tag or digest; returns the digest the registry reports. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string
  ): Promise<string> {
    const res = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      scope: `repository:${repository}:pull,push`,
      headers: { 'Content-Type': mediaType },
      body: bytes,
    });
    const text = await res.text();
    if (res.status !== 201)
      throw new Error(`PUT manifest ${repository}:${reference} -> ${res.status} ${text}`);
    return res.headers.get('docker-content-digest') ?? sha256Digest(bytes);
  }
}

export interface ArtifactSpec {
  /** The manifest this artifact refers to (`subject`). */
  subject?: Descriptor;
  artifactType: string;
  layers: Array<{ mediaType: string; bytes: Buffer; annotations?: Record<string, string> }>;
  annotations?: Record<string, string>;
  /** Also tag the artifact manifest (it is always pushed by digest). */
  tag?: string;
}

/** The OCI empty config `{}` used by artifacts. */
export const EMPTY_CONFIG = blobOf(MEDIA_TYPES.ociEmpty, Buffer.from('{}'));

/** Pushes an OCI artifact manifest (empty config, given layers, optional subject) and its blobs. */
export async function pushArtifact(
  target: RegistryTarget,
  repository: string,
  spec: ArtifactSpec
): Promise<Blob> {
  const http = new TestRegistryHttp(target);
  await http.putBlob(repository, EMPTY_CONFIG.bytes);
  const layers: Descriptor[] = [];
  for (const layer of spec.layers) {
    await http.putBlob(repository, layer.bytes);
    const { descriptor } = blobOf(
      layer.mediaType,
      layer.bytes,
      layer.annotations ? { annotations: layer.annotations } : {}
    );
    layers.push(descriptor);
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: spec.artifactType,
    config: EMPTY_CONFIG.descriptor,
    layers,
    ...(spec.subject ? { subject: spec.subject } : {}),
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const blob = blobOf(MEDIA_TYPES.ociManifest, Buffer.from(JSON.stringify(manifest)), {
    artifactType: spec.artifactType,
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  });
  await http.putManifest(repository, blob.descriptor.digest, blob.bytes, MEDIA_TYPES.ociManifest);
  if (spec.tag) await http.putManifest(repository, spec.tag, blob.bytes, MEDIA_TYPES.ociManifest);
  return blob;
}

/**
 * Pushes the referrers fallback index (`sha256-<hex>` tag) for `subjectDigest`, listing `referrers`: what a
 * client writes when the registry has no referrers API (distribution 2.8).
 */
export async function pushReferrersFallbackIndex(
  target: RegistryTarget,
  repository: string,
  subjectDigest: string,
  referrers: Descriptor[]
): Promise<Blob> {
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: referrers })
  );
  const blob = blobOf(MEDIA_TYPES.ociIndex, index);
  await new TestRegistryHttp(target).putManifest(
    repository,
    referrersTag(subjectDigest),
    blob.bytes,
    MEDIA_TYPES.ociIndex
  );
  return blob;
}

// ---------------------------------------------------------------------------------------------------------------
// A skopeo that signs (Debian trixie's 1.18; bookworm's 1.9 has sigstore disabled).

const SIGNING_SKOPEO_VERSION = '1.18';
let signingSkopeo: Promise<string> | undefined;

/** Where the signing skopeo is cached: outside the repo, keyed by version. */
export function signingSkopeoDir(): string {
  const tools = process.env.SIGPIN_TOOLS ?? join(process.env.HOME ?? tmpdir(), '.cache', 'sigpin-tools');
  return join(tools, `skopeo-${SIGNING_SKOPEO_VERSION}`);
}

/**
 * Installs (once, cached) the signing skopeo via scripts/setup-skopeo-sigstore.sh and returns its wrapper
 * path. Use it as `SkopeoCopyOptions.skopeo` with `--sign-by-sigstore-private-key` in `extraArgs`.
 */
export function setupSigningSkopeo(): Promise<string> {
  signingSkopeo ??= (async () => {
    const script = new URL('../../scripts/setup-skopeo-sigstore.sh', import.meta.url).pathname;
    const dest = signingSkopeoDir();
    await run('bash', [script, dest], { maxBuffer: 16 * 1024 * 1024 });
    return join(dest, 'skopeo');
  })();
  return signingSkopeo;
}
