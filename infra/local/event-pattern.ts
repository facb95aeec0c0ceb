/**
 * EventBridge event patterns, the subset this stack's templates use: exact values, `prefix`, `anything-but`
 * (a value, a list, or `{prefix}`) and `exists`. Semantics from the EventBridge user guide, "Creating event
 * patterns" (eb-event-patterns) and "Comparison operators for use in event patterns" (eb-create-pattern-operators):
 * - every field of the pattern must match (AND); the values listed for a field are alternatives (OR);
 * - matching is exact and case-sensitive; a pattern `null` matches a null value, not a missing field;
 * - when the event's value is an array, the field matches if any element matches;
 * - `exists` works on leaf nodes only; `{exists: false}` matches a field that is absent;
 * - `anything-but` and `prefix` need the field to be present (a missing field is not "anything but").
 * An operator outside this subset throws when the pattern is compiled, so a template that starts using one
 * fails local mode loudly instead of routing differently from AWS.
 */

export type EventPattern = { [field: string]: EventPattern | readonly unknown[] };

type Leaf = string | number | boolean | null;
type LeafTest = (values: readonly Leaf[] | undefined) => boolean;
export type CompiledPattern = (event: unknown) => boolean;

export class EventPatternError extends Error {
  override name = 'EventPatternError';
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isLeaf = (v: unknown): v is Leaf =>
  v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** The leaf values an event holds at a field: undefined when absent or not a leaf (an object is not a leaf). */
function leafValues(value: unknown): Leaf[] | undefined {
  if (isLeaf(value)) return [value];
  if (Array.isArray(value)) {
    const leaves = value.filter(isLeaf);
    return leaves.length > 0 ? leaves : undefined;
  }
  return undefined;
}

function compileMatcher(matcher: unknown, path: string): LeafTest {
  if (isLeaf(matcher)) return (values) => values?.some((v) => v === matcher) ?? false;
  if (!isObject(matcher))
    throw new EventPatternError(`${path}: unsupported matcher ${JSON.stringify(matcher)}`);
  const keys = Object.keys(matcher);
  const [op] = keys;
  if (keys.length !== 1 || op === undefined)
    throw new EventPatternError(
      `${path}: a matcher object has exactly one operator, got ${JSON.stringify(matcher)}`,
    );
  const arg = matcher[op];
  switch (op) {
    case 'exists': {
      if (typeof arg !== 'boolean') throw new EventPatternError(`${path}: exists takes true or false`);
      return (values) => (values !== undefined) === arg;
    }
    case 'prefix': {
      if (typeof arg !== 'string') throw new EventPatternError(`${path}: prefix takes a string`);
      return (values) => values?.some((v) => typeof v === 'string' && v.startsWith(arg)) ?? false;
    }
    case 'anything-but': {
      if (isObject(arg)) {
        const prefix = arg.prefix;
        if (Object.keys(arg).length !== 1 || typeof prefix !== 'string')
          throw new EventPatternError(`${path}: anything-but supports a value, a list or {prefix} here`);
        return (values) => values?.some((v) => typeof v === 'string' && !v.startsWith(prefix)) ?? false;
      }
      const excluded: unknown[] = Array.isArray(arg) ? arg : [arg];
      if (!excluded.every((e) => typeof e === 'string' || typeof e === 'number'))
        throw new EventPatternError(`${path}: anything-but lists strings or numbers`);
      const set = new Set<unknown>(excluded);
      return (values) => values?.some((v) => !set.has(v)) ?? false;
    }
    default:
      throw new EventPatternError(`${path}: operator ${op} is not modelled by the local EventBridge`);
  }
}

function compileObject(pattern: Record<string, unknown>, path: string): CompiledPattern {
  const fields = Object.entries(pattern).map(([field, spec]): [string, (v: unknown) => boolean] => {
    const at = path ? `${path}.${field}` : field;
    if (Array.isArray(spec)) {
      if (spec.length === 0) throw new EventPatternError(`${at}: an empty list matches nothing`);
      const tests = spec.map((m) => compileMatcher(m, at));
      return [field, (value) => tests.some((t) => t(leafValues(value)))];
    }
    if (isObject(spec)) {
      const nested = compileObject(spec, at);
      return [field, (value) => nested(isObject(value) ? value : {})];
    }
    throw new EventPatternError(`${at}: a pattern field is an object or a list of matchers`);
  });
  return (event) => {
    const obj = isObject(event) ? event : {};
    return fields.every(([field, test]) => test(obj[field]));
  };
}

/** Validates the pattern once and returns the matcher; throws EventPatternError for what is not modelled. */
export function compilePattern(pattern: unknown): CompiledPattern {
  if (!isObject(pattern) || Object.keys(pattern).length === 0)
    throw new EventPatternError('an event pattern is a non-empty object');
  return compileObject(pattern, '');
}
