import { ConfigError, loadConfigFile } from '../config/index.ts';

/** `sigpin config check FILE`: prints every problem with its path; exit 0 when valid, 2 otherwise. */
export async function configCheckCommand(argv: string[]): Promise<number> {
  const [file, ...rest] = argv;
  if (!file || rest.length > 0) {
    process.stderr.write('usage: sigpin config check FILE\n');
    return 2;
  }
  try {
    const { config } = await loadConfigFile(file);
    process.stdout.write(
      `${file}: ok (${config.policies.length} policies, ${config.authorities.length} authorities, cache ${config.cache.url.replace(/\/\/.*@/, '//[redacted]@')})\n`
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stdout.write(`${file}: ${p.path || '(document)'}: ${p.message}\n`);
    return 2;
  }
}
