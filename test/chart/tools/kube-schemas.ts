/**
 * Converts Kubernetes OpenAPI v3 documents and CRD openAPIV3Schema sections into the JSON schema files kubeconform
 * reads from a local directory, so the chart and examples are validated offline (no schema download at test time).
 *
 * Layout written under --out (the two `-schema-location` templates in test/chart/kubeconform.ts):
 *   k8s/<kind>-<group prefix>-<version>.json      built-in kinds  ({{.ResourceKind}}{{.KindSuffix}}.json)
 *   crd/<group>/<kind>_<version>.json             custom kinds    ({{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json)
 *   gatekeeper-match.json                         Gatekeeper's `match` block, for constraint kinds made by templates
 *
 * Strictness follows `kubectl --validate=strict` (and kubeconform's openapi2jsonschema with
 * DENY_ROOT_ADDITIONAL_PROPERTIES): every object schema that lists properties rejects unknown ones, unless it is
 * marked x-kubernetes-preserve-unknown-fields or states additionalProperties itself.
 *
 * Usage: node test/chart/tools/kube-schemas.ts --out DIR --k8s-openapi DIR [--crd FILE]... [--gatekeeper-match FILE]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Rewrites an OpenAPI schema (recursively) into JSON schema with strict objects. */
export function toStrictJsonSchema(schema: Json, refPrefix?: { from: string; to: string }): Json {
  if (Array.isArray(schema)) return schema.map((item) => toStrictJsonSchema(item, refPrefix));
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$ref' && typeof value === 'string' && refPrefix && value.startsWith(refPrefix.from)) {
      out[key] = refPrefix.to + value.slice(refPrefix.from.length);
    } else if (key === 'properties' && isObject(value)) {
      // property names are data, not schema keywords: convert each value only
      const props: JsonObject = {};
      for (const [name, sub] of Object.entries(value)) props[name] = toStrictJsonSchema(sub, refPrefix);
      out[key] = props;
    } else if (key === 'default' || key === 'example' || key === 'enum') {
      out[key] = value; // literal values, never schemas
    } else {
      out[key] = toStrictJsonSchema(value, refPrefix);
    }
  }
  if (out['x-kubernetes-int-or-string'] === true && !('oneOf' in out) && !('anyOf' in out)) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (out.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  const preserve = out['x-kubernetes-preserve-unknown-fields'] === true;
  if (isObject(out.properties) && !('additionalProperties' in out) && !preserve)
    out.additionalProperties = false;
  if (out['x-kubernetes-embedded-resource'] === true) looseMetadata(out);
  return out;
}

/**
 * In a CRD schema, `metadata` (of the object and of embedded resources) is always a full ObjectMeta: the API server
 * only applies the schema's restrictions on name/generateName. So it must not reject labels, annotations, ...
 */
function looseMetadata(schema: JsonObject): void {
  const metadata = isObject(schema.properties) ? schema.properties.metadata : undefined;
  if (isObject(metadata)) delete metadata.additionalProperties;
}

/** `apps/v1` -> `-apps-v1`, `v1` -> `-v1`, `rbac.authorization.k8s.io/v1` -> `-rbac-v1` (kubeconform's KindSuffix). */
export function kindSuffix(group: string, version: string): string {
  return group === '' ? `-${version}` : `-${group.split('.')[0]}-${version}`.toLowerCase();
}

/** Built-in kinds from the Kubernetes OpenAPI v3 documents (api/openapi-spec/v3 of k8s.io/kubernetes). */
function writeBuiltInSchemas(openapiDir: string, outDir: string): number {
  const all: JsonObject = {};
  for (const file of readdirSync(openapiDir)) {
    if (!file.endsWith('.json')) continue;
    const doc = JSON.parse(readFileSync(join(openapiDir, file), 'utf8')) as Json;
    const schemas = isObject(doc) && isObject(doc.components) ? doc.components.schemas : undefined;
    if (isObject(schemas)) Object.assign(all, schemas);
  }
  const refFrom = '#/components/schemas/';
  const reachable = (name: string, seen: Set<string>): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const walk = (node: Json): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (isObject(node)) {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref' && typeof v === 'string' && v.startsWith(refFrom))
            reachable(v.slice(refFrom.length), seen);
          else walk(v);
        }
      }
    };
    walk(all[name] ?? null);
  };
  mkdirSync(join(outDir, 'k8s'), { recursive: true });
  let count = 0;
  for (const [name, schema] of Object.entries(all)) {
    if (!isObject(schema)) continue;
    const gvks = schema['x-kubernetes-group-version-kind'];
    if (!Array.isArray(gvks) || !isObject(schema.properties) || !('kind' in schema.properties)) continue;
    const seen = new Set<string>();
    reachable(name, seen);
    seen.delete(name);
    const definitions: JsonObject = {};
    for (const dep of [...seen].sort()) {
      definitions[dep] = toStrictJsonSchema(all[dep] ?? {}, { from: refFrom, to: '#/definitions/' });
    }
    const root = toStrictJsonSchema(schema, { from: refFrom, to: '#/definitions/' });
    if (!isObject(root)) continue;
    for (const gvk of gvks) {
      if (!isObject(gvk) || typeof gvk.kind !== 'string' || typeof gvk.version !== 'string') continue;
      const group = typeof gvk.group === 'string' ? gvk.group : '';
      const file = `${gvk.kind.toLowerCase()}${kindSuffix(group, gvk.version)}.json`;
      writeFileSync(join(outDir, 'k8s', file), JSON.stringify({ ...root, definitions }));
      count++;
    }
  }
  return count;
}

/** Custom kinds from CustomResourceDefinition YAML files (one version -> one schema file). */
function writeCrdSchemas(files: string[], outDir: string): number {
  let count = 0;
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const crd = doc.toJS() as Json;
      if (!isObject(crd) || crd.kind !== 'CustomResourceDefinition' || !isObject(crd.spec)) continue;
      const { group, names, versions } = crd.spec;
      if (typeof group !== 'string' || !isObject(names) || typeof names.kind !== 'string') continue;
      if (!Array.isArray(versions)) continue;
      for (const version of versions) {
        if (!isObject(version) || typeof version.name !== 'string' || !isObject(version.schema)) continue;
        const schema = version.schema.openAPIV3Schema;
        if (!isObject(schema)) continue;
        mkdirSync(join(outDir, 'crd', group), { recursive: true });
        const target = join(outDir, 'crd', group, `${names.kind.toLowerCase()}_${version.name}.json`);
        const strict = toStrictJsonSchema(schema);
        if (isObject(strict)) looseMetadata(strict);
        writeFileSync(target, JSON.stringify(strict));
        count++;
      }
    }
  }
  return count;
}

/**
 * Gatekeeper generates each constraint kind's CRD from its template; the `match` part comes from a YAML constant
 * in pkg/target/matchcrd_constant.go (a Go raw string). Extract its `embeddedMatch` schema.
 */
function writeGatekeeperMatch(goFile: string, outDir: string): void {
  const source = readFileSync(goFile, 'utf8');
  const start = source.indexOf('`');
  const end = source.lastIndexOf('`');
  if (start < 0 || end <= start) throw new Error(`${goFile}: no YAML raw string found`);
  const crd = parseAllDocuments(source.slice(start + 1, end))
    .map((d) => d.toJS() as Json)
    .find((d) => isObject(d) && d.kind === 'CustomResourceDefinition');
  const versions = isObject(crd) && isObject(crd.spec) ? crd.spec.versions : undefined;
  const first = Array.isArray(versions) ? versions[0] : undefined;
  const schema = isObject(first) && isObject(first.schema) ? first.schema.openAPIV3Schema : undefined;
  const match = isObject(schema) && isObject(schema.properties) ? schema.properties.embeddedMatch : undefined;
  if (!isObject(match)) throw new Error(`${goFile}: embeddedMatch schema not found`);
  writeFileSync(join(outDir, 'gatekeeper-match.json'), JSON.stringify(toStrictJsonSchema(match)));
}

function parseArgs(argv: string[]): {
  out: string;
  openapi: string | undefined;
  crds: string[];
  match?: string;
} {
  const crds: string[] = [];
  let out: string | undefined;
  let openapi: string | undefined;
  let match: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--out') out = value;
    else if (flag === '--k8s-openapi') openapi = value;
    else if (flag === '--crd') crds.push(value);
    else if (flag === '--gatekeeper-match') match = value;
    else throw new Error(`unknown argument ${flag}`);
    i++;
  }
  if (!out) throw new Error('--out is required');
  return match ? { out, openapi, crds, match } : { out, openapi, crds };
}

if (import.meta.main) {
  const args = parseArgs(process.argv.slice(2));
  mkdirSync(args.out, { recursive: true });
  const builtIn = args.openapi ? writeBuiltInSchemas(args.openapi, args.out) : 0;
  const custom = writeCrdSchemas(args.crds, args.out);
  if (args.match) writeGatekeeperMatch(args.match, args.out);
  console.log(`kube-schemas: ${builtIn} built-in and ${custom} custom schema files in ${args.out}`);
}
