/**
 * The provider as the benchmark runs it: the real `serve()` in a process of its own (pinned by the driver),
 * plus a bench-only IPC hook for what cannot be measured from outside: event-loop delay
 * (perf_hooks.monitorEventLoopDelay in this process), memory, and filling the cache with N entries to price them.
 *
 *   node --expose-gc bench/provider-process.ts CONFIG     (IPC: {type:'ready', url} first, then request/answer)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serve } from '../provider/src/commands/serve.ts';

export type BenchRequest =
  | { id: number; type: 'eld-reset' }
  | { id: number; type: 'stats' }
  | { id: number; type: 'fill'; entries: number; registry: string }
  | { id: number; type: 'stop' };

export interface ProcessStats {
  eld: { p50: number; p99: number; max: number; count: number };
  rssMiB: number;
  heapUsedMiB: number;
  /** V8 heap reserved by the main thread, and memory outside it (Buffers, TLS, ...) it accounts for. */
  heapTotalMiB: number;
  externalMiB: number;
  l1Entries: number;
  /** CPU time of the whole process (all threads, user + system) since it started, ms. */
  cpuMs: number;
}

const configFile = process.argv[2];
if (!configFile || !process.send) {
  process.stderr.write('usage: provider-process.ts CONFIG (as a child process with IPC)\n');
  process.exit(2);
}
const serving = await serve({ config: configFile });
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
const ms = (ns: number): number => Math.round((ns / 1e6) * 100) / 100;

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function stats(): ProcessStats {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    eld: {
      p50: ms(eld.percentile(50)),
      p99: ms(eld.percentile(99)),
      max: ms(eld.max),
      count: eld.count,
    },
    rssMiB: mib(memory.rss),
    heapUsedMiB: mib(memory.heapUsed),
    heapTotalMiB: mib(memory.heapTotal),
    externalMiB: mib(memory.external),
    l1Entries: serving.runtime.cache.l1Size,
    cpuMs: Math.round((cpu.user + cpu.system) / 10) / 100,
  };
}

/**
 * Stores `entries` digest entries the way the lookup service does (`d:<canonical ref>` -> {value, freshUntil}),
 * each with its own key and digest string, so the figure is the cost of real entries, not of shared strings.
 */
async function fill(entries: number, registry: string) {
  collect();
  const before = process.memoryUsage();
  const cache = serving.runtime.cache;
  const now = cache.now();
  for (let i = 0; i < entries; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    await cache.set(`d:${registry}/bench/fill:${i}`, { value: digest, freshUntil: now + 600_000 }, 900_000);
  }
  collect();
  const after = process.memoryUsage();
  return {
    entries,
    heapDeltaMiB: mib(after.heapUsed - before.heapUsed),
    rssDeltaMiB: mib(after.rss - before.rss),
    bytesPerEntry: Math.round((after.heapUsed - before.heapUsed) / entries),
    ...stats(),
  };
}

process.on('message', (raw: BenchRequest) => {
  void (async () => {
    let answer: unknown;
    if (raw.type === 'eld-reset') {
      eld.reset();
      answer = { ok: true };
    } else if (raw.type === 'stats') {
      collect(); // memory figures are what stays reachable, not garbage waiting for the next collection
      answer = stats();
    } else if (raw.type === 'fill') {
      answer = await fill(raw.entries, raw.registry);
    } else {
      await serving.stop();
      process.send?.({ id: raw.id, answer: { ok: true } });
      process.exit(0);
    }
    process.send?.({ id: raw.id, answer });
  })();
});
process.on('disconnect', () => process.exit(0));
collect();
process.send({ type: 'ready', url: serving.server.url, idle: stats() });
