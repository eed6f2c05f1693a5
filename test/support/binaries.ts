/**
 * Real binaries the tests run against (docker-registry, skopeo, redis-server). Locally a missing binary skips
 * the test with the install command; under CI a missing binary is a failure, never a silent skip.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian package that provides each binary, for the skip message. */
const PACKAGE_OF: Record<string, string> = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  openssl: 'openssl',
};

/** Absolute path of `name` on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * A node:test option: `{}` when `name` is on PATH, `{ skip: reason }` when it is not (locally).
 * Under `process.env.CI` a missing binary throws, so the run fails instead of skipping.
 *   test('resolves a tag', requireBinary('docker-registry'), async (t) => { ... })
 */
export function requireBinary(name: string): { skip?: string } {
  if (findBinary(name)) return {};
  return missingComponent(`${name} not installed: apt-get install ${PACKAGE_OF[name] ?? name}`);
}

/**
 * The one answer to "a real component this test needs is missing": under `process.env.CI` (which installs every
 * component) it throws, so the run fails; locally it returns the node:test skip option with the reason.
 */
export function missingComponent(reason: string, cause?: unknown): { skip: string } {
  if (process.env.CI) {
    throw new Error(`${reason} (CI must not skip tests)`, cause === undefined ? undefined : { cause });
  }
  return { skip: reason };
}
