import { ConfigError } from './config/index.ts';

const USAGE = `usage: sigpin <command> [options]

commands:
  serve [--config FILE] [--port N] [--host H] [--state-dir DIR]
                                  run the provider (no config: embedded defaults and a development certificate)
  resolve REF... [--config FILE] [--timeout S]
                                  print {key, digest, pinned} per reference
  verify REF... [--config FILE] [--timeout S]
                                  print the verdict or {key, error} per reference; exit 0 trusted, 1 untrusted,
                                  2 usage or config error, 3 transient failure
  verify-bundle ...               sigstore-conformance CLI protocol
  config check FILE               validate a config file and print every problem with its path
`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  // Commands load their modules on first use, so a quick command does not pay for the server's dependencies.
  serve: async (argv) => (await import('./commands/serve.ts')).serveCommand(argv),
  resolve: async (argv) => (await import('./commands/lookup.ts')).lookupCommand('resolve', argv),
  verify: async (argv) => (await import('./commands/lookup.ts')).lookupCommand('verify', argv),
  'verify-bundle': async (argv) => (await import('./commands/verify-bundle.ts')).verifyBundleCommand(argv),
  config: async (argv) => {
    if (argv[0] === 'check')
      return (await import('./commands/config-check.ts')).configCheckCommand(argv.slice(1));
    process.stderr.write('usage: sigpin config check FILE\n');
    return 2;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`sigpin: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems)
        process.stderr.write(`sigpin: config ${p.path || '(document)'}: ${p.message}\n`);
      return 2;
    }
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sigpin ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`sigpin ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
