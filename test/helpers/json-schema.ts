/**
 * A small evaluator of the JSON Schema keywords this project's schemas use. No ajv in
 * the dependency tree, and this is enough to check that a schema and the code agree.
 * It throws on a keyword it does not know, so a schema cannot silently outgrow it.
 */
export type Json = Record<string, unknown>;

const KEYWORDS = new Set([
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'format',
  'type',
  'enum',
  'const',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'not',
  'allOf',
  'anyOf',
  'if',
  'then',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'uniqueItems',
]);

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function accepts(s: Json, v: unknown): boolean {
  for (const key of Object.keys(s)) if (!KEYWORDS.has(key)) throw new Error(`evaluator lacks keyword ${key}`);
  const isObj = typeof v === 'object' && v !== null && !Array.isArray(v);
  switch (s.type) {
    case 'string':
      if (typeof v !== 'string') return false;
      break;
    case 'integer':
      if (!Number.isInteger(v)) return false;
      break;
    case 'array':
      if (!Array.isArray(v)) return false;
      break;
    case 'object':
      if (!isObj) return false;
      break;
    case 'null':
      if (v !== null) return false;
      break;
  }
  if (s.enum && !(s.enum as unknown[]).some((e) => deepEqual(e, v))) return false;
  if ('const' in s && !deepEqual(s.const, v)) return false;
  if (typeof v === 'string') {
    const len = [...v].length;
    if (typeof s.minLength === 'number' && len < s.minLength) return false;
    if (typeof s.maxLength === 'number' && len > s.maxLength) return false;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) return false;
  }
  if (typeof v === 'number' && typeof s.minimum === 'number' && v < s.minimum) return false;
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return false;
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return false;
    if (s.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) return false;
    if (s.items && !v.every((x) => accepts(s.items as Json, x))) return false;
  }
  if (isObj) {
    const o = v as Json;
    if (s.required && !(s.required as string[]).every((k) => Object.hasOwn(o, k))) return false;
    const props = (s.properties ?? {}) as Record<string, Json>;
    for (const k of Object.keys(o)) {
      if (Object.hasOwn(props, k)) {
        if (!accepts(props[k] as Json, o[k])) return false;
      } else if (s.additionalProperties === false) return false;
    }
  }
  if (s.not && accepts(s.not as Json, v)) return false;
  if (s.allOf && !(s.allOf as Json[]).every((x) => accepts(x, v))) return false;
  if (s.anyOf && !(s.anyOf as Json[]).some((x) => accepts(x, v))) return false;
  if (s.if && accepts(s.if as Json, v) && s.then && !accepts(s.then as Json, v)) return false;
  return true;
}
