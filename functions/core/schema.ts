/**
 * A tiny declarative field-spec layer. One spec drives the runtime validator and the published
 * JSON Schema, so the two cannot drift. Two reporters read the same specs:
 * - `validate`: first violation wins, with a specific reason code (messages, queue bodies);
 * - `collect`: every problem, one line each, prefixed with its path (config files such as the
 *   guardrail policy, where one deploy should show all of them).
 * Hand-written instead of a library to keep the Lambda bundle small (see README, "Contracts").
 *
 * Patterns are ECMA-262 source strings, always anchored `^...$`, compiled with the `u`
 * flag (as JSON Schema validators such as ajv do) and never with `m`: in JS, `$` without
 * `m` matches only at the very end, so a trailing newline can never slip through.
 * Lengths count code points, as JSON Schema's minLength/maxLength do.
 */
import type { Reason } from './types.js';

export interface SpecBase {
  /** Reason code for any value violation of this spec (length, pattern, enum, item count). */
  readonly code: string;
  /** What would be accepted, phrased for people; quoted in every rejection message. */
  readonly expected: string;
  readonly description?: string;
  /** `collect` only: the problem (after `path: `) for any type or value failure of this spec. */
  readonly explain?: (value: unknown) => string;
  /** JSON Schema only: emitted once, as `$defs/<ref>`, and referenced wherever the spec is used. */
  readonly ref?: string;
}

/** A value that matches the general shape but is refused for a specific reason (with its own code). */
export interface Forbidden {
  readonly pattern: string;
  readonly code: string;
  readonly message: (path: string, value: string) => string;
}

export interface StringSpec extends SpecBase {
  readonly kind: 'string';
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  /** One-character class (e.g. `[A-Za-z0-9]`) used only to name the first offending character. */
  readonly charset?: string;
  readonly enum?: readonly string[];
  /** JSON Schema annotation only. */
  readonly format?: string;
  /** Checked before length and pattern so the most specific code wins. Emitted as `not: {pattern}`. */
  readonly forbidden?: readonly Forbidden[];
  /** Semantic rule a JSON Schema cannot express; runs last. Its message is the whole message. */
  readonly check?: (value: string, path: string) => Reason | undefined;
  /** `collect` only: the normalized value (e.g. a short policy name expanded to its ARN). */
  readonly parse?: (value: string) => unknown;
}

export interface IntegerSpec extends SpecBase {
  readonly kind: 'integer';
  readonly const?: number;
  readonly minimum?: number;
}

export interface BooleanSpec extends SpecBase {
  readonly kind: 'boolean';
}

export interface ArraySpec extends SpecBase {
  readonly kind: 'array';
  readonly items: Spec;
  readonly minItems?: number;
  readonly maxItems?: number;
  /** `true`: items must be distinct; a string: object items must differ in that key. */
  readonly unique?: true | string;
  /** `collect` only: repeated items are dropped silently (a list read as a set). */
  readonly dedupe?: true;
  /** `collect` only: the problem when there are fewer than minItems. */
  readonly tooFew?: string;
}

/** A mapping from free-form keys (cluster names, level names) to values of one spec. */
export interface RecordSpec extends SpecBase {
  readonly kind: 'record';
  readonly keys: StringSpec;
  readonly values: Spec;
  readonly minEntries?: number;
  /** `collect` only: the problem when there are fewer than minEntries. */
  readonly tooFew?: string;
}

export interface FieldDef {
  readonly name: string;
  readonly required: boolean;
  readonly spec: Spec;
  /** Validated (when present) before the unknown-field scan, e.g. a version discriminator. */
  readonly checkFirst?: boolean;
  /** `collect` only: the problem when a required field is absent; default `is required`. */
  readonly missing?: string;
  /** `collect` only: the value an absent optional field takes; also the JSON Schema `default`. */
  readonly default?: unknown;
}

/** A cross-field rule: a check for the validator and its (possibly partial) JSON Schema form. */
export interface ObjectRule {
  /** Run right after this field is validated; default: after all fields. */
  readonly after?: string;
  /** Sees the input object, whose keys are all known by then; read it with `own()`. */
  readonly check: (obj: Readonly<Record<string, unknown>>, path: string) => Reason | undefined;
  readonly schema: Readonly<Record<string, unknown>>;
}

export interface ObjectSpec extends SpecBase {
  readonly kind: 'object';
  readonly fields: readonly FieldDef[];
  readonly rules?: readonly ObjectRule[];
  /** `collect` only: the whole message for a key that is not a field. */
  readonly unknownKey?: (key: string, path: string) => string;
  /**
   * `collect` only: rules across fields, run once every field is valid, on the parsed value;
   * each returns whole messages. JSON Schema cannot express them (documented in `description`).
   */
  readonly checks?: readonly ((value: Record<string, unknown>, path: string) => readonly string[])[];
  /** `collect` only: the normalized value, from the parsed fields. */
  readonly parse?: (value: Record<string, unknown>) => unknown;
}

/**
 * Any value of the listed JSON types (default: anything): a part of a document that this reader
 * deliberately leaves open or to another reader (see its use).
 */
export interface AnySpec extends SpecBase {
  readonly kind: 'any';
  readonly types?: readonly ('null' | 'object' | 'array' | 'string' | 'number' | 'boolean')[];
}

function jsonType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

export type Spec = StringSpec | IntegerSpec | BooleanSpec | ArraySpec | RecordSpec | ObjectSpec | AnySpec;

export type Checked = { ok: true; value: unknown } | { ok: false; reason: Reason };

export const DUPLICATE_VALUE = 'DUPLICATE_VALUE';
export const INVALID_TYPE = 'INVALID_TYPE';
export const MISSING_FIELD = 'MISSING_FIELD';
export const UNKNOWN_FIELD = 'UNKNOWN_FIELD';

const SHOW_MAX = 80;

/** Reads an own property only: input objects may carry own `__proto__`/`constructor` keys. */
export function own(obj: Readonly<Record<string, unknown>>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

export function truncate(s: string, max = SHOW_MAX): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** The offending value for a message: truncated and JSON-quoted so control characters show as escapes. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(truncate(value));
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length} item(s)`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  return `a value of type ${typeof value}`;
}

function kindName(spec: Spec): string {
  if (spec.kind === 'any') return spec.types ? spec.types.join(' or ') : 'any value';
  return spec.kind === 'object' || spec.kind === 'record'
    ? 'an object'
    : spec.kind === 'array'
      ? 'an array'
      : `a ${spec.kind}`;
}

function charName(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `control character ${hex}`;
  if (cp === 0x20) return `a space (${hex})`;
  return `${JSON.stringify(ch)} (${hex}${cp > 0x7e ? ', non-ASCII' : ''})`;
}

/**
 * Names the first character that cannot appear, which is what makes a Cyrillic 'а'
 * or a trailing newline in an ARN diagnosable from the message alone.
 */
function offendingChar(value: string, charset: string | undefined): string {
  const allowed = charset === undefined ? undefined : new RegExp(`^${charset}$`, 'u');
  let index = 0;
  for (const ch of value) {
    const bad = allowed ? !allowed.test(ch) : ch < '!' || ch > '~';
    if (bad) return ` It contains ${charName(ch)} at index ${index}, which is not allowed.`;
    index += ch.length;
  }
  return '';
}

const regexCache = new Map<string, RegExp>();
export function compile(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    regexCache.set(pattern, re);
  }
  return re;
}

function fail(code: string, message: string): Checked {
  return { ok: false, reason: { code, message } };
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function invalid(spec: SpecBase, path: string, value: unknown, problem: string, extra = ''): Checked {
  return fail(spec.code, `"${path}" ${problem}; got ${show(value)}.${extra} Expected ${spec.expected}.`);
}

export function validate(spec: Spec, value: unknown, path: string): Checked {
  switch (spec.kind) {
    case 'string':
      return validateString(spec, value, path);
    case 'integer':
      return validateInteger(spec, value, path);
    case 'boolean':
      return typeof value === 'boolean' ? { ok: true, value } : wrongType(spec, value, path);
    case 'array':
      return validateArray(spec, value, path);
    case 'record':
      return validateRecord(spec, value, path);
    case 'object':
      return validateObject(spec, value, path);
    case 'any':
      return spec.types && !spec.types.includes(jsonType(value) as never)
        ? wrongType(spec, value, path)
        : { ok: true, value };
  }
}

function validateRecord(spec: RecordSpec, value: unknown, path: string): Checked {
  if (!isPlainObject(value)) return wrongType(spec, value, path);
  const keys = Object.keys(value);
  if (spec.minEntries !== undefined && keys.length < spec.minEntries) {
    return invalid(spec, path, value, 'has too few entries');
  }
  const out: Record<string, unknown> = Object.create(null);
  for (const key of keys) {
    const k = validate(spec.keys, key, join(path, key));
    if (!k.ok) return k;
    const r = validate(spec.values, value[key], join(path, key));
    if (!r.ok) return r;
    out[key] = r.value;
  }
  return { ok: true, value: out };
}

function wrongType(spec: Spec, value: unknown, path: string): Checked {
  const hint = value === null ? ' Omit an optional field instead of sending null.' : '';
  return fail(
    INVALID_TYPE,
    `"${path}" must be ${kindName(spec)}; got ${show(value)}.${hint} Expected ${spec.expected}.`,
  );
}

function validateString(spec: StringSpec, value: unknown, path: string): Checked {
  if (typeof value !== 'string') return wrongType(spec, value, path);
  for (const f of spec.forbidden ?? []) {
    if (compile(f.pattern).test(value)) return fail(f.code, f.message(path, value));
  }
  const len = codePointLength(value);
  if (spec.minLength !== undefined && len < spec.minLength) {
    return invalid(spec, path, value, len === 0 ? 'is empty' : `is too short (${len} characters)`);
  }
  if (spec.maxLength !== undefined && len > spec.maxLength) {
    return invalid(spec, path, value, `is too long (${len} characters, at most ${spec.maxLength})`);
  }
  if (spec.pattern !== undefined && !compile(spec.pattern).test(value)) {
    return invalid(spec, path, value, 'is not in the accepted form', offendingChar(value, spec.charset));
  }
  if (spec.enum !== undefined && !spec.enum.includes(value)) {
    return invalid(spec, path, value, 'is not an accepted value');
  }
  const reason = spec.check?.(value, path);
  return reason ? { ok: false, reason } : { ok: true, value };
}

function validateInteger(spec: IntegerSpec, value: unknown, path: string): Checked {
  if (typeof value !== 'number' || !Number.isInteger(value)) return wrongType(spec, value, path);
  if (spec.const !== undefined && value !== spec.const) return invalid(spec, path, value, 'is not supported');
  if (spec.minimum !== undefined && value < spec.minimum) return invalid(spec, path, value, 'is too small');
  return { ok: true, value };
}

function validateArray(spec: ArraySpec, value: unknown, path: string): Checked {
  if (!Array.isArray(value)) return wrongType(spec, value, path);
  // Size first: a huge array is refused without touching its items.
  if (spec.maxItems !== undefined && value.length > spec.maxItems) {
    return invalid(spec, path, value, `has too many items (at most ${spec.maxItems})`);
  }
  if (spec.minItems !== undefined && value.length < spec.minItems) {
    return invalid(spec, path, value, value.length === 0 ? 'is empty' : 'has too few items');
  }
  const out: unknown[] = [];
  const seen = new Map<unknown, number>();
  for (let i = 0; i < value.length; i++) {
    const itemPath = `${path}[${i}]`;
    const r = validate(spec.items, value[i], itemPath);
    if (!r.ok) return r;
    if (spec.unique !== undefined) {
      const key = spec.unique === true ? r.value : own(r.value as Record<string, unknown>, spec.unique);
      const first = seen.get(key);
      if (first !== undefined) {
        const what = spec.unique === true ? show(key) : `${spec.unique} ${show(key)}`;
        return fail(
          DUPLICATE_VALUE,
          `"${itemPath}" repeats ${what} already given at "${path}[${first}]"; each value may appear once.`,
        );
      }
      seen.set(key, i);
    }
    out.push(r.value);
  }
  return { ok: true, value: out };
}

const knownNames = new WeakMap<ObjectSpec, ReadonlySet<string>>();
function namesOf(spec: ObjectSpec): ReadonlySet<string> {
  let names = knownNames.get(spec);
  if (!names) {
    names = new Set(spec.fields.map((f) => f.name));
    knownNames.set(spec, names);
  }
  return names;
}

function unknownField(spec: ObjectSpec, path: string, key: string): Checked {
  const names = [...namesOf(spec)];
  const near = names.find((n) => n.toLowerCase() === key.toLowerCase());
  const hint = near ? ` Did you mean "${near}"? Field names are case-sensitive.` : '';
  const where = path === '' ? 'at the top level' : `in "${path}"`;
  return fail(
    UNKNOWN_FIELD,
    `Unknown field ${JSON.stringify(truncate(key))} ${where}.${hint} Accepted fields: ${names.join(', ')}.`,
  );
}

function runRules(spec: ObjectSpec, obj: Record<string, unknown>, path: string, after: string | undefined) {
  for (const rule of spec.rules ?? []) {
    if (rule.after !== after) continue;
    const reason = rule.check(obj, path);
    if (reason) return reason;
  }
  return undefined;
}

function validateObject(spec: ObjectSpec, value: unknown, path: string): Checked {
  if (!isPlainObject(value)) return wrongType(spec, value, path);
  for (const f of spec.fields) {
    if (!f.checkFirst || !Object.hasOwn(value, f.name)) continue;
    const r = validate(f.spec, value[f.name], join(path, f.name));
    if (!r.ok) return r;
  }
  // Object.keys lists own keys only, including an own `__proto__` that JSON.parse creates.
  const names = namesOf(spec);
  for (const key of Object.keys(value)) {
    if (!names.has(key)) return unknownField(spec, path, key);
  }
  for (const f of spec.fields) {
    if (f.required && !Object.hasOwn(value, f.name)) {
      return fail(
        MISSING_FIELD,
        `Missing required field "${join(path, f.name)}": expected ${f.spec.expected}.`,
      );
    }
  }
  // A fresh object holding known fields only, so smuggled keys never reach later code.
  const out: Record<string, unknown> = {};
  for (const f of spec.fields) {
    if (Object.hasOwn(value, f.name)) {
      const r = validate(f.spec, value[f.name], join(path, f.name));
      if (!r.ok) return r;
      out[f.name] = r.value;
    }
    const reason = runRules(spec, value, path, f.name);
    if (reason) return { ok: false, reason };
  }
  const reason = runRules(spec, value, path, undefined);
  return reason ? { ok: false, reason } : { ok: true, value: out };
}

/**
 * JSON Schema (draft 2020-12 vocabulary) for a spec. With `defs`, a spec that has a `ref` is emitted
 * once into `defs` and referenced as `#/$defs/<ref>`; the caller puts `defs` under `$defs`.
 */
export function toJsonSchema(spec: Spec, defs?: Record<string, unknown>): Record<string, unknown> {
  if (defs && spec.ref !== undefined) {
    if (!Object.hasOwn(defs, spec.ref)) {
      defs[spec.ref] = {}; // reserved first, so a spec that contains itself terminates
      defs[spec.ref] = toJsonSchema({ ...spec, ref: undefined } as Spec, defs);
    }
    return { $ref: `#/$defs/${spec.ref}` };
  }
  const s: Record<string, unknown> = {};
  // Leaf descriptions repeat the validator's "expected" text, so schema readers see the same contract.
  const accepted =
    spec.kind === 'object' || spec.kind === 'record' || spec.kind === 'any'
      ? undefined
      : `Accepted: ${spec.expected}.`;
  const description = [spec.description, accepted].filter((d) => d !== undefined).join(' ');
  if (description !== '') s.description = description;
  switch (spec.kind) {
    case 'string': {
      s.type = 'string';
      if (spec.enum !== undefined) s.enum = [...spec.enum];
      if (spec.minLength !== undefined) s.minLength = spec.minLength;
      if (spec.maxLength !== undefined) s.maxLength = spec.maxLength;
      if (spec.pattern !== undefined) s.pattern = spec.pattern;
      if (spec.format !== undefined) s.format = spec.format;
      const nots = (spec.forbidden ?? []).map((f) => ({ not: { pattern: f.pattern } }));
      if (nots.length === 1) Object.assign(s, nots[0]);
      else if (nots.length > 1) s.allOf = nots;
      break;
    }
    case 'integer':
      s.type = 'integer';
      if (spec.const !== undefined) s.const = spec.const;
      if (spec.minimum !== undefined) s.minimum = spec.minimum;
      break;
    case 'boolean':
      s.type = 'boolean';
      break;
    case 'array':
      s.type = 'array';
      s.items = toJsonSchema(spec.items, defs);
      if (spec.minItems !== undefined) s.minItems = spec.minItems;
      if (spec.maxItems !== undefined) s.maxItems = spec.maxItems;
      // Uniqueness by key is stricter than uniqueItems, but implies it.
      if (spec.unique !== undefined) s.uniqueItems = true;
      break;
    case 'record': {
      s.type = 'object';
      const { description: _, ...keys } = toJsonSchema(spec.keys, defs);
      s.propertyNames = keys;
      s.additionalProperties = toJsonSchema(spec.values, defs);
      if (spec.minEntries !== undefined) s.minProperties = spec.minEntries;
      break;
    }
    case 'object': {
      s.type = 'object';
      s.additionalProperties = false;
      s.required = spec.fields.filter((f) => f.required).map((f) => f.name);
      s.properties = Object.fromEntries(
        spec.fields.map((f) => [
          f.name,
          { ...toJsonSchema(f.spec, defs), ...(f.default !== undefined && { default: f.default }) },
        ]),
      );
      if (spec.rules?.length) s.allOf = spec.rules.map((r) => r.schema);
      break;
    }
    case 'any':
      if (spec.types) s.type = spec.types.length === 1 ? spec.types[0] : [...spec.types];
      break;
  }
  return s;
}

/** What a published schema document says about itself, around the generated body. */
export interface SchemaDocumentInfo {
  readonly id: string;
  readonly title: string;
  /** Where it is generated from, and what the validator enforces beyond what the schema can say. */
  readonly comment: string;
}

/**
 * A whole JSON Schema document (draft 2020-12) for a spec, as published under events/schemas/:
 * the `$schema`/`$id`/`title`/`$comment` envelope, the generated body, then `$defs` when some spec
 * carries a `ref`. Key order is part of the published bytes, so it is fixed here.
 */
export function schemaDocument(spec: Spec, info: SchemaDocumentInfo): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  const body = toJsonSchema(spec, defs);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: info.id,
    title: info.title,
    $comment: info.comment,
    ...body,
    ...(Object.keys(defs).length > 0 && { $defs: defs }),
  };
}

/**
 * Field-spec shorthands bound to one rejection code, for the contracts declared spec by spec (the audit
 * record, the expiring-soon reminder): strings, enums, objects, string lists, RFC 3339 instants.
 */
export function specBuilders(code: string) {
  const text = (description?: string, extra: Partial<StringSpec> = {}): StringSpec => ({
    kind: 'string',
    code,
    expected: 'a string',
    ...(description !== undefined && { description }),
    ...extra,
  });
  return {
    text,
    oneOf: (values: readonly string[], description?: string): StringSpec =>
      text(description, { expected: values.join(', '), enum: values }),
    required: (name: string, spec: Spec): FieldDef => ({ name, required: true, spec }),
    optional: (name: string, spec: Spec): FieldDef => ({ name, required: false, spec }),
    object: (fields: FieldDef[], description?: string): ObjectSpec => ({
      kind: 'object',
      code,
      expected: 'an object',
      fields,
      ...(description !== undefined && { description }),
    }),
    strings: { kind: 'array', code, expected: 'a list of strings', items: text() } as ArraySpec,
    /** RFC 3339 in UTC or with an offset, as Date#toISOString writes it (plus offsets, for other writers). */
    instant: (description?: string): StringSpec =>
      text(description, {
        expected: 'an RFC 3339 date-time',
        pattern: String.raw`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$`,
        format: 'date-time',
      }),
  };
}

/**
 * `^(?:[Ss][Yy][Ss]...:|...)`: a case-insensitive prefix test without the `i` flag,
 * which JSON Schema patterns cannot carry.
 */
export function caseInsensitivePrefixPattern(prefixes: readonly string[]): string {
  // `-` is left alone: `\-` outside a class is a syntax error under the `u` flag.
  const esc = (ch: string) => (/[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch);
  const one = (p: string) =>
    [...p]
      .map((ch) =>
        ch.toLowerCase() !== ch.toUpperCase() ? `[${ch.toUpperCase()}${ch.toLowerCase()}]` : esc(ch),
      )
      .join('');
  return `^(?:${prefixes.map(one).join('|')})`;
}

// ---------------------------------------------------------------------------------------------------------
// collect: every problem at once, for config files
// ---------------------------------------------------------------------------------------------------------

/** What `collect` returns for a value with problems (they are in `issues`). */
export const INVALID: unique symbol = Symbol('invalid');

/**
 * Validates `value` against `spec`, appending one `path: problem` line per problem to `issues`, and
 * returns the parsed (normalized) value or INVALID. Siblings are checked independently, so one run
 * reports everything; cross-field `checks` run only on objects whose fields are all valid.
 * Config-file vocabulary: "a list", "a mapping"; paths like `clusters.prod.rules.ticket`.
 */
export function collect(spec: Spec, value: unknown, path: string, issues: string[]): unknown {
  const problem = (text: string) => {
    issues.push(`${path || '(root)'}: ${spec.explain ? spec.explain(value) : text}`);
    return INVALID;
  };
  const typeProblem = () => problem(`must be ${spec.expected}; got ${showConfig(value)}`);
  switch (spec.kind) {
    case 'string': {
      if (typeof value !== 'string') return typeProblem();
      for (const f of spec.forbidden ?? []) {
        if (compile(f.pattern).test(value)) {
          issues.push(f.message(path, value));
          return INVALID;
        }
      }
      const len = codePointLength(value);
      if (
        (spec.minLength !== undefined && len < spec.minLength) ||
        (spec.maxLength !== undefined && len > spec.maxLength) ||
        (spec.pattern !== undefined && !compile(spec.pattern).test(value)) ||
        (spec.enum !== undefined && !spec.enum.includes(value))
      ) {
        return problem(`${showConfig(value)} is not ${spec.expected}`);
      }
      const reason = spec.check?.(value, path);
      if (reason) {
        issues.push(reason.message);
        return INVALID;
      }
      return spec.parse ? spec.parse(value) : value;
    }
    case 'integer':
      if (
        typeof value !== 'number' ||
        !Number.isInteger(value) ||
        (spec.const !== undefined && value !== spec.const) ||
        (spec.minimum !== undefined && value < spec.minimum)
      ) {
        return typeProblem();
      }
      return value;
    case 'boolean':
      return typeof value === 'boolean' ? value : typeProblem();
    case 'array': {
      if (!Array.isArray(value)) return typeProblem();
      if (spec.maxItems !== undefined && value.length > spec.maxItems) {
        return problem(`has too many items (at most ${spec.maxItems})`);
      }
      if (spec.minItems !== undefined && value.length < spec.minItems) {
        return problem(spec.tooFew ?? `must list at least ${spec.minItems}`);
      }
      const out: unknown[] = [];
      let ok = true;
      value.forEach((item, i) => {
        const r = collect(spec.items, item, `${path}[${i}]`, issues);
        if (r === INVALID) ok = false;
        else if (!(spec.dedupe && out.includes(r))) out.push(r);
      });
      return ok ? out : INVALID;
    }
    case 'record': {
      if (!isPlainObject(value)) return typeProblem();
      const keys = Object.keys(value);
      if (spec.minEntries !== undefined && keys.length < spec.minEntries) {
        return problem(spec.tooFew ?? `must have at least ${spec.minEntries} entries`);
      }
      const out: Record<string, unknown> = Object.create(null);
      let ok = true;
      for (const key of keys) {
        const at = configJoin(path, key);
        if (collect(spec.keys, key, at, issues) === INVALID) {
          ok = false;
          continue;
        }
        const r = collect(spec.values, value[key], at, issues);
        if (r === INVALID) ok = false;
        else out[key] = r;
      }
      return ok ? out : INVALID;
    }
    case 'object': {
      if (!isPlainObject(value)) return typeProblem();
      const before = issues.length;
      const names = namesOf(spec);
      for (const key of Object.keys(value)) {
        if (names.has(key)) continue;
        issues.push(
          spec.unknownKey?.(key, path) ??
            `${configJoin(path, key)}: unknown key; expected one of ${[...names].join(', ')}`,
        );
      }
      const out: Record<string, unknown> = {};
      for (const f of spec.fields) {
        const at = configJoin(path, f.name);
        if (!Object.hasOwn(value, f.name)) {
          if (f.required) issues.push(`${at}: ${f.missing ?? 'is required'}`);
          else if (f.default !== undefined) out[f.name] = structuredClone(f.default);
          continue;
        }
        const r = collect(f.spec, value[f.name], at, issues);
        if (r !== INVALID) out[f.name] = r;
      }
      if (issues.length > before) return INVALID;
      const parsed = spec.parse ? spec.parse(out) : out;
      for (const check of spec.checks ?? []) issues.push(...check(parsed as Record<string, unknown>, path));
      return issues.length > before ? INVALID : parsed;
    }
    case 'any':
      return spec.types && !spec.types.includes(jsonType(value) as never) ? typeProblem() : value;
  }
}

/** A value for a config-file message: "a list", "a mapping", "nothing", or short JSON. */
export function showConfig(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Config path join; keys that would not read as plain words are quoted: `clusters["a b"]`. */
export function configJoin(path: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}
