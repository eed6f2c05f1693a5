import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every Prometheus series sigpin exports, on a registry of its own (no global state between instances). */
export class Metrics {
  readonly registry = new Registry();
  readonly lookups = new Counter({
    name: 'sigpin_lookups_total',
    help: 'Keys answered, by route and result (ok, error: definitive item error, transient: left out with systemError).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });
  readonly verifySkipped = new Counter({
    name: 'sigpin_verify_skipped_total',
    help: 'Verify lookups answered without fetching signatures because the old object ran the same digest.',
    registers: [this.registry],
  });
  readonly cache = new Counter({
    name: 'sigpin_cache_events_total',
    help: 'Cache events by layer (l1 memory, l2 shared store) and result (hit, miss, forged, error, set).',
    labelNames: ['layer', 'result'] as const,
    registers: [this.registry],
  });
  readonly registryRequests = new Counter({
    name: 'sigpin_registry_requests_total',
    help: 'Requests sent to registries, by registry, method and status (error: no HTTP answer).',
    labelNames: ['registry', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly registryRateLimited = new Counter({
    name: 'sigpin_registry_rate_limited_total',
    help: 'Registry answers with HTTP 429, by registry.',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });
  readonly registryLatency = new Histogram({
    name: 'sigpin_registry_request_duration_seconds',
    help: 'Registry request latency.',
    labelNames: ['registry', 'method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly requestLatency = new Histogram({
    name: 'sigpin_request_duration_seconds',
    help: 'Lookup request latency by engine and route.',
    labelNames: ['engine', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly badRequests = new Counter({
    name: 'sigpin_bad_requests_total',
    help: 'Requests refused before lookup (malformed body, limits, authentication), by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly l1Entries = new Gauge({
    name: 'sigpin_cache_l1_entries',
    help: 'Entries in the in-process cache.',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'sigpin_' });
  }

  onRegistryRequest = (e: {
    registry: string;
    method: string;
    status: number | 'error';
    durationMs: number;
  }): void => {
    this.registryRequests.inc({ registry: e.registry, method: e.method, status: String(e.status) });
    if (e.status === 429) this.registryRateLimited.inc({ registry: e.registry });
    this.registryLatency.observe({ registry: e.registry, method: e.method }, e.durationMs / 1000);
  };

  onCacheEvent = (e: { layer: string; result: string }): void => {
    this.cache.inc({ layer: e.layer, result: e.result });
  };
}
