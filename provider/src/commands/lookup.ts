import { parseArgs } from 'node:util';
import { defaultConfig, loadConfigFile } from '../config/index.ts';
import { createLogger } from '../logger.ts';
import { parseLookupKey, pinnedImage } from '../reference/index.ts';
import { createRuntime } from '../runtime.ts';

/**
 * `sigpin resolve REF...` and `sigpin verify REF...`: one JSON line per reference, through the same lookup service
 * the server uses. verify exits 0 when all are trusted, 1 when any is not, 3 on a transient failure.
 */
export async function lookupCommand(route: 'resolve' | 'verify', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, timeout: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) {
    process.stderr.write(`usage: sigpin ${route} REF... [--config FILE] [--timeout SECONDS]\n`);
    return 2;
  }
  const seconds = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    process.stderr.write(
      `sigpin ${route}: --timeout must be a number of seconds (0-3600], got "${values.timeout}"\n`
    );
    return 2;
  }
  const timeoutMs = Math.round(seconds * 1000);
  const loaded = values.config ? await loadConfigFile(values.config) : defaultConfig();
  const logger = createLogger({
    level: loaded.config.log.level === 'info' ? 'warn' : loaded.config.log.level,
    fd: 2,
  });
  const runtime = await createRuntime(loaded, logger);
  try {
    const keys = [...new Set(positionals)];
    const outcome = await runtime.lookup.lookup(route, keys, AbortSignal.timeout(timeoutMs));
    let untrusted = false;
    for (const item of outcome.items) {
      if (item.error) {
        untrusted = true;
        process.stdout.write(`${JSON.stringify({ key: item.key, error: item.error })}\n`);
      } else if (route === 'resolve') {
        const digest = String(item.value);
        const pinned = pinnedImage(parseLookupKey(item.key).image, digest);
        process.stdout.write(`${JSON.stringify({ key: item.key, digest, pinned })}
`);
      } else {
        process.stdout.write(`${JSON.stringify({ key: item.key, ...(item.value as object) })}\n`);
      }
    }
    const answered = new Set(outcome.items.map((i) => i.key));
    for (const key of keys.filter((k) => !answered.has(k))) {
      process.stdout.write(`${JSON.stringify({ key, error: outcome.systemError ?? 'not answered' })}\n`);
    }
    if (outcome.systemError) return 3;
    return untrusted ? 1 : 0;
  } finally {
    await runtime.close();
    logger.flush();
  }
}
