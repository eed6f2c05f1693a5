import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  ConfigError,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  parseDuration,
} from '../../provider/src/config/index.ts';

function problems(document: unknown): Array<{ path: string; message: string }> {
  try {
    parseConfig(document);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('durations: units and rejections', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1.5h'), undefined);
  assert.equal(parseDuration('-1s'), undefined);
  assert.equal(parseDuration('10'), undefined);
});

test('embedded defaults: any public registry, resolve-only policy, memory cache', () => {
  const { config } = defaultConfig();
  assert.deepEqual(config.registries.allow, ['*']);
  assert.equal(config.cache.url, 'memory://');
  assert.equal(config.policies[0]?.verify, false);
  assert.equal(config.server.keepAliveTimeout, 95_000);
});

test('every problem is reported with its path', () => {
  const found = problems({
    server: { port: 70000 },
    cache: { digestTTL: 'soon', url: 'http://x' },
    registries: { allow: ['bad host!'] },
    unknown: true,
  });
  const paths = found.map((p) => p.path).sort();
  assert.deepEqual(paths, ['', 'cache.digestTTL', 'cache.url', 'registries.allow[0]', 'server.port']);
});

test('cross references: unknown authorities, duplicates, thresholds', () => {
  const found = problems({
    authorities: [
      { name: 'release', key: { path: 'k.pub' } },
      { name: 'release', key: { pem: 'x' } },
    ],
    policies: [
      { name: 'p', images: ['**'], authorities: ['nope'], threshold: 3 },
      { name: 'q', images: ['**'] },
    ],
  });
  assert.deepEqual(
    found.map((p) => p.path),
    ['authorities[1].name', 'policies[0].authorities[0]', 'policies[0].threshold', 'policies[1].authorities']
  );
});

test('an authority needs exactly one of key or keyless, a key exactly one source', () => {
  const found = problems({ authorities: [{ name: 'a' }, { name: 'b', key: { path: 'x', pem: 'y' } }] });
  assert.equal(found.length, 2);
  assert.match(found[0]?.message ?? '', /exactly one of key or keyless/);
  assert.match(found[1]?.message ?? '', /exactly one of path, pem or secretRef/);
});

test('loadConfigFile reads YAML, resolves the base folder and reports unreadable or invalid files', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sigpin-config-'));
  const file = path.join(dir, 'c.yaml');
  await writeFile(
    file,
    'registries:\n  allow: ["127.0.0.1:5000"]\npolicies:\n  - {name: all, images: ["**"], verify: false}\n'
  );
  const loaded = await loadConfigFile(file);
  assert.equal(loaded.baseDir, dir);
  assert.deepEqual(loaded.config.registries.allow, ['127.0.0.1:5000']);
  await writeFile(file, 'registries: [unclosed');
  await assert.rejects(loadConfigFile(file), /not valid YAML/);
  await assert.rejects(loadConfigFile(path.join(dir, 'missing.yaml')), /cannot read: ENOENT/);
});
