/**
 * The guardrail policy: which grants each cluster accepts, by request source.
 *
 * Deny by default: a cluster not listed, a source without a rule, or anything a
 * rule does not name is refused. `validatePolicy` turns the file (YAML in the
 * repo, JSON in the Lambda bundle) into a normalized, frozen object once per cold
 * start; `decide` is a pure function of (policy, request, now) run per request.
 */
import { ACCESS_POLICY_NAMES, isAccessPolicyName } from './access-policies.js';
import { ConfigError } from './errors.js';
import { type AccessRequest, type Reason, type ScopeType, SOURCES, type Source } from './types.js';

// The catalogue lives in access-policies.ts (contract C5); re-exported for existing importers.
export { ACCESS_POLICY_NAMES, type AccessPolicyName } from './access-policies.js';

const POLICY_ARN_RE = /^arn:(aws|aws-cn|aws-us-gov):eks::aws:cluster-access-policy\/(.+)$/;

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

export const POLICY_DENIED = 'POLICY_DENIED';
export const ALREADY_EXPIRED = 'ALREADY_EXPIRED';

export interface ApprovalRule {
  /** Distinct approvers needed; 0 = none. */
  readonly required: number;
  /** When false, the requester does not count towards `required`. */
  readonly allowSelfApproval: boolean;
}

/** One rule: what a source may grant on one cluster. Every list is an allow-list; empty = nothing. */
export interface SourceRule {
  /** Full policy ARNs. */
  readonly allowedPolicyArns: readonly string[];
  readonly scopeTypes: readonly ScopeType[];
  /** Globs (`*` only) every requested namespace, or namespace prefix, must fall under. */
  readonly namespacePatterns: readonly string[];
  /** 12-digit account ids of allowed principals. */
  readonly allowedAccounts: readonly string[];
  /** Globs for kubernetesGroups. */
  readonly allowedGroups: readonly string[];
  /** Globs for a custom username; a username can be bound by RBAC, so it is an allow-list too. */
  readonly allowedUsernames: readonly string[];
  /** As written in the file, for messages. Absent = permanent grants allowed. */
  readonly maxDuration?: string;
  readonly maxDurationMs?: number;
  readonly requireDuration: boolean;
  readonly approvals: ApprovalRule;
  readonly requireIncidentId: boolean;
}

/**
 * Role mappings: how an IAM role's tags and path turn into access on one cluster when CloudTrail reports
 * CreateRole, TagRole or UntagRole. What they produce is an `iam-role-created` request, which `decide`
 * still checks against that cluster's iam-role-created rule: a mapping never bypasses the guardrails.
 */
export interface RoleTagMapping {
  /** IAM tag key, e.g. `eks-access/dev`. IAM treats tag keys case-insensitively, and so do we. */
  readonly key: string;
  /**
   * Level name (lower case) → policy ARN. The tag value is `<level>` (cluster scope) or
   * `<level>:<namespace> <namespace>...`; IAM tag values cannot hold commas, so namespaces are separated
   * by spaces, `/` or `+`.
   */
  readonly levels: Readonly<Record<string, string>>;
}

export interface RolePathMapping {
  /** IAM path prefix, starting and ending with `/`, e.g. `/eks/dev/view/`. */
  readonly prefix: string;
  readonly policyArn: string;
  /** Absent: the policy applies at cluster scope. */
  readonly namespaces?: readonly string[];
}

export interface RoleMappings {
  readonly tags: readonly RoleTagMapping[];
  readonly paths: readonly RolePathMapping[];
}

export interface ClusterPolicy {
  readonly rules: Readonly<Partial<Record<GrantingSource, SourceRule>>>;
  /** Absent: CloudTrail IAM events grant nothing on this cluster (DeleteRole still revokes). */
  readonly roleMappings?: RoleMappings;
}

export interface GuardrailPolicy {
  readonly version: 1;
  readonly clusters: Readonly<Record<string, ClusterPolicy>>;
}

export type Decision =
  | { allowed: true; rule: string; expiresAt?: string }
  | { allowed: false; reason: Reason };

// ---------------------------------------------------------------------------------------------------------
// validatePolicy
// ---------------------------------------------------------------------------------------------------------

const TOP_KEYS = ['version', 'clusters'] as const;
const CLUSTER_KEYS = ['rules', 'roleMappings'] as const;
const ROLE_MAPPING_KEYS = ['tags', 'paths'] as const;
const TAG_MAPPING_KEYS = ['key', 'levels'] as const;
const PATH_MAPPING_KEYS = ['prefix', 'policy', 'namespaces'] as const;
const RULE_KEYS = [
  'allowedPolicies',
  'scopeTypes',
  'namespacePatterns',
  'allowedAccounts',
  'allowedGroups',
  'allowedUsernames',
  'maxDuration',
  'requireDuration',
  'approvals',
  'requireIncidentId',
] as const;
const APPROVAL_KEYS = ['required', 'allowSelfApproval'] as const;
const SCOPE_TYPES: readonly ScopeType[] = ['cluster', 'namespace'];

const CLUSTER_NAME_RE = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const ACCOUNT_RE = /^\d{12}$/;
const NAMESPACE_PATTERN_RE = /^[a-z0-9*-]{1,63}$/;
/** What IAM accepts in a tag key; `aws:` keys are reserved for AWS. */
const TAG_KEY_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const LEVEL_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** IAM paths: `/`, or `/`-delimited segments of printable ASCII, at most 512 characters. */
const IAM_PATH_RE = /^\/(?:[\x21-\x2E\x30-\x7E]+\/)*$/;
/** A namespace a mapping names: a DNS-1123 label, or a prefix ending in `*` as in requests. */
const MAPPED_NAMESPACE_RE = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?|[a-z0-9][-a-z0-9]{0,61}\*)$/;

/**
 * Validates the raw policy document and returns its normalized, deeply frozen form.
 * Collects every problem (one per line, each starting with its path) so one deploy
 * shows them all, then throws a single ConfigError.
 */
export function validatePolicy(raw: unknown): GuardrailPolicy {
  const issues: string[] = [];
  const policy = readPolicy(raw, issues);
  if (issues.length > 0 || policy === undefined) throw new ConfigError(issues.join('\n'));
  return deepFreeze(policy);
}

function readPolicy(raw: unknown, issues: string[]): GuardrailPolicy | undefined {
  if (!isRecord(raw)) {
    issues.push(`(root): must be a mapping with version and clusters; got ${show(raw)}`);
    return undefined;
  }
  checkKeys(raw, TOP_KEYS, '', issues);
  if (raw.version === undefined) issues.push('version: is required and must be 1');
  else if (raw.version !== 1) issues.push(`version: must be 1; got ${show(raw.version)}`);

  if (raw.clusters === undefined) {
    issues.push('clusters: is required (a mapping of cluster name to { rules })');
    return undefined;
  }
  if (!isRecord(raw.clusters)) {
    issues.push(`clusters: must be a mapping of cluster name to { rules }; got ${show(raw.clusters)}`);
    return undefined;
  }
  const clusters: [string, ClusterPolicy][] = [];
  for (const [name, value] of Object.entries(raw.clusters)) {
    const path = join('clusters', name);
    if (!CLUSTER_NAME_RE.test(name)) {
      issues.push(`${path}: ${JSON.stringify(name)} is not a valid EKS cluster name`);
      continue;
    }
    const cluster = readCluster(value, path, issues);
    if (cluster) clusters.push([name, cluster]);
  }
  return { version: 1, clusters: lookupTable(clusters) };
}

function readCluster(raw: unknown, path: string, issues: string[]): ClusterPolicy | undefined {
  if (!isRecord(raw)) {
    issues.push(`${path}: must be a mapping with rules; got ${show(raw)}`);
    return undefined;
  }
  checkKeys(raw, CLUSTER_KEYS, path, issues);
  const rulesPath = join(path, 'rules');
  if (raw.rules === undefined) {
    issues.push(`${rulesPath}: is required (a mapping of source to rule; {} denies every grant)`);
    return undefined;
  }
  if (!isRecord(raw.rules)) {
    issues.push(`${rulesPath}: must be a mapping of source to rule; got ${show(raw.rules)}`);
    return undefined;
  }
  const rules: [GrantingSource, SourceRule][] = [];
  for (const [source, value] of Object.entries(raw.rules)) {
    const rulePath = join(rulesPath, source);
    if (isGrantingSource(source)) {
      const rule = readRule(value, rulePath, source, issues);
      if (rule) rules.push([source, rule]);
    } else if ((SOURCES as readonly string[]).includes(source)) {
      issues.push(
        `${rulePath}: ${source} never grants access, so it takes no rule; rules apply to ${GRANTING_SOURCES.join(', ')}`,
      );
    } else {
      issues.push(`${rulePath}: unknown source; rules apply to ${GRANTING_SOURCES.join(', ')}`);
    }
  }
  const table = lookupTable(rules);
  if (raw.roleMappings === undefined) return { rules: table };
  const roleMappings = readRoleMappings(
    raw.roleMappings,
    join(path, 'roleMappings'),
    table,
    Object.hasOwn(raw.rules, 'iam-role-created'),
    rulesPath,
    issues,
  );
  return roleMappings ? { rules: table, roleMappings } : { rules: table };
}

function readRoleMappings(
  raw: unknown,
  path: string,
  rules: Partial<Record<GrantingSource, SourceRule>>,
  ruleWritten: boolean,
  rulesPath: string,
  issues: string[],
): RoleMappings | undefined {
  if (!isRecord(raw)) {
    issues.push(`${path}: must be a mapping with tags and/or paths; got ${show(raw)}`);
    return undefined;
  }
  const before = issues.length;
  checkKeys(raw, ROLE_MAPPING_KEYS, path, issues);
  const rule = own(rules, 'iam-role-created');
  const rulePath = join(rulesPath, 'iam-role-created');
  if (!(raw.tags === undefined && raw.paths === undefined) && !ruleWritten) {
    // A rule that is written but failed to read was reported already; only a missing one is news.
    issues.push(`${path}: needs ${rulePath}, which decides every grant a role mapping makes`);
  }
  const tags =
    readList(raw.tags, join(path, 'tags'), issues, (v, p) => readTagMapping(v, p, rule, rulePath, issues)) ??
    [];
  const seen = new Set<string>();
  tags.forEach((t, i) => {
    const key = t.key.toLowerCase();
    if (seen.has(key))
      issues.push(
        `${join(path, 'tags')}[${i}].key: ${show(t.key)} is listed twice (IAM tag keys ignore case)`,
      );
    seen.add(key);
  });
  const paths =
    readList(raw.paths, join(path, 'paths'), issues, (v, p) =>
      readPathMapping(v, p, rule, rulePath, issues),
    ) ?? [];
  if (issues.length > before) return undefined;
  return { tags, paths };
}

function readTagMapping(
  raw: unknown,
  path: string,
  rule: SourceRule | undefined,
  rulePath: string,
  issues: string[],
): RoleTagMapping | undefined {
  if (!isRecord(raw)) return fail(issues, path, `must be a mapping { key, levels }; got ${show(raw)}`);
  const before = issues.length;
  checkKeys(raw, TAG_MAPPING_KEYS, path, issues);
  const key = raw.key;
  if (typeof key !== 'string' || !TAG_KEY_RE.test(key)) {
    issues.push(
      `${join(path, 'key')}: ${show(key)} is not an IAM tag key (1–128 letters, digits, spaces, _ . : / = + - @)`,
    );
  } else if (key.toLowerCase().startsWith('aws:')) {
    issues.push(`${join(path, 'key')}: ${show(key)} uses the aws: prefix, which AWS reserves`);
  }
  const levels: [string, string][] = [];
  const levelsPath = join(path, 'levels');
  if (!isRecord(raw.levels) || Object.keys(raw.levels).length === 0) {
    issues.push(
      `${levelsPath}: must map at least one level name to an access policy, e.g. { view: AmazonEKSViewPolicy }`,
    );
  } else {
    for (const [level, value] of Object.entries(raw.levels)) {
      const at = join(levelsPath, level);
      if (!LEVEL_RE.test(level)) {
        issues.push(`${at}: level names are lower-case letters, digits, _ and -, at most 32 characters`);
        continue;
      }
      const policyArn = readPolicyArn(value, at, issues);
      if (policyArn === undefined) continue;
      checkMappedPolicy(policyArn, at, rule, rulePath, issues);
      levels.push([level, policyArn]);
    }
  }
  if (issues.length > before) return undefined;
  return { key: key as string, levels: lookupTable(levels) };
}

function readPathMapping(
  raw: unknown,
  path: string,
  rule: SourceRule | undefined,
  rulePath: string,
  issues: string[],
): RolePathMapping | undefined {
  if (!isRecord(raw))
    return fail(issues, path, `must be a mapping { prefix, policy, namespaces? }; got ${show(raw)}`);
  const before = issues.length;
  checkKeys(raw, PATH_MAPPING_KEYS, path, issues);
  const prefix = raw.prefix;
  if (typeof prefix !== 'string' || prefix.length > 512 || !IAM_PATH_RE.test(prefix) || prefix === '/') {
    issues.push(
      `${join(path, 'prefix')}: ${show(prefix)} is not an IAM path prefix such as /eks/dev/view/ ` +
        '(starts and ends with /, printable ASCII, not / alone, which every role has)',
    );
  }
  const policyArn =
    raw.policy === undefined
      ? fail(issues, join(path, 'policy'), 'is required')
      : readPolicyArn(raw.policy, join(path, 'policy'), issues);
  const namespaces = readList(raw.namespaces, join(path, 'namespaces'), issues, (v, p) =>
    typeof v === 'string' && MAPPED_NAMESPACE_RE.test(v)
      ? v
      : fail(issues, p, `${show(v)} is not a namespace (a DNS-1123 label, or a prefix ending in *)`),
  );
  if (Array.isArray(raw.namespaces) && raw.namespaces.length === 0) {
    issues.push(`${join(path, 'namespaces')}: must list at least one namespace; omit it for cluster scope`);
  }
  if (policyArn !== undefined) {
    checkMappedPolicy(policyArn, join(path, 'policy'), rule, rulePath, issues);
    const scope: ScopeType = namespaces === undefined ? 'cluster' : 'namespace';
    if (rule && !rule.scopeTypes.includes(scope)) {
      issues.push(
        `${path}: grants ${policyName(policyArn)} at ${scope} scope, which ${rulePath}.scopeTypes does not allow`,
      );
    }
    for (const ns of namespaces ?? []) {
      if (
        rule?.scopeTypes.includes('namespace') &&
        !rule.namespacePatterns.some((p) => patternCovers(p, ns))
      ) {
        issues.push(`${join(path, 'namespaces')}: ${ns} is not covered by ${rulePath}.namespacePatterns`);
      }
    }
  }
  if (issues.length > before) return undefined;
  return {
    prefix: prefix as string,
    policyArn: policyArn as string,
    ...(namespaces !== undefined && { namespaces }),
  };
}

/** A mapping that its own rule would always deny is a mistake worth failing the deploy for. */
function checkMappedPolicy(
  policyArn: string,
  path: string,
  rule: SourceRule | undefined,
  rulePath: string,
  issues: string[],
): void {
  if (rule && !rule.allowedPolicyArns.includes(policyArn)) {
    issues.push(
      `${path}: ${policyName(policyArn)} is not in ${rulePath}.allowedPolicies, so every grant would be denied`,
    );
  }
}

function readRule(
  raw: unknown,
  path: string,
  source: GrantingSource,
  issues: string[],
): SourceRule | undefined {
  if (!isRecord(raw)) {
    issues.push(`${path}: must be a mapping; got ${show(raw)}`);
    return undefined;
  }
  const before = issues.length;
  checkKeys(raw, RULE_KEYS, path, issues);
  const at = (key: string) => join(path, key);

  const allowedPolicyArns = readList(raw.allowedPolicies, at('allowedPolicies'), issues, readPolicyArn) ?? [];
  const scopeTypes = readList(raw.scopeTypes, at('scopeTypes'), issues, (v, p) =>
    SCOPE_TYPES.includes(v as ScopeType)
      ? (v as ScopeType)
      : fail(issues, p, `${show(v)} is not cluster or namespace`),
  );
  const namespacePatterns =
    readList(raw.namespacePatterns, at('namespacePatterns'), issues, (v, p) =>
      typeof v === 'string' && NAMESPACE_PATTERN_RE.test(v)
        ? v
        : fail(issues, p, `${show(v)} is not a namespace glob (lowercase letters, digits, '-', '*')`),
    ) ?? [];
  const allowedAccounts = readList(raw.allowedAccounts, at('allowedAccounts'), issues, readAccount) ?? [];
  const allowedGroups =
    readList(raw.allowedGroups, at('allowedGroups'), issues, (v, p) =>
      typeof v !== 'string' || v === ''
        ? fail(issues, p, `must be a non-empty string; got ${show(v)}`)
        : v.startsWith('system:')
          ? fail(issues, p, `${show(v)}: EKS rejects system: groups`)
          : v,
    ) ?? [];
  const allowedUsernames =
    readList(raw.allowedUsernames, at('allowedUsernames'), issues, (v, p) =>
      typeof v === 'string' && v !== '' ? v : fail(issues, p, `must be a non-empty string; got ${show(v)}`),
    ) ?? [];

  let maxDurationMs: number | undefined;
  const maxDuration = raw.maxDuration;
  if (maxDuration !== undefined) {
    const ms = typeof maxDuration === 'string' ? parseDurationMs(maxDuration) : undefined;
    if (ms === undefined || typeof maxDuration !== 'string') {
      issues.push(
        `${at('maxDuration')}: ${show(maxDuration)} is not an ISO-8601 duration of the form PnDTnHnMnS`,
      );
    } else if (ms <= 0) {
      issues.push(`${at('maxDuration')}: must be longer than zero; got ${show(maxDuration)}`);
    } else {
      maxDurationMs = ms;
    }
  }
  const requireDuration = readBoolean(raw.requireDuration, at('requireDuration'), issues);
  const requireIncidentId = readBoolean(raw.requireIncidentId, at('requireIncidentId'), issues);
  const approvals = readApprovals(raw.approvals, at('approvals'), issues);

  // Required fields, reported even when other fields are broken.
  if (raw.allowedAccounts === undefined) {
    issues.push(`${at('allowedAccounts')}: is required (account ids whose principals may be granted)`);
  } else if (Array.isArray(raw.allowedAccounts) && raw.allowedAccounts.length === 0) {
    issues.push(`${at('allowedAccounts')}: must list at least one account id`);
  }
  if (source === 'break-glass' && maxDuration === undefined) {
    issues.push(`${at('maxDuration')}: is required for break-glass, which must be time-boxed`);
  }
  if (issues.length > before) return undefined;

  // Coherence, once every field parsed: each catches a rule that reads stricter than it behaves.
  if (allowedPolicyArns.length > 0 && (scopeTypes === undefined || scopeTypes.length === 0)) {
    issues.push(`${at('scopeTypes')}: is required when allowedPolicies is set (cluster, namespace)`);
  }
  if (allowedPolicyArns.length === 0 && scopeTypes !== undefined && scopeTypes.length > 0) {
    issues.push(`${at('scopeTypes')}: only applies with allowedPolicies, which is empty`);
  }
  const namespaceScope = scopeTypes?.includes('namespace') ?? false;
  if (namespaceScope && namespacePatterns.length === 0) {
    issues.push(`${at('namespacePatterns')}: is required when scopeTypes includes namespace`);
  }
  if (!namespaceScope && namespacePatterns.length > 0) {
    issues.push(`${at('namespacePatterns')}: only applies when scopeTypes includes namespace`);
  }
  if (allowedPolicyArns.length === 0 && allowedGroups.length === 0 && allowedUsernames.length === 0) {
    issues.push(`${path}: grants nothing; set allowedPolicies, allowedGroups or allowedUsernames`);
  }
  if (issues.length > before) return undefined;

  return {
    allowedPolicyArns,
    scopeTypes: scopeTypes ?? [],
    namespacePatterns,
    allowedAccounts,
    allowedGroups,
    allowedUsernames,
    ...(maxDurationMs !== undefined && { maxDuration: maxDuration as string, maxDurationMs }),
    requireDuration,
    approvals,
    requireIncidentId,
  };
}

function readApprovals(raw: unknown, path: string, issues: string[]): ApprovalRule {
  // Absent: no approval needed. allowSelfApproval defaults to false so that raising
  // `required` later cannot silently let requesters approve themselves.
  const none: ApprovalRule = { required: 0, allowSelfApproval: false };
  if (raw === undefined) return none;
  if (!isRecord(raw)) {
    issues.push(`${path}: must be a mapping { required, allowSelfApproval }; got ${show(raw)}`);
    return none;
  }
  checkKeys(raw, APPROVAL_KEYS, path, issues);
  const required = raw.required;
  if (required === undefined) issues.push(`${join(path, 'required')}: is required (0 or more)`);
  else if (typeof required !== 'number' || !Number.isInteger(required) || required < 0) {
    issues.push(`${join(path, 'required')}: must be a whole number ≥ 0; got ${show(required)}`);
  }
  return {
    required: typeof required === 'number' && Number.isInteger(required) && required >= 0 ? required : 0,
    allowSelfApproval: readBoolean(raw.allowSelfApproval, join(path, 'allowSelfApproval'), issues),
  };
}

function readPolicyArn(value: unknown, path: string, issues: string[]): string | undefined {
  const valid = `valid: ${ACCESS_POLICY_NAMES.join(', ')} (or arn:aws:eks::aws:cluster-access-policy/<name>)`;
  if (typeof value !== 'string')
    return fail(issues, path, `must be a policy name; got ${show(value)}; ${valid}`);
  const match = POLICY_ARN_RE.exec(value);
  const name = match ? match[2] : value;
  if (!isAccessPolicyName(name)) return fail(issues, path, `unknown access policy ${show(value)}; ${valid}`);
  return match ? value : `arn:aws:eks::aws:cluster-access-policy/${name}`;
}

function readAccount(value: unknown, path: string, issues: string[]): string | undefined {
  if (typeof value === 'string' && ACCOUNT_RE.test(value)) return value;
  if (typeof value === 'number') {
    // YAML reads an unquoted 012345678901 as the number 12345678901: the leading zero is gone.
    return fail(
      issues,
      path,
      `${value} must be a quoted string of 12 digits (unquoted, YAML drops leading zeros)`,
    );
  }
  return fail(issues, path, `${show(value)} is not a 12-digit account id`);
}

function readBoolean(value: unknown, path: string, issues: string[]): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  issues.push(`${path}: must be true or false; got ${show(value)}`);
  return false;
}

function readList<T>(
  value: unknown,
  path: string,
  issues: string[],
  item: (v: unknown, p: string, issues: string[]) => T | undefined,
): T[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    issues.push(`${path}: must be a list; got ${show(value)}`);
    return undefined;
  }
  const out: T[] = [];
  value.forEach((v, i) => {
    const parsed = item(v, `${path}[${i}]`, issues);
    if (parsed !== undefined && !out.includes(parsed)) out.push(parsed);
  });
  return out;
}

function checkKeys(
  raw: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
  issues: string[],
): void {
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key))
      issues.push(`${join(path, key)}: unknown key; expected one of ${allowed.join(', ')}`);
  }
}

function fail(issues: string[], path: string, message: string): undefined {
  issues.push(`${path}: ${message}`);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// decide
// ---------------------------------------------------------------------------------------------------------

const PRINCIPAL_ACCOUNT_RE = /^arn:([a-z-]+):iam::(\d{12}):/;

/**
 * Decides one request against the policy. Grants are checked in full; revokes
 * (and expiry/reconcile messages, which carry no access of their own) only need
 * the cluster to be ours, since they can only remove what this system granted.
 */
export function decide(policy: GuardrailPolicy, request: AccessRequest, now: Date): Decision {
  const clusterPath = join('clusters', request.clusterName);
  const cluster = own(policy.clusters, request.clusterName);
  if (!cluster) {
    return deny(
      clusterPath,
      `cluster ${request.clusterName} is not in the guardrail policy (deny by default)`,
    );
  }
  if (request.action === 'revoke') return { allowed: true, rule: clusterPath };
  if (request.source === 'expiry' || request.source === 'reconcile') {
    // Defence in depth: these sources only replay the ledger, so one that names access is forged or buggy.
    if (carriesAccess(request)) {
      return deny(clusterPath, `source ${request.source} cannot add access; it only acts on existing grants`);
    }
    return { allowed: true, rule: clusterPath };
  }

  const rulePath = join(join(clusterPath, 'rules'), request.source);
  const rule = own(cluster.rules as Record<string, SourceRule>, request.source);
  if (!rule) {
    return deny(
      rulePath,
      `no rule for source ${request.source} on cluster ${request.clusterName} (deny by default)`,
    );
  }
  return decideGrant(rule, rulePath, request, now);
}

function decideGrant(rule: SourceRule, path: string, request: AccessRequest, now: Date): Decision {
  const at = (key: string) => join(path, key);

  const [, partition, account] = PRINCIPAL_ACCOUNT_RE.exec(request.principalArn) ?? [];
  if (account === undefined || partition === undefined) {
    return deny(at('allowedAccounts'), `cannot read an account id from principalArn ${request.principalArn}`);
  }
  // An account id is only unique within a partition: 111122223333 in aws-cn is someone else.
  const partitions = new Set(rule.allowedPolicyArns.map((arn) => arn.split(':')[1] ?? 'aws'));
  if (partitions.size === 0) partitions.add('aws');
  if (!partitions.has(partition)) {
    return deny(
      at('allowedAccounts'),
      `principal is in partition ${partition}; this rule grants only in ${listed([...partitions])}`,
    );
  }
  if (!rule.allowedAccounts.includes(account)) {
    return deny(
      at('allowedAccounts'),
      `principal account ${account} is not allowed; allowed: ${listed(rule.allowedAccounts)}`,
    );
  }

  for (const { policyArn, accessScope } of request.accessPolicies ?? []) {
    if (!rule.allowedPolicyArns.includes(policyArn)) {
      return deny(
        at('allowedPolicies'),
        `${policyArn} is not allowed; allowed: ${listed(rule.allowedPolicyArns.map(policyName))}`,
      );
    }
    if (!rule.scopeTypes.includes(accessScope.type)) {
      return deny(
        at('scopeTypes'),
        `${policyName(policyArn)} at ${accessScope.type} scope is not allowed; allowed scope types: ${listed(rule.scopeTypes)}`,
      );
    }
    if (accessScope.type !== 'namespace') continue;
    const namespaces = accessScope.namespaces ?? [];
    if (namespaces.length === 0) {
      return deny(at('namespacePatterns'), `${policyName(policyArn)} at namespace scope names no namespaces`);
    }
    for (const namespace of namespaces) {
      if (rule.namespacePatterns.some((pattern) => patternCovers(pattern, namespace))) continue;
      const patterns = listed(rule.namespacePatterns);
      return deny(
        at('namespacePatterns'),
        namespace.endsWith('*')
          ? `namespace prefix ${namespace} is not covered by ${patterns}: it also matches namespaces no pattern allows`
          : `namespace ${namespace} matches none of ${patterns}`,
      );
    }
  }

  for (const group of request.kubernetesGroups ?? []) {
    // EKS rejects these anyway; a `*` pattern must not make them look allowed.
    if (group.startsWith('system:') || !rule.allowedGroups.some((pattern) => globMatches(pattern, group))) {
      return deny(
        at('allowedGroups'),
        `group ${group} is not allowed; allowed: ${listed(rule.allowedGroups)}`,
      );
    }
  }

  const { username } = request;
  if (username !== undefined && !rule.allowedUsernames.some((pattern) => globMatches(pattern, username))) {
    return deny(
      at('allowedUsernames'),
      `username ${username} is not allowed; allowed: ${listed(rule.allowedUsernames)}`,
    );
  }

  const expiry = resolveExpiry(rule, path, request, now);
  if ('allowed' in expiry) return expiry;

  const approvalDenied = checkApprovals(rule.approvals, at('approvals'), request);
  if (approvalDenied) return approvalDenied;

  if (rule.requireIncidentId && !request.incidentId?.trim()) {
    return deny(at('requireIncidentId'), 'an incidentId is required');
  }

  return {
    allowed: true,
    rule: path,
    ...(expiry.expiresAt !== undefined && { expiresAt: expiry.expiresAt }),
  };
}

/** Works out when the grant ends, and whether the rule accepts that. */
function resolveExpiry(
  rule: SourceRule,
  path: string,
  request: AccessRequest,
  now: Date,
): Decision | { expiresAt?: string } {
  const { duration, expiresAt } = request;
  let durationMs: number | undefined;
  let requested = '';
  let end: number | undefined;

  if (duration !== undefined && expiresAt !== undefined) {
    return deny(path, 'duration and expiresAt are mutually exclusive; send one');
  }
  if (duration !== undefined) {
    durationMs = parseDurationMs(duration);
    if (durationMs === undefined)
      return deny(path, `duration ${JSON.stringify(duration)} is not an ISO-8601 duration`);
    if (durationMs <= 0) return deny(path, `duration ${duration} grants no time`);
    end = now.getTime() + durationMs;
    requested = `duration ${duration}`;
  } else if (expiresAt !== undefined) {
    end = Date.parse(expiresAt);
    if (Number.isNaN(end))
      return deny(path, `expiresAt ${JSON.stringify(expiresAt)} is not an ISO-8601 instant`);
    if (end <= now.getTime()) {
      return {
        allowed: false,
        reason: {
          code: ALREADY_EXPIRED,
          message: `${path}: expiresAt ${expiresAt} is not after now (${now.toISOString()}); the grant would end before it starts`,
        },
      };
    }
    durationMs = end - now.getTime();
    requested = `expiresAt ${expiresAt} (${formatDuration(durationMs)} from now)`;
  }

  if (durationMs === undefined || end === undefined) {
    if (rule.requireDuration)
      return deny(join(path, 'requireDuration'), 'a duration or expiresAt is required');
    if (rule.maxDuration !== undefined) {
      // A time-boxed rule must not be satisfiable by asking for no box at all.
      return deny(
        join(path, 'maxDuration'),
        `a permanent grant is not allowed; ask for at most ${rule.maxDuration}`,
      );
    }
    return {};
  }
  if (rule.maxDurationMs !== undefined && durationMs > rule.maxDurationMs) {
    return deny(join(path, 'maxDuration'), `${requested} exceeds the maximum ${rule.maxDuration}`);
  }
  return { expiresAt: new Date(end).toISOString() };
}

function checkApprovals(approvals: ApprovalRule, path: string, request: AccessRequest): Decision | undefined {
  const { required, allowSelfApproval } = approvals;
  if (required === 0) return undefined;
  const requester = identity(request.requestedBy);
  const got = `got approvedBy=[${(request.approvedBy ?? []).join(', ')}]${
    request.requestedBy === undefined ? '' : ` from requestedBy=${request.requestedBy}`
  }`;
  if (!allowSelfApproval && requester === '') {
    return deny(path, `requestedBy is required to tell approvers from the requester; ${got}`);
  }
  // Compared case-insensitively and trimmed, so `Alice@Example.com ` cannot approve alice's own request.
  const approvers = new Set((request.approvedBy ?? []).map(identity).filter((a) => a !== ''));
  if (!allowSelfApproval) approvers.delete(requester);
  if (approvers.size >= required) return undefined;
  const needed = allowSelfApproval
    ? `${required} approval${required === 1 ? ' is' : 's are'} required`
    : required === 1
      ? '1 approval by someone other than the requester is required'
      : `${required} approvals by people other than the requester are required`;
  return deny(path, `${needed}; ${got}`);
}

function carriesAccess(request: AccessRequest): boolean {
  return (
    (request.accessPolicies?.length ?? 0) > 0 ||
    (request.kubernetesGroups?.length ?? 0) > 0 ||
    request.username !== undefined
  );
}

function identity(who: string | undefined): string {
  return (who ?? '').trim().toLowerCase();
}

function deny(path: string, message: string): Decision {
  return { allowed: false, reason: { code: POLICY_DENIED, message: `${path}: ${message}` } };
}

// ---------------------------------------------------------------------------------------------------------
// globs
// ---------------------------------------------------------------------------------------------------------

/**
 * Glob match where `*` matches any run of characters (including none) and nothing
 * else is special. Two pointers with one backtrack point: linear-ish time, no
 * regex to escape and no catastrophic backtracking on many-star patterns.
 */
export function globMatches(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Whether a namespace pattern allows a requested namespace. A literal must match
 * the glob. A prefix `p*` names every namespace starting with p, including ones
 * created later, so the pattern must allow all of them: it must end in `*` (else
 * a longer name escapes its fixed tail) and allow p itself, the shortest of them;
 * then the trailing `*` absorbs any suffix. So `team-*` covers `team-a*`, but
 * `team-a*` does not cover `team-*`, and `*` covers everything.
 */
export function patternCovers(pattern: string, namespace: string): boolean {
  const star = namespace.indexOf('*');
  if (star === -1) return globMatches(pattern, namespace);
  // EKS only understands a single trailing `*`; anything else is not a request we can reason about.
  if (star !== namespace.length - 1) return false;
  return pattern.endsWith('*') && globMatches(pattern, namespace.slice(0, -1));
}

// ---------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------

// TODO(request.ts): replace with parseIsoDuration from functions/core/request.ts once it lands (dedupe).
// Days, hours, minutes, seconds only: years and months have no fixed length.
const DURATION_RE = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
function parseDurationMs(text: string): number | undefined {
  const match = DURATION_RE.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) return undefined;
  const [, days, hours, minutes, seconds] = match;
  const totalMinutes = (Number(days ?? 0) * 24 + Number(hours ?? 0)) * 60 + Number(minutes ?? 0);
  return totalMinutes * 60_000 + Math.round(Number(seconds ?? 0) * 1000);
}

/** ms → ISO-8601 duration for messages, rounded up to the second so an excess never prints as equal. */
function formatDuration(ms: number): string {
  let rest = Math.ceil(ms / 1000);
  const days = Math.floor(rest / 86_400);
  rest -= days * 86_400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  const time = `${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}${seconds ? `${seconds}S` : ''}`;
  if (days === 0 && time === '') return 'PT0S';
  return `P${days ? `${days}D` : ''}${time ? `T${time}` : ''}`;
}

function policyName(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

function listed(items: readonly string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

function isGrantingSource(source: string): source is GrantingSource {
  return (GRANTING_SOURCES as readonly string[]).includes(source);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A prototype-free record, so a caller indexing `clusters[name]` directly cannot
 * find `Object.prototype.constructor` for a cluster named `constructor`.
 */
function lookupTable<K extends string, V>(entries: [K, V][]): Record<K, V> {
  return Object.assign(Object.create(null) as Record<K, V>, Object.fromEntries(entries));
}

/** Own-property lookup: a cluster named `constructor` must not find Object.prototype.constructor. */
function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Path segment join; keys that would not read as plain words are quoted. */
function join(path: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
