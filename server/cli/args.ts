// Arguments for MPK's command-line tools: every one answers --help (-h) with its usage and exit 0,
// and a bad flag with a one-line reason and the usage on stderr, exit 2, never a stack trace.
import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function usageError(message: string, usage: string): never {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}

export function cliArgs<const O extends Options>(
  usage: string,
  options: O,
  { positionals = false, args = process.argv.slice(2) }: { positionals?: boolean; args?: string[] } = {},
) {
  let parsed: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true; args: string[] }>>;
  try {
    if (args.includes('--help') || args.includes('-h')) {
      console.log(usage);
      process.exit(0);
    }
    parsed = parseArgs({ options, allowPositionals: true, strict: true, args });
  } catch (error) {
    if (!String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) throw error;
    usageError((error as Error).message, usage);
  }
  if (!positionals && parsed.positionals.length) usageError(`Unexpected argument: ${parsed.positionals[0]}`, usage);
  return parsed;
}
