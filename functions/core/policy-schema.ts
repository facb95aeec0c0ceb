/**
 * The guardrail policy file, declared once (issue 11): field specs (functions/core/schema.ts) that
 * yield both the validator (every problem at once, each line starting with its policy path, one
 * ConfigError) and the JSON Schema published as events/schemas/guardrail-policy.v1.schema.json.
 *
 * Two readers come from these specs:
 * - `validateRulesPolicy` (here): version, clusters and rules, which is all the workers, the ticket
 *   intake and the reconciler use. `roleMappings` is accepted and not read: those bundles carry no
 *   role-mapping code. It is validated in full at packaging (infra/policy-file.ts) and at the
 *   cold start of the role-lifecycle intake, the only function that uses it.
 * - `validateGuardrailPolicy` (role-mapping-schema.ts): the whole document.
 */
import { ACCESS_POLICY_NAMES } from './access-policies.js';
import { ConfigError } from './errors.js';
import type { ApprovalRule, ClusterPolicy, GuardrailPolicy, SourceRule } from './policy.js';
import {
  type ArraySpec,
  type BooleanSpec,
  collect,
  configJoin,
  type FieldDef,
  INVALID,
  type ObjectSpec,
  type Spec,
  type StringSpec,
  showConfig,
} from './schema.js';
import { type ScopeType, SOURCES, type Source } from './types.js';

/**
 * Sources that can add access, hence can have a rule. `expiry` and `reconcile`
 * only converge EKS towards what the ledger already holds, which passed this
 * policy when it was granted, so a rule for them would mean nothing.
 */
export const GRANTING_SOURCES = [
  'ticket',
  'iam-role-created',
  'break-glass',
  'operator',
] as const satisfies readonly Source[];
export type GrantingSource = (typeof GRANTING_SOURCES)[number];

/** The code of every policy-file problem (the specs need one; ConfigError carries it). */
export const CODE = 'CONFIG_INVALID';

const PARTITION = '(?:aws|aws-cn|aws-us-gov)';
const POLICY_ARN_PREFIX = 'arn:aws:eks::aws:cluster-access-policy/';
const VALID_POLICIES = `valid: ${ACCESS_POLICY_NAMES.join(', ')} (or ${POLICY_ARN_PREFIX}<name>)`;

/** An access policy from the catalogue, by short name or full ARN; parsed to the ARN. */
export const accessPolicy: StringSpec = {
  kind: 'string',
  code: CODE,
  expected: `an EKS access policy, by short name or full ARN (${ACCESS_POLICY_NAMES.join(', ')})`,
  pattern: `^(?:arn:${PARTITION}:eks::aws:cluster-access-policy/)?(?:${ACCESS_POLICY_NAMES.join('|')})$`,
  explain: (v) =>
    typeof v === 'string'
      ? `unknown access policy ${showConfig(v)}; ${VALID_POLICIES}`
      : `must be a policy name; got ${showConfig(v)}; ${VALID_POLICIES}`,
  parse: (v) => (v.startsWith('arn:') ? v : `${POLICY_ARN_PREFIX}${v}`),
};

export const flag = (description: string): BooleanSpec => ({
  kind: 'boolean',
  code: CODE,
  expected: 'true or false',
  description,
});

/** A list read as a set: repeats are dropped, as the file means the same thing without them. */
export const listOf = (items: Spec, description: string, extra: Partial<ArraySpec> = {}): ArraySpec => ({
  kind: 'array',
  code: CODE,
  expected: 'a list',
  description,
  items,
  dedupe: true,
  ...extra,
});

export const string = (expected: string, extra: Partial<StringSpec> = {}): StringSpec => ({
  kind: 'string',
  code: CODE,
  expected,
  ...extra,
});

const optional = (name: string, spec: Spec, value?: unknown): FieldDef => ({
  name,
  required: false,
  spec,
  ...(value !== undefined && { default: value }),
});

// Days, hours, minutes, seconds only: years and months have no fixed length. Not `P` or `…T` alone.
const DURATION_PATTERN = String.raw`^P(?!$)(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$`;
const DURATION_PARTS = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Milliseconds of a duration DURATION_PATTERN accepts. */
export function durationMs(text: string): number {
  const [, days, hours, minutes, seconds] = DURATION_PARTS.exec(text) ?? [];
  const totalMinutes = (Number(days ?? 0) * 24 + Number(hours ?? 0)) * 60 + Number(minutes ?? 0);
  return totalMinutes * 60_000 + Math.round(Number(seconds ?? 0) * 1000);
}

const maxDuration = string('an ISO-8601 duration of the form PnDTnHnMnS', {
  description: 'The longest grant this rule allows; absent = permanent grants allowed.',
  pattern: DURATION_PATTERN,
  check: (v, path) =>
    durationMs(v) > 0
      ? undefined
      : { code: CODE, message: `${path}: must be longer than zero; got ${showConfig(v)}` },
});

/** EKS's rule for cluster names, which aliases follow too: requests carry them in `clusterName`. */
const CLUSTER_NAME_PATTERN = '^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$';
/** Region codes as AWS writes them: us-east-1, eu-west-1, ap-southeast-4, us-gov-west-1, cn-north-1. */
const REGION_PATTERN = '^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$';

const account = string('a 12-digit AWS account id, as a quoted string', {
  pattern: '^[0-9]{12}$',
  explain: (v) =>
    typeof v === 'number'
      ? // YAML reads an unquoted 012345678901 as the number 12345678901: the leading zero is gone.
        `${v} must be a quoted string of 12 digits (unquoted, YAML drops leading zeros)`
      : `${showConfig(v)} is not a 12-digit account id`,
});

const approvals: ObjectSpec = {
  kind: 'object',
  code: CODE,
  expected: 'a mapping { required, allowSelfApproval }',
  description: 'Absent: no approval needed.',
  fields: [
    {
      name: 'required',
      required: true,
      missing: 'is required (0 or more)',
      spec: {
        kind: 'integer',
        code: CODE,
        expected: 'a whole number ≥ 0',
        minimum: 0,
        description: 'Distinct approvers needed; 0 = none.',
      },
    },
    // Default false, so that raising `required` later cannot silently let requesters approve themselves.
    optional('allowSelfApproval', flag('Whether the requester counts towards `required`.'), false),
  ],
};

/** Rules that read stricter than they behave; run once every field of a rule is valid. */
function coherence(rule: Record<string, unknown>, path: string): string[] {
  const r = rule as unknown as SourceRule;
  const at = (key: string) => configJoin(path, key);
  const issues: string[] = [];
  const policies = r.allowedPolicyArns.length;
  if (policies > 0 && r.scopeTypes.length === 0) {
    issues.push(`${at('scopeTypes')}: is required when allowedPolicies is set (cluster, namespace)`);
  }
  if (policies === 0 && r.scopeTypes.length > 0) {
    issues.push(`${at('scopeTypes')}: only applies with allowedPolicies, which is empty`);
  }
  const namespaceScope = r.scopeTypes.includes('namespace');
  if (namespaceScope && r.namespacePatterns.length === 0) {
    issues.push(`${at('namespacePatterns')}: is required when scopeTypes includes namespace`);
  }
  if (!namespaceScope && r.namespacePatterns.length > 0) {
    issues.push(`${at('namespacePatterns')}: only applies when scopeTypes includes namespace`);
  }
  if (policies === 0 && r.allowedGroups.length === 0 && r.allowedUsernames.length === 0) {
    issues.push(`${path}: grants nothing; set allowedPolicies, allowedGroups or allowedUsernames`);
  }
  return issues;
}

/** One rule: what a source may grant on one cluster. Every list is an allow-list; empty = nothing. */
function ruleSpec(breakGlass: boolean): ObjectSpec {
  return {
    kind: 'object',
    code: CODE,
    expected: 'a mapping',
    ref: breakGlass ? 'breakGlassRule' : 'rule',
    description: `What requests from ${breakGlass ? 'break-glass' : 'this source'} may grant on this cluster. Every list is an allow-list; empty = nothing.`,
    fields: [
      optional('allowedPolicies', listOf(accessPolicy, 'Access policies, by short name or ARN.'), []),
      optional(
        'scopeTypes',
        listOf(
          string('cluster or namespace', { enum: ['cluster', 'namespace'] satisfies ScopeType[] }),
          'Required with allowedPolicies.',
        ),
        [],
      ),
      optional(
        'namespacePatterns',
        listOf(
          string("a namespace glob (lowercase letters, digits, '-', '*')", { pattern: '^[a-z0-9*-]{1,63}$' }),
          'Globs (`*` only) every requested namespace, or namespace prefix, must fall under.',
        ),
        [],
      ),
      {
        name: 'allowedAccounts',
        required: true,
        missing: 'is required (account ids whose principals may be granted)',
        spec: listOf(account, 'Account ids of the principals this rule may grant to.', {
          minItems: 1,
          tooFew: 'must list at least one account id',
        }),
      },
      optional(
        'allowedGroups',
        listOf(
          string('a non-empty Kubernetes group glob', {
            minLength: 1,
            forbidden: [
              {
                pattern: '^system:',
                code: CODE,
                message: (path, v) => `${path}: ${showConfig(v)}: EKS rejects system: groups`,
              },
            ],
          }),
          'Globs for kubernetesGroups; absent = no groups.',
        ),
        [],
      ),
      optional(
        'allowedUsernames',
        listOf(
          string('a non-empty username glob', { minLength: 1 }),
          'Globs for a custom username (RBAC can bind one); absent = the default username only.',
        ),
        [],
      ),
      breakGlass
        ? {
            name: 'maxDuration',
            required: true,
            missing: 'is required for break-glass, which must be time-boxed',
            spec: maxDuration,
          }
        : optional('maxDuration', maxDuration),
      optional('requireDuration', flag('A duration or expiresAt must be given.'), false),
      optional('approvals', approvals, { required: 0, allowSelfApproval: false } satisfies ApprovalRule),
      optional('requireIncidentId', flag('An incidentId must be given.'), false),
    ],
    checks: [coherence],
    parse: ({ allowedPolicies, maxDuration: max, ...rest }): SourceRule =>
      ({
        allowedPolicyArns: allowedPolicies,
        ...rest,
        ...(max !== undefined && { maxDuration: max, maxDurationMs: durationMs(max as string) }),
      }) as SourceRule,
  };
}

const STANDARD_RULE = ruleSpec(false);
const BREAK_GLASS_RULE = ruleSpec(true);

const RULES: ObjectSpec = {
  kind: 'object',
  code: CODE,
  expected: 'a mapping of source to rule',
  description: `Rules by request source (${GRANTING_SOURCES.join(', ')}); a source without a rule is denied.`,
  fields: GRANTING_SOURCES.map((source) =>
    optional(source, source === 'break-glass' ? BREAK_GLASS_RULE : STANDARD_RULE),
  ),
  unknownKey: (key, path) =>
    (SOURCES as readonly string[]).includes(key)
      ? `${configJoin(path, key)}: ${key} never grants access, so it takes no rule; rules apply to ${GRANTING_SOURCES.join(', ')}`
      : `${configJoin(path, key)}: unknown source; rules apply to ${GRANTING_SOURCES.join(', ')}`,
  // A prototype-free record: a caller indexing rules[source] cannot find Object.prototype members.
  parse: (rules) => Object.assign(Object.create(null), rules),
};

/** Checks across a cluster's fields, on the parsed cluster (role mappings against their rule). */
export type ClusterCheck = (cluster: ClusterPolicy, path: string) => readonly string[];

/**
 * The whole document, given how to read `roleMappings`: `undefined` accepts anything there and
 * leaves it out of the result (see the header).
 */
export function policySpec(roleMappings: Spec | undefined, checks: readonly ClusterCheck[] = []): ObjectSpec {
  const cluster: ObjectSpec = {
    kind: 'object',
    code: CODE,
    expected: 'a mapping with rules',
    fields: [
      // Fleet addressing (core/cluster-target.ts): the key is an alias requests name; these say where
      // the cluster is. Absent: the deployment's own account and region, and the alias as EKS name.
      optional(
        'name',
        string('a valid EKS cluster name', {
          pattern: CLUSTER_NAME_PATTERN,
          description: 'The EKS cluster name; default: the alias (the key).',
        }),
      ),
      optional('account', {
        ...account,
        description:
          "The cluster's account; default: the deployment's own. Needs the target role there (infra/target-account.yml).",
      }),
      optional(
        'region',
        string('an AWS region such as eu-west-1', {
          pattern: REGION_PATTERN,
          description: "The cluster's region; default: the deployment's own.",
        }),
      ),
      {
        name: 'rules',
        required: true,
        missing: 'is required (a mapping of source to rule; {} denies every grant)',
        spec: RULES,
      },
      optional(
        'roleMappings',
        roleMappings ?? {
          kind: 'any',
          code: CODE,
          expected: 'role mappings',
          description: 'Validated by the role-lifecycle intake and at packaging.',
        },
      ),
    ],
    checks: checks.map(
      (check) => (c: Record<string, unknown>, path: string) => check(c as unknown as ClusterPolicy, path),
    ),
    parse: ({ rules, roleMappings: mappings, name, account: accountId, region }) => ({
      ...(name !== undefined && { name }),
      ...(accountId !== undefined && { account: accountId }),
      ...(region !== undefined && { region }),
      rules,
      ...(roleMappings && mappings !== undefined && { roleMappings: mappings }),
    }),
  };
  return {
    kind: 'object',
    code: CODE,
    expected: 'a mapping with version and clusters',
    fields: [
      {
        name: 'version',
        required: true,
        checkFirst: true,
        missing: 'is required and must be 1',
        spec: { kind: 'integer', code: CODE, expected: '1', const: 1 },
      },
      {
        name: 'clusters',
        required: true,
        missing: 'is required (a mapping of cluster name to { rules })',
        spec: {
          kind: 'record',
          code: CODE,
          expected: 'a mapping of cluster alias to { rules }',
          description:
            'Clusters this system may touch, by alias (what requests name); any other cluster is denied.',
          keys: string('a valid EKS cluster name', { pattern: CLUSTER_NAME_PATTERN }),
          values: cluster,
        },
      },
    ],
  };
}

/** Reads a document against a policy spec: the frozen policy, or one ConfigError listing every problem. */
export function readPolicy(spec: ObjectSpec, raw: unknown): GuardrailPolicy {
  const issues: string[] = [];
  const policy = collect(spec, raw, '', issues);
  if (issues.length > 0 || policy === INVALID) throw new ConfigError(issues.join('\n'));
  return deepFreeze(policy as GuardrailPolicy);
}

const RULES_POLICY = policySpec(undefined);

/** The policy as the workers, the ticket intake and the reconciler need it: rules, not role mappings. */
export function validateRulesPolicy(raw: unknown): GuardrailPolicy {
  return readPolicy(RULES_POLICY, raw);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
