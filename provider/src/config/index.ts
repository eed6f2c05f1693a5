export { configSchema, DEFAULT_PORT, DEFAULT_MAX_KEYS, DEFAULT_BODY_LIMIT_BYTES } from './schema.ts';
export type {
  Config,
  AuthorityConfig,
  PolicyConfig,
  CacheConfig,
  ServerConfig,
  RegistriesConfig,
} from './schema.ts';
export {
  loadConfigFile,
  parseConfig,
  defaultConfig,
  resolveConfigPath,
  ConfigError,
  DEFAULT_CONFIG_DOCUMENT,
} from './load.ts';
export type { LoadedConfig, ConfigProblem } from './load.ts';
export { parseDuration, durationSchema } from './duration.ts';
