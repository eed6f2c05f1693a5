/**
 * Load generators of the benchmark: autocannon for steady load with a fixed body (cached lookups, the baseline),
 * and a small HTTPS keep-alive client for bodies that must all differ (cold lookups: every tag is new).
 */
import https from 'node:https';
import autocannon from 'autocannon';

export interface SteadyResult {
  connections: number;
  batch: number;
  requestsPerSecond: number;
  keysPerSecond: number;
  latencyMs: { mean: number; p50: number; p99: number; max: number };
  errors: number;
  non2xx: number;
}

export function providerRequestBody(keys: readonly string[]): string {
  return JSON.stringify({
    apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
    kind: 'ProviderRequest',
    request: { keys },
  });
}

/** Steady keep-alive load with one body for `durationSec` (after a warm-up of `warmupSec` that is not counted). */
export async function steadyLoad(o: {
  url: string;
  keys: readonly string[];
  connections: number;
  durationSec: number;
  warmupSec: number;
}): Promise<SteadyResult> {
  const options = {
    url: o.url,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: providerRequestBody(o.keys),
    connections: o.connections,
    pipelining: 1,
  };
  if (o.warmupSec > 0) await autocannon({ ...options, duration: o.warmupSec });
  const r = await autocannon({ ...options, duration: o.durationSec });
  const rps = r.requests.total / (r.duration || o.durationSec);
  return {
    connections: o.connections,
    batch: o.keys.length,
    requestsPerSecond: Math.round(rps),
    keysPerSecond: Math.round(rps * o.keys.length),
    latencyMs: { mean: r.latency.mean, p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

export interface BatchResult {
  requests: number;
  batch: number;
  concurrency: number;
  wallMs: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Keys answered with a value, with an item error, and requests with a systemError. */
  values: number;
  itemErrors: number;
  systemErrors: number;
  sampleError?: string;
}

interface ProviderResponseBody {
  response?: { items?: Array<{ key: string; value?: unknown; error?: string }>; systemError?: string };
}

/** Sends each batch once, `concurrency` at a time over keep-alive connections; per-request latencies. */
export async function batchLoad(o: {
  url: string;
  ca: string;
  batches: string[][];
  concurrency: number;
}): Promise<BatchResult> {
  const target = new URL(o.url);
  const agent = new https.Agent({ keepAlive: true, maxSockets: o.concurrency, ca: o.ca });
  const latencies: number[] = [];
  let values = 0;
  let itemErrors = 0;
  let systemErrors = 0;
  let sampleError: string | undefined;
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < o.batches.length) {
      const keys = o.batches[next++] as string[];
      const t0 = performance.now();
      const body = await post(agent, target, providerRequestBody(keys));
      latencies.push(performance.now() - t0);
      const parsed = JSON.parse(body) as ProviderResponseBody;
      for (const item of parsed.response?.items ?? []) {
        if (item.error === undefined) values++;
        else {
          itemErrors++;
          sampleError ??= item.error;
        }
      }
      if (parsed.response?.systemError) {
        systemErrors++;
        sampleError ??= parsed.response.systemError;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const wallMs = performance.now() - started;
  agent.destroy();
  return {
    requests: o.batches.length,
    batch: o.batches[0]?.length ?? 0,
    concurrency: o.concurrency,
    wallMs: round(wallMs),
    latencyMs: summarize(latencies),
    values,
    itemErrors,
    systemErrors,
    ...(sampleError ? { sampleError } : {}),
  };
}

function post(agent: https.Agent, url: URL, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      }
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, rank)] as number;
}

export function summarize(samples: readonly number[]): { p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? 0),
  };
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
