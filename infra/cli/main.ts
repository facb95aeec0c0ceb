/**
 * `eks-access-grants`: the operator CLI (entry point: cli.ts). `run` takes argv and streams, so tests can
 * also call it in-process.
 *
 * Output: a table (or CSV) on stdout, exact JSON with --json; progress and errors on stderr. Exit status:
 * 0 success, 2 a denied plan or a refused request, 1 any error (a bad command or option also prints usage).
 */
import { type CommandSpec, parseArgs, UsageError, usage } from './args.js';
import { Clients } from './clients.js';
import { access } from './commands/access.js';
import { audit } from './commands/audit.js';
import { dlqList, dlqRedrive } from './commands/dlq.js';
import { extend } from './commands/extend.js';
import { grants } from './commands/grants.js';
import { plan } from './commands/plan.js';
import { revoke } from './commands/revoke.js';
import { status } from './commands/status.js';
import type { Command } from './context.js';
import { describeError } from './errors.js';
import { resolveTarget, UsageTargetError } from './target.js';

export const COMMANDS: readonly Command[] = [
  access,
  grants,
  plan,
  revoke,
  extend,
  dlqList,
  dlqRedrive,
  status,
  audit,
];
const SPECS: readonly CommandSpec[] = COMMANDS.map((c) => c.spec);

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  now?: () => Date;
}

export async function run(argv: readonly string[], io: Io): Promise<number> {
  let command: Command | undefined;
  try {
    const parsed = parseArgs(argv, SPECS);
    command = COMMANDS.find((c) => c.spec === parsed.command);
    if (!command) throw new UsageError(`unknown command ${parsed.command.name}`);
    if (parsed.flags.help) {
      io.stdout(`${usage(SPECS, parsed.command)}\n`);
      return 0;
    }
    const target = await resolveTarget(parsed.flags);
    const clients = new Clients(target);
    try {
      const result = await command.run({
        flags: parsed.flags,
        target,
        clients,
        progress: (line) => io.stderr(`${line}\n`),
        now: io.now ?? (() => new Date()),
        readStdin: io.readStdin,
      });
      const out = parsed.flags.json
        ? `${JSON.stringify(result.json, null, 2)}\n`
        : result.text.endsWith('\n')
          ? result.text
          : `${result.text}\n`;
      io.stdout(out);
      return result.exit;
    } finally {
      clients.destroy();
    }
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message === '' && argv.includes('--help')) {
        io.stdout(`${usage(SPECS)}\n`);
        return 0;
      }
      io.stderr(`eks-access-grants: ${err.message}\n\n${usage(SPECS, err.command)}\n`);
      return 1;
    }
    if (err instanceof UsageTargetError) {
      io.stderr(`eks-access-grants: ${err.message}\n\n${usage(SPECS, command?.spec)}\n`);
      return 1;
    }
    io.stderr(`eks-access-grants: ${describeError(err)}\n`);
    return 1;
  }
}
