#!/usr/bin/env node
/**
 * The `podnet` command. Usage errors: one line and the usage, exit 2.
 * Runtime errors: the typed error's message and code, exit 1.
 */
import { setDebug } from '../debug';
import { PodnetError } from '../errors';
import { demo } from './demo';
import { run } from './run';
import { netnsCommand, networkCommand, inspectCommand, statsCommand, poolCommand, gcCommand } from './commands';
import { UsageError, USAGE } from './usage';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  run,
  demo,
  netns: netnsCommand,
  network: networkCommand,
  inspect: inspectCommand,
  stats: statsCommand,
  pool: poolCommand,
  gc: gcCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // --debug before `--` only: after it, the flags belong to the command being run.
  const end = argv.indexOf('--');
  const debug = (end < 0 ? argv : argv.slice(0, end)).includes('--debug');
  if (debug) setDebug(true);
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      process.stdout.write(USAGE.main);
      return cmd === undefined ? 2 : 0;
    }
    const fn = COMMANDS[cmd];
    if (!fn) throw new UsageError('main', `unknown command '${cmd}'`);
    return await fn(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`podnet: ${err.message} (${err.code})\n\n${USAGE[err.command] ?? USAGE.main}`);
      return 2;
    }
    const e = err as PodnetError;
    process.stderr.write(`podnet: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
    if (debug) process.stderr.write(`${e.stack ?? ''}\n${e.details ? JSON.stringify(e.details, null, 2) : ''}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
