import { pino, type Logger, type LevelWithSilent } from 'pino';

/** Paths pino blanks out wherever they appear: no credential or token ever reaches a log line. */
export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'identityToken',
  'registryToken',
  'auth',
  '*.password',
  '*.token',
  '*.authorization',
  '*.Authorization',
  '*.identityToken',
  '*.registryToken',
  '*.auth',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.credentials',
  'credentials',
];

export interface LoggerOptions {
  level: LevelWithSilent;
  /** 2 = stderr (CLI commands keep stdout for their JSON lines), 1 = stdout (the server). */
  fd?: 1 | 2;
}

export function createLogger(o: LoggerOptions): Logger {
  return pino(
    { name: 'sigpin', level: o.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    pino.destination({ fd: o.fd ?? 1, sync: false })
  );
}
