/** What every command runs with. */
import type { CommandSpec, Flags } from './args.js';
import type { Clients } from './clients.js';
import type { CommandResult } from './output.js';
import type { Target } from './target.js';

export interface Context {
  flags: Flags;
  target: Target;
  clients: Clients;
  /** A progress line on stderr (stdout stays clean for tables, JSON and CSV). */
  progress(line: string): void;
  now(): Date;
  /** Reads all of stdin (plan --file -). */
  readStdin(): Promise<string>;
}

export interface Command {
  spec: CommandSpec;
  run(ctx: Context): Promise<CommandResult>;
}

/** A string flag the parser has already checked is present (a `required` flag). */
export function str(ctx: Context, name: string): string {
  const v = ctx.flags[name];
  if (typeof v !== 'string') throw new Error(`internal: --${name} missing after parsing`);
  return v;
}

export function optStr(ctx: Context, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** Runs `fn` over items with at most `limit` in flight, keeping the order of results. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  });
  await Promise.all(lanes);
  return out;
}
