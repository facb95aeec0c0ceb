/**
 * The registry of published JSON Schemas: name → schema object. Each is written to
 * events/schemas/<name>.schema.json by write-schemas.ts, and a unit test checks the files on
 * disk still equal what this produces. To publish another contract, add one entry here.
 */
import { fileURLToPath } from 'node:url';
import { auditRecordJsonSchema } from '../../functions/core/audit-schema.js';
import { expiringSoonJsonSchema } from '../../functions/core/expiring-soon.js';
import { accessRequestJsonSchema } from '../../functions/core/request.js';
import { guardrailPolicyJsonSchema } from '../../functions/core/role-mapping-schema.js';

export const schemas: Readonly<Record<string, object>> = {
  'access-request.v1': accessRequestJsonSchema(),
  'audit-record.v1': auditRecordJsonSchema(),
  'expiring-soon.v1': expiringSoonJsonSchema(),
  'guardrail-policy.v1': guardrailPolicyJsonSchema(),
};

export const SCHEMAS_DIR = fileURLToPath(new URL('../../events/schemas/', import.meta.url));

export function schemaFileName(name: string): string {
  return `${name}.schema.json`;
}

/** Stable text (2-space JSON, trailing newline) so regenerating an unchanged schema is a no-op diff. */
export function renderSchema(schema: object): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

/** File name → file content, for every registered schema. */
export function renderSchemaFiles(): Map<string, string> {
  return new Map(
    Object.entries(schemas).map(([name, schema]) => [schemaFileName(name), renderSchema(schema)]),
  );
}
