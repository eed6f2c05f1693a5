/**
 * `npm run bench`: sigpin against a bare express+Map baseline in the same run (performance.md B4, DESIGN.md 9).
 *
 * - a real docker-registry on 127.0.0.1, seeded with images (cached set, unique cold tags, key-signed and keyless-signed
 *   digests; signatures are cosign legacy `.sig` attachments made in-process, see signing.ts);
 * - the provider (the real serve(), bench/provider-process.ts) and the baseline (bench/baseline-server.ts), each in
 *   its own process pinned to CPU 0 when `taskset` exists; this driver, autocannon and the registry on CPU 1;
 * - HTTPS (TLS 1.3) with keep-alive, 1 and 10 connections, batches of 1, 10 and 50 keys.
 *
 * Prints a table, writes bench/results.json, and prints one JSON object of headline figures as its last line.
 * Environment: BENCH_DURATION (seconds per steady run, default 1), BENCH_ROUNDS (runs per server, best kept, default
 * 3), BENCH_WARMUP (seconds, default 1), BENCH_NO_PIN=1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parse as parseYaml, stringify } from 'yaml';
import { createCertificateAuthority, issueCertificate } from '../provider/src/server/certificates.ts';
import { startRegistry, type TestRegistry } from '../test/support/registry.ts';
import { buildImage, MEDIA_TYPES, TestRegistryHttp } from '../test/support/images.ts';
import type { BenchRequest, ProcessStats } from './provider-process.ts';
import { batchLoad, round, steadyLoad, type BatchResult, type SteadyResult } from './load.ts';
import {
  KEYLESS_ISSUER,
  KEYLESS_SUBJECT,
  KeylessSigner,
  KeySigner,
  pushRawImage,
  pushSignatures,
  simpleSigningPayload,
} from './signing.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const NODE = process.execPath;
const DURATION = Number(process.env.BENCH_DURATION ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const BATCHES = [1, 10, 50] as const;
const CONNECTIONS = [1, 10] as const;
const CACHED_IMAGES = 50;
const KEY_IMAGES = 50;
const KEYLESS_SEQUENTIAL = 30;
const KEYLESS_BATCH = 50;
const FILL_ENTRIES = 100_000;
const COLD_PLAN = [
  { batch: 1, concurrency: 1, requests: 100 },
  { batch: 1, concurrency: 10, requests: 100 },
  { batch: 10, concurrency: 10, requests: 20 },
  { batch: 50, concurrency: 1, requests: 6 },
] as const;

// The re-run driver is itself pinned (one CPU available to it), so it takes pinning from the environment.
const hasTaskset =
  process.env.SIGPIN_BENCH_PINNED === '1' ||
  (!process.env.BENCH_NO_PIN && cpus().length >= 2 && availableParallelism() >= 2 && which('taskset'));

function which(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Re-runs this driver on CPU 1 so the processes under test get CPU 0 to themselves. */
function pinDriver(): boolean {
  if (!hasTaskset || process.env.SIGPIN_BENCH_PINNED) return false;
  const child = spawnSync('taskset', ['-c', '1', NODE, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, SIGPIN_BENCH_PINNED: '1' },
  });
  process.exitCode = child.status ?? 1;
  return true;
}

function pinnedSpawn(args: string[], withIpc: boolean): ChildProcess {
  const command = hasTaskset ? 'taskset' : NODE;
  const argv = hasTaskset ? ['-c', '0', NODE, ...args] : args;
  return spawn(command, argv, {
    cwd: ROOT,
    stdio: withIpc ? ['ignore', 'ignore', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
  });
}

/**
 * Idle RSS of the provider as the container image runs it (compiled provider/dist, no type stripping at run
 * time): build once, start `node provider/dist/main.js serve`, read VmRSS once it listens, stop it.
 */
async function imageIdleRssMiB(configFile: string): Promise<number> {
  const build = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    }
  );
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stdout}${build.stderr}`);
  // The same config at log level info, so the process says when it listens.
  const document = parseYaml(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  const infoConfig = configFile.replace(/\.yaml$/, '.image.yaml');
  await writeFile(infoConfig, stringify({ ...document, log: { level: 'info' } }));
  const child = pinnedSpawn(
    [path.join(ROOT, 'provider/dist/main.js'), 'serve', '--config', infoConfig],
    false
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('compiled provider did not start in 30 s')), 30_000);
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`compiled provider exited with ${code}: ${out}`)));
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
    return round(kib / 1024, 1);
  } finally {
    child.kill('SIGTERM');
  }
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** The provider process with its request/answer IPC. */
class BenchProvider {
  readonly child: ChildProcess;
  url = '';
  idle?: ProcessStats;
  #next = 1;
  readonly #waiting = new Map<number, (answer: unknown) => void>();

  constructor(configFile: string) {
    this.child = pinnedSpawn(['--expose-gc', path.join(ROOT, 'bench/provider-process.ts'), configFile], true);
    this.child.on('message', (m: { id?: number; answer?: unknown }) => {
      if (m.id !== undefined) {
        this.#waiting.get(m.id)?.(m.answer);
        this.#waiting.delete(m.id);
      }
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('provider did not start in 30 s')), 30_000);
      this.child.once('exit', (code) => reject(new Error(`provider exited with ${code}`)));
      this.child.on('message', (m: { type?: string; url?: string; idle?: ProcessStats }) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        this.url = m.url ?? '';
        if (m.idle) this.idle = m.idle;
        resolve();
      });
    });
  }

  ask<T>(request: WithoutId<BenchRequest>): Promise<T> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, (a) => resolve(a as T));
      this.child.send({ ...request, id });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await Promise.race([this.ask({ type: 'stop' }), exited]);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    this.child.kill('SIGKILL');
  }
}

async function startBaseline(
  cert: string,
  key: string,
  entries: string
): Promise<{ url: string; child: ChildProcess }> {
  const child = pinnedSpawn([path.join(ROOT, 'bench/baseline-server.ts'), cert, key, entries], false);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const port = (JSON.parse(line) as { port: number }).port;
    return { url: `https://127.0.0.1:${port}`, child };
  }
  throw new Error('baseline server did not start');
}

/** Runs `work` with up to `limit` at a time. */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, i: number) => Promise<void>
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i] as T, i);
      }
    })
  );
}

async function registryCounts(registry: TestRegistry, since: number) {
  const all = await registry.requests();
  const window = all.slice(since);
  const manifestHeads = window.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/')).length;
  const manifestGets = window.filter((r) => r.method === 'GET' && r.path.includes('/manifests/')).length;
  const blobGets = window.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
  const referrerGets = window.filter((r) => r.method === 'GET' && r.path.includes('/referrers/')).length;
  return { total: window.length, manifestHeads, manifestGets, blobGets, referrerGets, next: all.length };
}

/** Least squares fit of mean latency (ms) against batch size: T(n) = a + b n. */
function costModel(points: Array<{ n: number; ms: number }>): { aMs: number; bUsPerKey: number } {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.n, 0) / n;
  const my = points.reduce((s, p) => s + p.ms, 0) / n;
  const sxy = points.reduce((s, p) => s + (p.n - mx) * (p.ms - my), 0);
  const sxx = points.reduce((s, p) => s + (p.n - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : sxy / sxx;
  return { aMs: round(my - b * mx, 3), bUsPerKey: round(b * 1000, 2) };
}

async function main(): Promise<void> {
  if (pinDriver()) return;
  const startedAt = Date.now();
  const dir = await mkdtemp(path.join(tmpdir(), 'sigpin-bench-'));
  const cleanups: Array<() => Promise<unknown>> = [async () => rm(dir, { recursive: true, force: true })];
  const results: Record<string, unknown> = {};
  try {
    log(`pinning: ${hasTaskset ? 'provider and baseline on CPU 0, driver and registry on CPU 1' : 'none'}`);
    const registry = await startRegistry();
    cleanups.unshift(() => registry.stop());
    const host = registry.host;

    // --- seed the registry ---
    log('seeding the registry');
    const http = new TestRegistryHttp(registry);
    const cachedKeys: string[] = [];
    const entries: Record<string, string> = {};
    await inParallel([...Array(CACHED_IMAGES).keys()], 16, async (i) => {
      const digest = await pushRawImage(registry, 'bench/app', `c${i}`, `bench-cached-${i}`);
      cachedKeys[i] = `${host}/bench/app:c${i}`;
      entries[`${host}/bench/app:c${i}`] = digest;
    });
    const coldImage = buildImage('oci-manifest', 'bench-cold');
    for (const blob of coldImage.blobs) await http.putBlob('bench/cold', blob.bytes);
    const coldTags = COLD_PLAN.reduce((s, p) => s + p.batch * p.requests, 0);
    await inParallel([...Array(coldTags).keys()], 16, async (i) => {
      await http.putManifest('bench/cold', `t${i}`, coldImage.manifest.bytes, MEDIA_TYPES.ociManifest);
    });
    const keySigner = new KeySigner();
    const keyKeys: string[] = [];
    await inParallel([...Array(KEY_IMAGES).keys()], 16, async (i) => {
      const digest = await pushRawImage(registry, 'bench/key', `k${i}`, `bench-key-${i}`);
      const payload = simpleSigningPayload(`${host}/bench/key`, digest);
      await pushSignatures(registry, 'bench/key', digest, [keySigner.sign(payload)]);
      keyKeys[i] = `${host}/bench/key:k${i}`;
    });
    const keyless = await KeylessSigner.start();
    cleanups.unshift(() => keyless.stop());
    const keylessKeys: string[] = [];
    await inParallel([...Array(KEYLESS_SEQUENTIAL + KEYLESS_BATCH).keys()], 16, async (i) => {
      const digest = await pushRawImage(registry, 'bench/keyless', `s${i}`, `bench-keyless-${i}`);
      const payload = simpleSigningPayload(`${host}/bench/keyless`, digest);
      await pushSignatures(registry, 'bench/keyless', digest, [await keyless.sign(payload)]);
      keylessKeys[i] = `${host}/bench/keyless:s${i}`;
    });
    log(`seeded in ${Date.now() - startedAt} ms`);

    // --- TLS, configs, processes ---
    const ca = await createCertificateAuthority('sigpin bench CA', 1);
    const leaf = await issueCertificate(ca, {
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const certFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    await writeFile(certFile, leaf.certPem);
    await writeFile(keyFile, leaf.keyPem);
    await writeFile(path.join(dir, 'cosign.pub'), keySigner.publicKeyPem);
    await writeFile(path.join(dir, 'trusted_root.json'), JSON.stringify(keyless.trustedRoot));
    const entriesFile = path.join(dir, 'entries.json');
    await writeFile(entriesFile, JSON.stringify(entries));
    const configFile = path.join(dir, 'sigpin.yaml');
    await writeFile(
      configFile,
      stringify({
        server: { host: '127.0.0.1', port: 0, tls: { certFile, keyFile } },
        registries: { allow: [host], insecure: [host] },
        cache: { url: 'memory://', l1MaxEntries: 300_000, digestTTL: '10m', staleTTL: '10m' },
        authorities: [
          { name: 'bench-key', key: { path: 'cosign.pub' } },
          {
            name: 'bench-keyless',
            keyless: {
              trustedRoot: 'trusted_root.json',
              identities: [{ issuer: KEYLESS_ISSUER, subject: KEYLESS_SUBJECT }],
            },
          },
        ],
        policies: [
          { name: 'key', images: [`${host}/bench/key`], authorities: ['bench-key'] },
          { name: 'keyless', images: [`${host}/bench/keyless`], authorities: ['bench-keyless'] },
          { name: 'rest', images: ['**'], verify: false },
        ],
        log: { level: 'warn' },
      })
    );
    const provider = new BenchProvider(configFile);
    cleanups.unshift(() => provider.stop());
    await provider.ready();
    const baseline = await startBaseline(certFile, keyFile, entriesFile);
    cleanups.unshift(async () => baseline.child.kill('SIGTERM'));
    const idle = await provider.ask<ProcessStats>({ type: 'stats' });
    // The same provider without authorities (no sigstore trust material, no verifier): what verification costs idle.
    const resolveOnlyFile = path.join(dir, 'resolve-only.yaml');
    await writeFile(
      resolveOnlyFile,
      stringify({
        server: { host: '127.0.0.1', port: 0, tls: { certFile, keyFile } },
        registries: { allow: [host], insecure: [host] },
        cache: { url: 'memory://', l1MaxEntries: 300_000 },
        policies: [{ name: 'rest', images: ['**'], verify: false }],
        log: { level: 'warn' },
      })
    );
    const resolveOnly = new BenchProvider(resolveOnlyFile);
    await resolveOnly.ready();
    cleanups.unshift(() => resolveOnly.stop());
    const idleResolveOnly = await resolveOnly.ask<ProcessStats>({ type: 'stats' });
    const imageIdle = await imageIdleRssMiB(configFile);
    const imageIdleResolveOnly = await imageIdleRssMiB(resolveOnlyFile);
    results.idle = {
      imageRssMiB: imageIdle,
      imageResolveOnlyRssMiB: imageIdleResolveOnly,
      rssMiB: idle.rssMiB,
      heapUsedMiB: idle.heapUsedMiB,
      resolveOnlyRssMiB: idleResolveOnly.rssMiB,
      resolveOnlyHeapUsedMiB: idleResolveOnly.heapUsedMiB,
    };
    log(`provider ${provider.url} (idle RSS ${idle.rssMiB} MiB), baseline ${baseline.url}`);
    const route = (r: string): string => `${provider.url}/gatekeeper/v1/${r}`;
    const eldByPhase: Record<string, ProcessStats['eld']> = {};

    // --- cold resolve (unique tags) ---
    let since = (await registry.requests()).length;
    await provider.ask({ type: 'eld-reset' });
    const coldResolve: Array<BatchResult & { registry: Awaited<ReturnType<typeof registryCounts>> }> = [];
    let tag = 0;
    for (const plan of COLD_PLAN) {
      const batches = Array.from({ length: plan.requests }, () =>
        Array.from({ length: plan.batch }, () => `${host}/bench/cold:t${tag++}`)
      );
      const r = await batchLoad({
        url: route('resolve'),
        ca: ca.certPem,
        batches,
        concurrency: plan.concurrency,
      });
      const counts = await registryCounts(registry, since);
      since = counts.next;
      coldResolve.push({ ...r, registry: counts });
      log(
        `cold resolve b${plan.batch} c${plan.concurrency}: p99 ${r.latencyMs.p99} ms, ${counts.manifestHeads} HEAD / ${plan.batch * plan.requests} tags`
      );
    }
    eldByPhase.coldResolve = (await provider.ask<ProcessStats>({ type: 'stats' })).eld;
    results.coldResolve = coldResolve;

    // --- cold verify, key-based: one digest per request, then cached verify over the same digests ---
    await provider.ask({ type: 'eld-reset' });
    const cpuBeforeKey = (await provider.ask<ProcessStats>({ type: 'stats' })).cpuMs;
    const keyRun = await batchLoad({
      url: route('verify'),
      ca: ca.certPem,
      batches: keyKeys.map((k) => [k]),
      concurrency: 1,
    });
    const keyCounts = await registryCounts(registry, since);
    since = keyCounts.next;
    const afterKey = await provider.ask<ProcessStats>({ type: 'stats' });
    eldByPhase.coldVerifyKey = afterKey.eld;
    // Whole-process CPU (HTTP, registry client, discovery, crypto; every thread) per verified image: an upper bound.
    const keyCpuMs = round((afterKey.cpuMs - cpuBeforeKey) / KEY_IMAGES);
    results.coldVerifyKey = { ...keyRun, registry: keyCounts };
    log(
      `cold verify key: p99 ${keyRun.latencyMs.p99} ms, ${keyRun.values} trusted, ${keyRun.itemErrors} errors ${keyRun.sampleError ?? ''}`
    );

    // --- cold verify, keyless: sequential, then one batch of 50 unique digests ---
    await provider.ask({ type: 'eld-reset' });
    const cpuBeforeKeyless = (await provider.ask<ProcessStats>({ type: 'stats' })).cpuMs;
    const keylessRun = await batchLoad({
      url: route('verify'),
      ca: ca.certPem,
      batches: keylessKeys.slice(0, KEYLESS_SEQUENTIAL).map((k) => [k]),
      concurrency: 1,
    });
    const keylessCounts = await registryCounts(registry, since);
    since = keylessCounts.next;
    const keylessCpuMs = round(
      ((await provider.ask<ProcessStats>({ type: 'stats' })).cpuMs - cpuBeforeKeyless) / KEYLESS_SEQUENTIAL
    );
    const keylessBatch = await batchLoad({
      url: route('verify'),
      ca: ca.certPem,
      batches: [keylessKeys.slice(KEYLESS_SEQUENTIAL)],
      concurrency: 1,
    });
    since = (await registryCounts(registry, since)).next;
    eldByPhase.coldVerifyKeyless = (await provider.ask<ProcessStats>({ type: 'stats' })).eld;
    results.coldVerifyKeyless = { ...keylessRun, registry: keylessCounts };
    results.coldVerifyKeylessBatch50 = keylessBatch;
    log(
      `cold verify keyless: p99 ${keylessRun.latencyMs.p99} ms (${keylessRun.values} trusted ${keylessRun.sampleError ?? ''}); batch 50 wall ${keylessBatch.wallMs} ms`
    );

    // --- steady cached load: sigpin resolve, sigpin verify, baseline ---
    for (const k of cachedKeys)
      await batchLoad({ url: route('resolve'), ca: ca.certPem, batches: [[k]], concurrency: 1 });
    since = (await registryCounts(registry, since)).next;
    await provider.ask({ type: 'eld-reset' });
    const steady: Record<string, SteadyResult[]> = { cachedResolve: [], cachedVerify: [], baseline: [] };
    const targets = [
      { name: 'cachedResolve', url: route('resolve'), keys: cachedKeys },
      { name: 'cachedVerify', url: route('verify'), keys: keyKeys },
      { name: 'baseline', url: `${baseline.url}/gatekeeper/v1/resolve`, keys: cachedKeys },
    ];
    for (const connections of CONNECTIONS) {
      for (const batch of BATCHES) {
        // The three servers take turns, ROUNDS times; each keeps its best round. On a shared machine a burst of
        // someone else's work then hurts one round, not one server's whole figure.
        const best = new Map<string, SteadyResult>();
        for (let round = 0; round < ROUNDS; round++) {
          for (const t of targets) {
            const r = await steadyLoad({
              url: t.url,
              keys: t.keys.slice(0, batch),
              connections,
              durationSec: DURATION,
              warmupSec: round === 0 ? WARMUP : 0,
            });
            const previous = best.get(t.name);
            if (!previous || r.requestsPerSecond > previous.requestsPerSecond) best.set(t.name, r);
          }
        }
        for (const t of targets) steady[t.name]?.push(best.get(t.name) as SteadyResult);
        log(`steady b${batch} c${connections} done`);
      }
    }
    eldByPhase.cached = (await provider.ask<ProcessStats>({ type: 'stats' })).eld;
    results.steady = steady;
    const registryAfterCached = await registryCounts(registry, since);
    results.cachedRegistryRequests = registryAfterCached.total;

    // --- memory with 100k cached entries ---
    const beforeFill = await provider.ask<ProcessStats>({ type: 'stats' });
    // Priced in the fresh resolve-only process, so the figure is idle + 100k entries, not the load's high-water mark.
    const filled = await resolveOnly.ask<Record<string, number>>({
      type: 'fill',
      entries: FILL_ENTRIES,
      registry: host,
    });
    results.memory = { idle: results.idle, afterLoad: beforeFill, with100kInFreshProcess: filled };
    results.eventLoopDelay = eldByPhase;

    // --- derived figures ---
    const pick = (
      list: SteadyResult[] | undefined,
      batch: number,
      connections: number
    ): SteadyResult | undefined => list?.find((r) => r.batch === batch && r.connections === connections);
    const resolveB1C1 = pick(steady.cachedResolve, 1, 1);
    const resolveB50C10 = pick(steady.cachedResolve, 50, 10);
    const baselineB50C10 = pick(steady.baseline, 50, 10);
    const resolveB1C10 = pick(steady.cachedResolve, 1, 10);
    const baselineB1C10 = pick(steady.baseline, 1, 10);
    // One connection: the time per request is 1 / throughput (autocannon's latencies are whole milliseconds).
    const perRequestMs = (r: SteadyResult | undefined): number => (r ? 1000 / r.requestsPerSecond : 0);
    const model = costModel(BATCHES.map((n) => ({ n, ms: perRequestMs(pick(steady.cachedResolve, n, 1)) })));
    const baselineModel = costModel(
      BATCHES.map((n) => ({ n, ms: perRequestMs(pick(steady.baseline, n, 1)) }))
    );
    const coldB1 = coldResolve[0];
    const allCold = coldResolve.reduce(
      (s, r) => ({
        tags: s.tags + r.batch * r.requests,
        heads: s.heads + r.registry.manifestHeads,
        gets: s.gets + r.registry.manifestGets,
      }),
      { tags: 0, heads: 0, gets: 0 }
    );
    const cpu = cpus()[0]?.model ?? 'unknown';
    const headline = {
      cached_resolve_b1_p99_ms: resolveB1C1?.latencyMs.p99 ?? null,
      cached_resolve_b1_p50_ms: resolveB1C1?.latencyMs.p50 ?? null,
      cached_resolve_b50_keys_per_s: resolveB50C10?.keysPerSecond ?? null,
      baseline_b50_keys_per_s: baselineB50C10?.keysPerSecond ?? null,
      cached_resolve_b50_vs_baseline_pct:
        resolveB50C10 && baselineB50C10
          ? round((100 * resolveB50C10.keysPerSecond) / baselineB50C10.keysPerSecond, 1)
          : null,
      cached_resolve_b1_vs_baseline_pct:
        resolveB1C10 && baselineB1C10
          ? round((100 * resolveB1C10.requestsPerSecond) / baselineB1C10.requestsPerSecond, 1)
          : null,
      cached_resolve_cost_a_ms: model.aMs,
      cached_resolve_cost_b_us_per_key: model.bUsPerKey,
      baseline_cost_a_ms: baselineModel.aMs,
      baseline_cost_b_us_per_key: baselineModel.bUsPerKey,
      cached_verify_b50_keys_per_s: pick(steady.cachedVerify, 50, 10)?.keysPerSecond ?? null,
      cached_registry_requests: registryAfterCached.total,
      cold_resolve_registry_requests_per_tag: round((allCold.heads + allCold.gets) / allCold.tags, 3),
      cold_resolve_manifest_gets: allCold.gets,
      cold_resolve_b1_p99_ms: coldB1?.latencyMs.p99 ?? null,
      cold_resolve_b50_wall_p99_ms: coldResolve[3]?.latencyMs.p99 ?? null,
      cold_verify_key_p99_ms: keyRun.latencyMs.p99,
      cold_verify_key_cpu_ms_per_image: keyCpuMs,
      cold_verify_keyless_cpu_ms_per_image: keylessCpuMs,
      cold_verify_key_trusted: `${keyRun.values}/${KEY_IMAGES}`,
      cold_verify_key_registry_gets_per_digest: round(
        (keyCounts.manifestGets + keyCounts.blobGets + keyCounts.referrerGets) / KEY_IMAGES,
        2
      ),
      cold_verify_keyless_p99_ms: keylessRun.latencyMs.p99,
      cold_verify_keyless_trusted: `${keylessRun.values}/${KEYLESS_SEQUENTIAL}`,
      cold_verify_keyless_b50_wall_ms: keylessBatch.wallMs,
      rss_mib_idle_image: imageIdle,
      rss_mib_idle_resolve_only_image: imageIdleResolveOnly,
      rss_mib_100k_entries_image:
        filled.rssMiB === undefined
          ? null
          : round(imageIdleResolveOnly + (filled.rssMiB - idleResolveOnly.rssMiB), 1),
      rss_mib_idle: idle.rssMiB,
      rss_mib_idle_resolve_only: idleResolveOnly.rssMiB,
      rss_mib_100k_entries: filled.rssMiB ?? null,
      rss_mib_after_load: beforeFill.rssMiB,
      heap_mib_per_100k_entries: filled.heapDeltaMiB ?? null,
      event_loop_delay_p99_ms: Math.max(...Object.values(eldByPhase).map((e) => e.p99)),
      event_loop_delay_p99_cold_keyless_ms: eldByPhase.coldVerifyKeyless?.p99 ?? null,
      machine: `${cpus().length} cpu, ${cpu}, node ${process.version}${hasTaskset ? ', pinned' : ''}`,
      seconds: Math.round((Date.now() - startedAt) / 1000),
    };
    results.headline = headline;
    results.machine = {
      nproc: cpus().length,
      cpu,
      node: process.version,
      pinned: Boolean(hasTaskset),
      durationSec: DURATION,
      warmupSec: WARMUP,
    };
    await writeFile(path.join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
    printTable(steady, coldResolve, results);
    process.stdout.write(`${JSON.stringify(headline)}\n`);
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
}

function printTable(
  steady: Record<string, SteadyResult[]>,
  cold: BatchResult[],
  results: Record<string, unknown>
): void {
  const out: string[] = [];
  const pad = (s: unknown, n: number): string => String(s).padStart(n);
  out.push('steady load (autocannon, keep-alive HTTPS)');
  out.push(
    `${'what'.padEnd(15)}${pad('conn', 5)}${pad('batch', 6)}${pad('req/s', 9)}${pad('keys/s', 10)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('mean', 8)}${pad('err', 5)}`
  );
  for (const [name, list] of Object.entries(steady)) {
    for (const r of list) {
      out.push(
        `${name.padEnd(15)}${pad(r.connections, 5)}${pad(r.batch, 6)}${pad(r.requestsPerSecond, 9)}${pad(r.keysPerSecond, 10)}${pad(r.latencyMs.p50, 8)}${pad(r.latencyMs.p99, 8)}${pad(round(r.latencyMs.mean), 8)}${pad(r.errors + r.non2xx, 5)}`
      );
    }
  }
  out.push('', 'cold (every key new)');
  out.push(
    `${'what'.padEnd(22)}${pad('conc', 5)}${pad('batch', 6)}${pad('reqs', 6)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('max ms', 8)}${pad('ok', 5)}${pad('err', 5)}`
  );
  const row = (name: string, r: BatchResult): string =>
    `${name.padEnd(22)}${pad(r.concurrency, 5)}${pad(r.batch, 6)}${pad(r.requests, 6)}${pad(r.latencyMs.p50, 8)}${pad(r.latencyMs.p99, 8)}${pad(r.latencyMs.max, 8)}${pad(r.values, 5)}${pad(r.itemErrors + r.systemErrors, 5)}`;
  for (const r of cold) out.push(row('resolve', r));
  out.push(row('verify key', results.coldVerifyKey as BatchResult));
  out.push(row('verify keyless', results.coldVerifyKeyless as BatchResult));
  out.push(row('verify keyless batch', results.coldVerifyKeylessBatch50 as BatchResult));
  process.stdout.write(`${out.join('\n')}\n\n`);
}

await main();
