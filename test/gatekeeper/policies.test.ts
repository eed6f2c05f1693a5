/**
 * Checks that keep the Gatekeeper YAML honest: the template embeds the tested Rego, the CREATE-only mutators are
 * the default ones limited to CREATE, every Assign pins through sigpin-mutate and fails closed.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { regoPath, renderTemplate, templatePath } from './sync-template.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const POLICIES = path.join(ROOT, 'policies/gatekeeper');

describe('Gatekeeper policy files', () => {
  test('the template embeds exactly rego/sigpinverifiedimages.rego', async () => {
    const yaml = await readFile(templatePath, 'utf8');
    const rego = await readFile(regoPath, 'utf8');
    assert.equal(yaml, renderTemplate(yaml, rego), 'run: node test/gatekeeper/sync-template.ts');
    const doc = parse(yaml) as {
      spec: { targets: { code: { engine: string; source: { version: string; rego: string } }[] }[] };
    };
    const code = doc.spec.targets[0]?.code[0];
    assert.equal(code?.engine, 'Rego');
    assert.equal(code?.source.version, 'v1');
    assert.equal(code?.source.rego.trimEnd(), rego.trimEnd());
  });

  for (const base of ['pods', 'workloads']) {
    test(`mutation/${base}-create-only is mutation/${base} limited to CREATE`, async () => {
      const dir = path.join(POLICIES, 'mutation', base);
      const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
      const variantFiles = (await readdir(`${dir}-create-only`)).filter((f) => f.endsWith('.yaml')).sort();
      assert.deepEqual(variantFiles, files);
      for (const file of files) {
        const original = parse(await readFile(path.join(dir, file), 'utf8')) as AssignDoc;
        const variant = parse(await readFile(path.join(`${dir}-create-only`, file), 'utf8')) as AssignDoc;
        // Ephemeral containers only ever arrive by UPDATE (pods/ephemeralcontainers), so that one stays as is.
        const ops = file.includes('ephemeral') ? undefined : ['CREATE'];
        const expected = structuredClone(original);
        for (const entry of expected.spec.applyTo) {
          if (ops) entry.operations = ops;
        }
        assert.deepEqual(variant, expected, `${file}: same as ${base}/ apart from applyTo[].operations`);
      }
    });
  }

  test('every Assign pins through sigpin-mutate with failurePolicy Fail', async () => {
    const mutation = path.join(POLICIES, 'mutation');
    let count = 0;
    for (const sub of await readdir(mutation, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      for (const file of await readdir(path.join(mutation, sub.name))) {
        if (!file.endsWith('.yaml')) continue;
        const doc = parse(await readFile(path.join(mutation, sub.name, file), 'utf8')) as AssignDoc;
        assert.equal(doc.kind, 'Assign', file);
        assert.deepEqual(
          doc.spec.parameters.assign.externalData,
          { provider: 'sigpin-mutate', dataSource: 'ValueAtLocation', failurePolicy: 'Fail' },
          `${sub.name}/${file}`
        );
        assert.match(doc.spec.location, /\[name:\*\]\.image$/, `${sub.name}/${file}`);
        count++;
      }
    }
    assert.equal(count, 14);
  });
});

interface AssignDoc {
  kind: string;
  spec: {
    applyTo: { operations?: string[] }[];
    location: string;
    parameters: { assign: { externalData: Record<string, string> } };
  };
}
