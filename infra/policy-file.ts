/**
 * Reads a guardrail policy file (YAML or JSON) from disk. Used by local mode,
 * tests and packaging. The Lambda bundle only ever sees JSON (written by
 * `policyFileToJson`), so the `yaml` parser stays out of functions/.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError } from '../functions/core/errors.js';
import { type GuardrailPolicy, validatePolicy } from '../functions/core/policy.js';

/** The policy local mode and tests use. */
export const EXAMPLE_POLICY_PATH = fileURLToPath(new URL('./policy.example.yaml', import.meta.url));

/** Parses policy text by file extension (.yaml, .yml, .json) into the raw, unvalidated document. */
export function parsePolicyDocument(text: string, fileName: string): unknown {
  const ext = extname(fileName).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text);
    // merge: lets rules share fragments with `<<: *anchor`; duplicate keys stay an error (uniqueKeys default).
    if (ext === '.yaml' || ext === '.yml') return parse(text, { merge: true });
  } catch (err) {
    throw new ConfigError(`${fileName}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  throw new ConfigError(
    `${fileName}: unsupported policy file type ${JSON.stringify(ext)}; use .yaml, .yml or .json`,
  );
}

/** Reads and parses a policy file without validating it. */
export async function readPolicyDocument(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the guardrail policy: ${messageOf(err)}`, { cause: err });
  }
  return parsePolicyDocument(text, path);
}

/** Reads, parses and validates a policy file. Every problem line is prefixed with the file name. */
export async function loadPolicyFile(path: string): Promise<GuardrailPolicy> {
  return validateIn(path, await readPolicyDocument(path));
}

/**
 * The JSON the Lambda bundle carries: the document as written (not the normalized
 * form, which validatePolicy does not accept), validated first so a bad policy
 * fails the packaging step rather than a cold start.
 */
export async function policyFileToJson(path: string): Promise<string> {
  const document = await readPolicyDocument(path);
  validateIn(path, document);
  return `${JSON.stringify(document, null, 2)}\n`;
}

function validateIn(path: string, document: unknown): GuardrailPolicy {
  try {
    return validatePolicy(document);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const lines = err.message.split('\n').map((line) => `${path}: ${line}`);
    throw new ConfigError(lines.join('\n'), { cause: err });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
