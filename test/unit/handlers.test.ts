// nodejs24.x no longer runs callback-style handlers, and it tells them apart by arity: the runtime
// interface client (aws/aws-lambda-nodejs-runtime-interface-client, UserFunctionLoader /
// errorOnDeprecatedCallback) refuses a handler that declares three or more parameters, async or not,
// with "AWS Lambda has removed support for callback-based function handlers starting with Node.js 24".
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { instrumented } from '../../functions/observability.js';
import { FUNCTION_ENTRIES, ROOT } from '../../infra/scripts/build.js';

const entries = [...new Set(Object.values(FUNCTION_ENTRIES))].filter((e) => existsSync(join(ROOT, e)));

describe('Lambda handlers on nodejs24.x', () => {
  it('wraps every entry point handler in instrumented(), which only takes async (event, context) handlers', () => {
    expect(entries.length).toBeGreaterThanOrEqual(4);
    for (const entry of entries) {
      const source = readFileSync(join(ROOT, entry), 'utf8');
      const exports =
        source.match(/^export\s+(?:const|let|var|async\s+function|function)\s+handler\b.*$/gm) ?? [];
      expect(exports, entry).toHaveLength(1);
      expect(exports[0], entry).toMatch(/^export const handler = instrumented\(/);
    }
  });

  it('gives the runtime an async function of fewer than three parameters', async () => {
    const handler = instrumented(async (event: { n: number }, _context: Context) => event.n + 1);
    expect(handler.constructor.name).toBe('AsyncFunction');
    expect(handler.length).toBeLessThan(3);
    const context = { getRemainingTimeInMillis: () => 1000, functionName: 'f' } as unknown as Context;
    await expect(handler({ n: 1 }, context)).resolves.toBe(2);
  });
});
