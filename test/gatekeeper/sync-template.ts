/**
 * Keeps the Rego embedded in policies/gatekeeper/template/constrainttemplate.yaml identical to
 * policies/gatekeeper/rego/sigpinverifiedimages.rego (the file `opa test` runs), since Gatekeeper only reads YAML.
 *   node test/gatekeeper/sync-template.ts          rewrite the YAML from the .rego file
 *   node test/gatekeeper/sync-template.ts --check  exit 1 when they differ
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const templatePath = `${root}policies/gatekeeper/template/constrainttemplate.yaml`;
export const regoPath = `${root}policies/gatekeeper/rego/sigpinverifiedimages.rego`;

/** The marker line after which the Rego literal block runs to the end of the file. */
const MARKER = /^( *)rego: \|\n/m;

/** The template YAML with its Rego block replaced by `rego`, indented two spaces past the `rego: |` key. */
export function renderTemplate(yaml: string, rego: string): string {
  const match = MARKER.exec(yaml);
  if (!match) throw new Error(`${templatePath}: no "rego: |" line`);
  const indent = `${match[1] ?? ''}  `;
  const body = rego
    .replace(/\n+$/, '')
    .split('\n')
    .map((line) => (line === '' ? '' : indent + line))
    .join('\n');
  return `${yaml.slice(0, match.index + match[0].length)}${body}\n`;
}

function main(): void {
  const yaml = readFileSync(templatePath, 'utf8');
  const wanted = renderTemplate(yaml, readFileSync(regoPath, 'utf8'));
  if (process.argv.includes('--check')) {
    if (wanted !== yaml) {
      console.error(`${templatePath} is out of date: run node test/gatekeeper/sync-template.ts`);
      process.exit(1);
    }
    return;
  }
  if (wanted !== yaml) writeFileSync(templatePath, wanted);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
