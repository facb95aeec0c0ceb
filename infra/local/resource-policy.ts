/**
 * Resource-policy statements as the local emulators enforce them: enough of IAM's evaluation for the Deny
 * statements this stack's templates put on its audit bus. Within one account an identity policy that allows
 * the action is enough on its own (IAM user guide, "Policy evaluation logic": same-account requests need an
 * Allow in either policy), so only an explicit Deny in a resource policy can refuse a caller; the local model
 * takes every caller's identity policy to allow the action (the threat model's "anyone allowed
 * events:PutEvents") and evaluates Deny statements only.
 *
 * Condition operators (IAM user guide, "IAM JSON policy elements: Condition operators"): String(Not)Equals,
 * String(Not)Like, Arn(Not)Equals, Arn(Not)Like, each optionally qualified by ForAnyValue: / ForAllValues:.
 * Several operators, or several keys under one, must all hold; the values listed for one key are
 * alternatives. A key missing from the request context fails a positive operator and satisfies a negated
 * one; ForAnyValue over a missing key is false, ForAllValues true. Anything else throws when the statement
 * is compiled, so a template change the model does not understand fails loudly.
 */

export type ConditionContext = Readonly<Record<string, readonly string[]>>;

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal: unknown;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export class ResourcePolicyError extends Error {
  override name = 'ResourcePolicyError';
}

/** IAM wildcards: `*` any run of characters, `?` one character. */
function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  );
  return re.test(value);
}

/** ArnEquals and ArnLike alike compare each of the six colon-separated parts on its own, with wildcards. */
function arnMatch(pattern: string, value: string): boolean {
  const split = (arn: string): string[] => {
    const parts = arn.split(':');
    return parts.length < 6 ? parts : [...parts.slice(0, 5), parts.slice(5).join(':')];
  };
  const p = split(pattern);
  const v = split(value);
  return p.length === 6 && v.length === 6 && p.every((part, i) => globMatch(part, v[i] ?? ''));
}

const BASE_OPERATORS: Record<
  string,
  { match: (policy: string, value: string) => boolean; negated: boolean }
> = {
  StringEquals: { match: (p, v) => p === v, negated: false },
  StringNotEquals: { match: (p, v) => p === v, negated: true },
  StringLike: { match: globMatch, negated: false },
  StringNotLike: { match: globMatch, negated: true },
  ArnEquals: { match: arnMatch, negated: false },
  ArnNotEquals: { match: arnMatch, negated: true },
  ArnLike: { match: arnMatch, negated: false },
  ArnNotLike: { match: arnMatch, negated: true },
};

type Test = (context: ConditionContext) => boolean;

function compileCondition(operator: string, key: string, policyValues: string[]): Test {
  const [qualifier, base] = operator.includes(':') ? operator.split(':', 2) : [undefined, operator];
  const op = BASE_OPERATORS[base ?? ''];
  if (!op || (qualifier !== undefined && qualifier !== 'ForAnyValue' && qualifier !== 'ForAllValues'))
    throw new ResourcePolicyError(`condition operator ${operator} is not modelled locally`);
  // One context value against the listed policy values: for a negated operator, "matches none of them".
  const one = (value: string): boolean => {
    const hit = policyValues.some((p) => op.match(p, value));
    return op.negated ? !hit : hit;
  };
  return (context) => {
    // Condition keys are case-insensitive (IAM user guide, "Condition element").
    const values = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
    if (values === undefined || values.length === 0) {
      if (qualifier === 'ForAnyValue') return false;
      if (qualifier === 'ForAllValues') return true;
      return op.negated;
    }
    if (qualifier === 'ForAllValues') return values.every(one);
    return values.some(one);
  };
}

const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

export interface CompiledStatement {
  sid: string | undefined;
  effect: 'Allow' | 'Deny';
  /** Whether the statement applies to this action on this resource for this request context. */
  applies(action: string, resource: string, context: ConditionContext): boolean;
}

export function compileStatement(statement: PolicyStatement): CompiledStatement {
  const principal = statement.Principal;
  const everyone =
    principal === '*' ||
    (typeof principal === 'object' && principal !== null && (principal as { AWS?: unknown }).AWS === '*');
  if (!everyone) throw new ResourcePolicyError('only Principal "*" is modelled locally');
  const actions = list(statement.Action);
  const resources = list(statement.Resource);
  for (const v of [...actions, ...resources])
    if (typeof v !== 'string') throw new ResourcePolicyError(`unresolved value ${JSON.stringify(v)}`);
  const tests: Test[] = Object.entries(statement.Condition ?? {}).flatMap(([operator, keys]) =>
    Object.entries(keys).map(([key, values]) => {
      const resolved = list(values);
      if (!resolved.every((v) => typeof v === 'string'))
        throw new ResourcePolicyError(`unresolved condition value under ${operator} ${key}`);
      return compileCondition(operator, key, resolved);
    }),
  );
  return {
    sid: statement.Sid,
    effect: statement.Effect,
    applies: (action, resource, context) =>
      actions.some((a) => globMatch(a.toLowerCase(), action.toLowerCase())) &&
      resources.some((r) => r === '*' || arnMatch(r, resource)) &&
      tests.every((t) => t(context)),
  };
}

/** The first Deny statement that applies, if any: an explicit deny wins over every Allow. */
export function explicitDeny(
  statements: readonly CompiledStatement[],
  action: string,
  resource: string,
  context: ConditionContext,
): CompiledStatement | undefined {
  return statements.find((s) => s.effect === 'Deny' && s.applies(action, resource, context));
}
