/**
 * Writes every registered JSON Schema to events/schemas/ (`npm run schemas`).
 * `--check` writes nothing and exits 1 if a file is missing or stale, for CI.
 * Files not in the registry are left alone.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSchemaFiles, SCHEMAS_DIR } from './schemas.js';

const check = process.argv.includes('--check');
const stale: string[] = [];

mkdirSync(SCHEMAS_DIR, { recursive: true });
for (const [file, content] of renderSchemaFiles()) {
  const path = join(SCHEMAS_DIR, file);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  if (current === content) continue;
  if (check) {
    stale.push(file);
  } else {
    writeFileSync(path, content);
    console.log(`wrote ${path}`);
  }
}

if (stale.length > 0) {
  console.error(`stale JSON Schemas in ${SCHEMAS_DIR}: ${stale.join(', ')}; run \`npm run schemas\``);
  process.exitCode = 1;
}
