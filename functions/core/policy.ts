/**
 * The guardrail policy: which grants each cluster accepts, by request source.
 *
 * Deny by default: a cluster not listed, a source without a rule, or anything a
 * rule does not name is refused. `validatePolicy` turns the file (YAML in the
 * repo, JSON in the Lambda bundle) into a normalized, frozen object once per cold
 * start (the file's shape is declared in policy-schema.ts and role-mapping-schema.ts,
 * which also yield its JSON Schema); `decide` is a pure function of (policy, request,
 * now) run per request.
 */
import { canonicalIdentity } from './identity.js';
import type { GrantingSource } from './policy-schema.js';
import { validateGuardrailPolicy } from './role-mapping-schema.js';
import type { AccessRequest, Reason, ScopeType } from './types.js';

export { ACCESS_POLICY_NAMES, type AccessPolicyName } from './access-policies.js';
export { GRANTING_SOURCES, type GrantingSource } from './policy-schema.js';

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
  /**
   * Whether a tag value may name a namespace prefix (`team-*`), which covers every namespace created later
   * with that prefix. Default false: exact namespaces only.
   */
  readonly allowWildcardNamespaces: boolean;
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
  /**
   * IAM ARN globs (`*` only) of the identities whose CreateRole / TagRole may grant on this cluster,
   * matched against the CloudTrail caller (for a role session, the role that issued it). Empty: nobody
   * is trusted, so role events grant nothing here (revocations still apply).
   */
  readonly trustedCreators: readonly string[];
}

export interface ClusterPolicy {
  /** The EKS cluster name; absent = the alias (the policy key). */
  readonly name?: string;
  /** 12-digit account id of the cluster; absent = the deployment's own (core/cluster-target.ts). */
  readonly account?: string;
  /** The cluster's region; absent = the deployment's own. */
  readonly region?: string;
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

/**
 * Validates the raw policy document and returns its normalized, deeply frozen form. Collects every
 * problem (one per line, each starting with its path) so one deploy shows them all, then throws a
 * single ConfigError. Declared in policy-schema.ts and role-mapping-schema.ts, which also yield the
 * published JSON Schema.
 */
export function validatePolicy(raw: unknown): GuardrailPolicy {
  return validateGuardrailPolicy(raw);
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
  // Canonical identities (core/identity.ts): `Alice@Example.com ` cannot approve alice@example.com's request.
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

/** Defence in depth: the contract admits canonical identities only, but compare canonical forms anyway. */
function identity(who: string | undefined): string {
  return canonicalIdentity(who ?? '');
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

/** Own-property lookup: a cluster named `constructor` must not find Object.prototype.constructor. */
function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Path segment join; keys that would not read as plain words are quoted. */
function join(path: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}
