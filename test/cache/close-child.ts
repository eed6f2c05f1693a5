/**
 * Child process for redis.test.ts: uses a TieredCache and CachedLoader on the Redis URL given as argv[2], closes
 * them, then prints the resources still keeping the event loop alive. It must exit on its own (no process.exit).
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { CachedLoader, TieredCache } from '../../provider/src/cache/index.ts';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: close-child.ts REDIS_URL');
const cache = await TieredCache.create({ url, hmacKey: randomBytes(32), logger: pino({ level: 'silent' }) });
const loader = new CachedLoader({ cache, logger: pino({ level: 'silent' }) });
await cache.set('k', 'v', 60_000);
await cache.getEntry('k');
await cache.getEntry('missing');
await loader.load('l', async () => 'x', { ttlMs: 1_000, staleMs: 1_000 });
await cache.ready();
await cache.close();
// Only resources that would keep the process alive count (stdout's pipe is expected while we write). A socket
// that close() destroyed disappears after its close callback, a few event-loop turns later; a live one stays.
const lingering = () =>
  process.getActiveResourcesInfo().filter((r) => !['PipeWrap', 'TTYWrap', 'Immediate'].includes(r));
let resources = lingering();
for (let turn = 0; turn < 100 && resources.length > 0; turn++) {
  await new Promise((resolve) => setImmediate(resolve));
  resources = lingering();
}
process.stdout.write(JSON.stringify({ resources }) + '\n');
