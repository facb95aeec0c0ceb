/** Errors the CLI reports as one line on stderr with exit status 1 (usage errors also print usage). */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** An SDK or system error as one readable line: `<name>: <message>`, never a stack. */
export function describeError(err: unknown): string {
  if (err instanceof CliError) return err.message;
  const e = err as { name?: string; message?: string; code?: string };
  if (e && typeof e === 'object' && typeof e.message === 'string') {
    return `${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`;
  }
  return String(err);
}
