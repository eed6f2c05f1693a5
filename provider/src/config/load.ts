import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

export interface ConfigProblem {
  /** Dotted path into the file, e.g. `policies[0].authorities[1]`; empty for the whole document. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(source: string, problems: ConfigProblem[]) {
    super(`${source}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: Config;
  /** Relative file paths in the config are resolved against this folder. */
  baseDir: string;
  source: string;
}

/** The embedded defaults: resolve any public registry, verify nothing (DESIGN.md section 4). */
export const DEFAULT_CONFIG_DOCUMENT = {
  registries: { allow: ['*'] },
  policies: [{ name: 'resolve-only', images: ['**'], verify: false }],
};

function formatPath(p: ReadonlyArray<PropertyKey>): string {
  return p.reduce<string>(
    (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    ''
  );
}

function toProblems(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/** Validates an already-parsed document. */
export function parseConfig(document: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(document ?? {});
  if (!result.success) throw new ConfigError(source, toProblems(result.error));
  return result.data;
}

/** Reads YAML or JSON (JSON is YAML), validates it, and reports every problem with its path. */
export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      { path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? err}` },
    ]);
  }
  let document: unknown;
  try {
    document = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `not valid YAML/JSON: ${(err as Error).message}` }]);
  }
  return { config: parseConfig(document, file), baseDir: path.dirname(path.resolve(file)), source: file };
}

export function defaultConfig(): LoadedConfig {
  return {
    config: parseConfig(DEFAULT_CONFIG_DOCUMENT, 'embedded defaults'),
    baseDir: process.cwd(),
    source: 'embedded defaults',
  };
}

/** Resolves a path from the config against the config file's folder. */
export function resolveConfigPath(loaded: LoadedConfig, p: string): string {
  return path.resolve(loaded.baseDir, p);
}
