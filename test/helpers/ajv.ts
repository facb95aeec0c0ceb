/**
 * The published JSON Schemas, evaluated by ajv (draft 2020-12, strict mode, with formats), so the tests
 * check the schemas as consumers' validators read them rather than with a home-made evaluator.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

// Strict about keywords and formats (an unknown one is an error), not about two standard idioms the
// generated schemas use: `not: { required: [a, b] }` (a and b exclusive), which strictRequired flags
// because the branch declares no properties, and conditional fragments (`then: { properties: … }`) that
// rely on the enclosing schema's `type`, which strictTypes wants repeated.
const ajv = new Ajv2020({ strict: true, strictRequired: false, strictTypes: false, allErrors: true });
addFormats.default(ajv);

// One compiled validator per schema text: the generators return a fresh object per call.
const compiled = new Map<string, ValidateFunction>();
function validator(schema: object): ValidateFunction {
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    const { $id: _, ...rest } = schema as Record<string, unknown>;
    v = ajv.compile(rest);
    compiled.set(key, v);
  }
  return v;
}

export function accepts(schema: object, value: unknown): boolean {
  return validator(schema)(value) === true;
}

/** ajv's errors for a value the schema refuses, `[]` when it accepts it: for assertion messages. */
export function schemaErrors(schema: object, value: unknown): string[] {
  const v = validator(schema);
  return v(value) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);
}
