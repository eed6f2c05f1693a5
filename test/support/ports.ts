/** Ephemeral loopback ports for child processes that cannot be told to listen on port 0 and report it. */
import { createServer } from 'node:net';

/** A port that was free a moment ago on 127.0.0.1 (the caller retries if it races). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
