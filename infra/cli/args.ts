/**
 * Command-line parsing for `eks-access-grants`. Strict: an unknown command, an unknown or repeated flag, a
 * missing value or a missing required flag is a UsageError (exit 1, usage on stderr), never a guess.
 */

export type FlagType = 'string' | 'boolean';

export interface FlagSpec {
  type: FlagType;
  /** For string flags: the only values accepted. */
  values?: readonly string[];
  /** Placeholder in usage text. */
  arg?: string;
  help: string;
  /**
   * For string flags: checks the value while parsing (throws a UsageError naming the flag), so a bad value
   * is reported before the CLI looks for the system it targets.
   */
  check?: (name: string, value: string) => void;
}

export interface CommandSpec {
  /** `access`, or `dlq list` for a sub-command. */
  name: string;
  summary: string;
  flags: Readonly<Record<string, FlagSpec>>;
  required?: readonly string[];
  /** Groups of flags of which at most one may be given. */
  exclusive?: readonly (readonly string[])[];
}

export type Flags = Record<string, string | boolean | undefined>;

export interface Parsed {
  command: CommandSpec;
  flags: Flags;
}

export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose usage to print; absent: the general usage. */
    readonly command?: CommandSpec,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Flags every command takes: where to find the system and how to print. */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  local: {
    type: 'boolean',
    help: 'target local mode (reads .local/serve.json, written by npm start -- --serve)',
  },
  'serve-file': {
    type: 'string',
    arg: 'F',
    help: 'with --local: read this file instead of .local/serve.json',
  },
  stage: { type: 'string', arg: 'S', help: 'target the deployed stack eks-access-grants-<S>' },
  region: { type: 'string', arg: 'R', help: 'the deployed stack region (with --stage)' },
  stack: { type: 'string', arg: 'NAME', help: 'with --stage: the stack name, if not eks-access-grants-<S>' },
  json: { type: 'boolean', help: 'print exact JSON instead of a table' },
  help: { type: 'boolean', help: 'print usage' },
};

export function parseArgs(argv: readonly string[], commands: readonly CommandSpec[]): Parsed {
  // Command words are the arguments that are neither flags nor the value of a string flag (which may be `-`).
  const [first, second] = argv.filter((a, i) => !a.startsWith('-') && !isValueOf(argv, i, commands));
  if (first === undefined) {
    if (argv.includes('--help')) throw new UsageError('');
    throw new UsageError('no command given');
  }
  const command =
    commands.find((c) => c.name === first) ??
    (second !== undefined ? commands.find((c) => c.name === `${first} ${second}`) : undefined);
  if (!command) {
    const family = commands.filter((c) => c.name.startsWith(`${first} `));
    if (family.length > 0) {
      throw new UsageError(
        second === undefined
          ? `${first} needs a sub-command: ${family.map((c) => c.name).join(', ')}`
          : `unknown command ${first} ${second}; expected ${family.map((c) => c.name).join(', ')}`,
      );
    }
    throw new UsageError(`unknown command ${JSON.stringify(first)}`);
  }
  const words = command.name.split(' ').length;
  const specs = { ...GLOBAL_FLAGS, ...command.flags };
  const flags: Flags = {};
  let seenWords = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--') || arg === '--') {
      if (seenWords < words) {
        seenWords++;
        continue;
      }
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`, command);
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown option --${name} for ${command.name}`, command);
    if (Object.hasOwn(flags, name)) throw new UsageError(`--${name} is given twice`, command);
    if (spec.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`, command);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) {
        throw new UsageError(`--${name} needs a value${spec.arg ? ` (${spec.arg})` : ''}`, command);
      }
      i++;
    }
    if (value === '') throw new UsageError(`--${name} needs a non-empty value`, command);
    if (spec.values && !spec.values.includes(value)) {
      throw new UsageError(
        `--${name} ${JSON.stringify(value)} is not one of ${spec.values.join(', ')}`,
        command,
      );
    }
    if (spec.check) {
      try {
        spec.check(name, value);
      } catch (err) {
        if (err instanceof UsageError) throw new UsageError(err.message, command);
        throw err;
      }
    }
    flags[name] = value;
  }
  if (flags.help) return { command, flags };
  for (const name of command.required ?? []) {
    if (flags[name] === undefined) throw new UsageError(`${command.name} needs --${name}`, command);
  }
  for (const group of command.exclusive ?? []) {
    const given = group.filter((n) => flags[n] !== undefined);
    if (given.length > 1) {
      throw new UsageError(`${given.map((n) => `--${n}`).join(' and ')} cannot be combined`, command);
    }
  }
  return { command, flags };
}

/** Whether argv[i] is the value of the string flag before it (e.g. `dev` in `--cluster dev`). */
function isValueOf(argv: readonly string[], i: number, commands: readonly CommandSpec[]): boolean {
  const prev = argv[i - 1];
  if (prev === undefined || !prev.startsWith('--') || prev.includes('=')) return false;
  const name = prev.slice(2);
  const spec = GLOBAL_FLAGS[name] ?? commands.map((c) => c.flags[name]).find((s) => s !== undefined);
  return spec?.type === 'string';
}

export function usage(commands: readonly CommandSpec[], only?: CommandSpec): string {
  const lines: string[] = [];
  const flagLine = (name: string, spec: FlagSpec) =>
    `    --${name}${spec.type === 'string' ? ` ${spec.values ? spec.values.join('|') : (spec.arg ?? 'VALUE')}` : ''}`.padEnd(
      34,
    ) + spec.help;
  lines.push('usage: eks-access-grants <command> [options] (--local | --stage S --region R) [--json]');
  lines.push('       npm run --silent cli -- <command> [options]');
  lines.push('');
  for (const c of only ? [only] : commands) {
    const req = new Set(c.required ?? []);
    const synopsis = Object.entries(c.flags)
      .map(([n, s]) => {
        const text = `--${n}${s.type === 'string' ? ` ${s.arg ?? 'VALUE'}` : ''}`;
        return req.has(n) ? text : `[${text}]`;
      })
      .join(' ');
    lines.push(`  ${c.name} ${synopsis}`.trimEnd());
    lines.push(`      ${c.summary}`);
    if (only) for (const [n, s] of Object.entries(c.flags)) lines.push(flagLine(n, s));
  }
  lines.push('');
  lines.push('  options for every command:');
  for (const [n, s] of Object.entries(GLOBAL_FLAGS)) lines.push(flagLine(n, s));
  lines.push('');
  lines.push('  exit status: 0 success; 2 a denied plan or a refused request; 1 any error');
  return lines.join('\n');
}
