/**
 * IAM as a second wall behind the guardrail policy (issue 9 item 7): compiles the policy file into the
 * EKS write permissions of each worker's role, at package time (the osls plugin's `${eksIam:<worker>}`).
 * Even a bug in the worker or a forged message that got past the sender binding cannot then associate
 * a policy, a scope, a namespace or a Kubernetes group that no rule of the worker's queue allows.
 *
 * Pure: (policy, options) → IAM statements; no AWS, no files.
 *
 * Condition keys, as the Service Authorization Reference for Amazon EKS defines them ("Actions,
 * resources, and condition keys for Amazon Elastic Kubernetes Service"; a key IAM does not know for an
 * action silently never matches, so each use below is one the reference lists for that action):
 *
 * | key                  | type          | actions it is listed for (of those used here)                  |
 * |----------------------|---------------|-----------------------------------------------------------------|
 * | eks:policyArn        | ARN           | AssociateAccessPolicy, DisassociateAccessPolicy                 |
 * | eks:accessScope      | String        | AssociateAccessPolicy, DisassociateAccessPolicy                 |
 * | eks:namespaces       | ArrayOfString | AssociateAccessPolicy, DisassociateAccessPolicy                 |
 * | eks:kubernetesGroups | ArrayOfString | CreateAccessEntry, UpdateAccessEntry (and the access-entry ops) |
 *
 * ARN keys take the Arn operators; ArrayOfString keys take a set operator: ForAllValues:StringLike
 * ("every requested namespace / group matches a pattern"), which is also true for an absent or empty
 * list (IAM User Guide, multivalued context keys), so a cluster-scope association or an entry without
 * groups passes it. StringLike's `*` is the policy file's glob (`*` only, validated by policy.ts), and
 * `?` cannot occur in a namespace or in a pattern the policy accepts.
 *
 * What the worker must still be able to do, and how it is kept possible:
 * - Restore a baseline. The desired state is baseline ∪ grants, and EKS holds one scope per policy,
 *   so a grant of View in team-b to a principal whose pre-existing View is in kube-system associates
 *   View with [kube-system, team-b], and its expiry re-associates [kube-system]. kube-system matches no
 *   rule, and IAM cannot know baselines: such a call is refused (AccessDenied, the request `failed`,
 *   nothing over-granted, the DLQ alarm fires). The `iamBaselineNamespaces` / `iamBaselineGroups`
 *   params add patterns for access that existed before this system (they widen only this wall, not
 *   the guardrail policy). Same for the groups an UpdateAccessEntry re-sends: read, merge, send all.
 * - Narrow a scope. A policy some rule allows cluster-wide may be associated in any namespaces too:
 *   a namespace scope is strictly less than the cluster scope of the same policy.
 * - End any grant this system can make on a cluster. Disassociate is allowed for every policy some
 *   rule of ANY source allows there, because the standard worker also ends break-glass grants whose
 *   expiry the reconciler found overdue (it re-queues them on the requests queue). Removing a policy
 *   no rule can grant (someone's pre-existing ClusterAdmin, say) stays refused.
 * Not conditioned: eks:username (UpdateAccessEntry re-sends the entry's current username, which may be
 * EKS's generated default), DeleteAccessEntry (drops the whole entry; the worker deletes only entries it
 * created, which IAM cannot tell apart), and the reads.
 */
import {
  GRANTING_SOURCES,
  type GrantingSource,
  type GuardrailPolicy,
  type SourceRule,
} from '../../functions/core/policy.js';

export type WorkerName = 'grantWorker' | 'breakGlassWorker';

/** The granting sources each worker's queue carries (C1 routing table; expiry/reconcile only revoke). */
export const WORKER_SOURCES: Readonly<Record<WorkerName, readonly GrantingSource[]>> = {
  grantWorker: ['ticket', 'iam-role-created', 'operator'],
  breakGlassWorker: ['break-glass', 'operator'],
};

/** Never on the standard worker, whatever a rule says (it also keeps an explicit Deny). */
export const CLUSTER_ADMIN = 'AmazonEKSClusterAdminPolicy';

export interface CompileIamOptions {
  /**
   * The clusters (policy aliases) the role manages: for a stage's own roles the `clusters` param, its
   * clusters in its own account; for a target role, the policy's clusters in other accounts.
   */
  clusters: readonly string[];
  /**
   * `home` (default): ARNs in the deploying stack's account (`${AWS::AccountId}`), and its region unless
   * the policy gives one. `target`: the cluster's own account and region, literally (a StackSet
   * instance's pseudo parameters are the target account's and the instance's region, not the
   * cluster's); a cluster without a region is in `deploymentRegion`.
   */
  scope?: 'home' | 'target';
  deploymentRegion?: string;
  /** Extra namespace patterns a re-sent scope may hold: access that predates this system. */
  baselineNamespaces?: readonly string[];
  /** Extra Kubernetes group patterns a re-sent group list may hold. */
  baselineGroups?: readonly string[];
}

export interface IamStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string | string[];
  Resource: unknown[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/**
 * Where an alias's cluster is, as IAM resource ARN parts (Fn::Sub text): the EKS name (default the alias),
 * and its account and region (see CompileIamOptions.scope).
 */
function locate(
  policy: GuardrailPolicy,
  alias: string,
  options: Pick<CompileIamOptions, 'scope' | 'deploymentRegion'>,
): { prefix: string; name: string } {
  const c = policy.clusters[alias];
  const name = c?.name ?? alias;
  if (options.scope === 'target') {
    const region = c?.region ?? options.deploymentRegion;
    if (!c?.account || !region) {
      throw new Error(
        `clusters.${alias}: a target role needs the cluster's account and region (give --region)`,
      );
    }
    return { prefix: `arn:\${AWS::Partition}:eks:${region}:${c.account}`, name };
  }
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Fn::Sub placeholders, filled in by CloudFormation.
  return { prefix: `arn:\${AWS::Partition}:eks:${c?.region ?? '${AWS::Region}'}:\${AWS::AccountId}`, name };
}

/** The IAM resource ARNs of clusters and of their access entries. */
export function clusterResourceArns(
  policy: GuardrailPolicy,
  options: Pick<CompileIamOptions, 'clusters' | 'scope' | 'deploymentRegion'>,
): { clusters: { 'Fn::Sub': string }[]; accessEntries: { 'Fn::Sub': string }[] } {
  const at = options.clusters.map((alias) => locate(policy, alias, options));
  return {
    clusters: at.map(({ prefix, name }) => ({ 'Fn::Sub': `${prefix}:cluster/${name}` })),
    // Access entry ARN: access-entry/<cluster>/<type>/<account>/<name>/<uuid>.
    accessEntries: at.map(({ prefix, name }) => ({ 'Fn::Sub': `${prefix}:access-entry/${name}/*` })),
  };
}

/** The target role each worker assumes in other accounts, after the stage prefix (infra/target-account.yml). */
export const TARGET_ROLE_SUFFIX = {
  grantWorker: 'target',
  breakGlassWorker: 'break-glass-target',
  reconciler: 'reconciler-target',
  // The operator CLI's read-only role (`access`, `plan` on clusters of other accounts).
  operator: 'operator-target',
} as const;

/** Accounts other than the deployment's that the policy names (clusters with an `account`). */
export function targetAccounts(policy: GuardrailPolicy): string[] {
  return sorted(Object.values(policy.clusters).flatMap((c) => (c.account ? [c.account] : [])));
}

/**
 * The worker's permission to assume its target role, only in the accounts the policy names; none when
 * it names none. (A role may assume a role of another account only when both its own policy and the
 * other role's trust policy allow it: this is the first half.)
 */
export function assumeTargetRoleStatements(
  policy: GuardrailPolicy,
  role: keyof typeof TARGET_ROLE_SUFFIX,
  stagePrefix: string,
): IamStatement[] {
  const accounts = targetAccounts(policy);
  if (accounts.length === 0) return [];
  return [
    {
      Sid: 'AssumeTargetRoles',
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Resource: accounts.map((a) => ({
        'Fn::Sub': `arn:\${AWS::Partition}:iam::${a}:role/${stagePrefix}-${TARGET_ROLE_SUFFIX[role]}`,
      })),
    },
  ];
}

/** eks:policyArn is an ARN key: ArnLike, with the partition left open (aws, aws-cn, aws-us-gov). */
const anyPartition = (arn: string) => arn.replace(/^arn:[^:]+:/, 'arn:*:');
const policyName = (arn: string) => arn.slice(arn.lastIndexOf('/') + 1);

/**
 * When nothing may be named: ForAllValues over [""] passes only an absent or empty list, since no
 * Kubernetes group or namespace is the empty string (EKS and the contract refuse it).
 */
const NOTHING = [''];

const sorted = (values: Iterable<string>) => [...new Set(values)].sort();

/**
 * The EKS write statements of one worker's role: AssociateAccessPolicy, DisassociateAccessPolicy,
 * CreateAccessEntry and UpdateAccessEntry, each only on the configured clusters and only with what the
 * guardrail policy allows there. Clusters with identical conditions share a statement, which keeps the
 * role under IAM's 10,240-character limit for inline policies as clusters are added.
 */
export function compileWorkerEksStatements(
  policy: GuardrailPolicy,
  worker: WorkerName,
  options: CompileIamOptions,
): IamStatement[] {
  const sources = WORKER_SOURCES[worker];
  const baselineNamespaces = options.baselineNamespaces ?? [];
  const baselineGroups = options.baselineGroups ?? [];
  // Statement body (without resources) → the clusters that share it.
  const shared = new Map<
    string,
    {
      sid: string;
      body: Omit<IamStatement, 'Sid' | 'Resource'>;
      clusters: string[];
      on: 'cluster' | 'entries';
    }
  >();
  const add = (
    sid: string,
    on: 'cluster' | 'entries',
    cluster: string,
    body: Omit<IamStatement, 'Sid' | 'Resource' | 'Effect'>,
  ) => {
    const full = { Effect: 'Allow' as const, ...body };
    const key = `${sid}|${on}|${JSON.stringify(full)}`;
    const entry = shared.get(key) ?? { sid, body: full, clusters: [], on };
    entry.clusters.push(cluster);
    shared.set(key, entry);
  };

  for (const cluster of sorted(options.clusters)) {
    const rulesOf = (list: readonly GrantingSource[]) =>
      list.flatMap((source) => {
        const rule = policy.clusters[cluster]?.rules[source];
        return rule ? [rule] : [];
      });
    const own = rulesOf(sources).map((rule) => withoutClusterAdminFor(worker, rule));

    // AssociateAccessPolicy: a policy allowed cluster-wide may take any scope; one allowed only in
    // namespaces, only in namespaces its rules' patterns (or the baseline patterns) cover.
    const clusterWide = sorted(
      own.filter((r) => r.scopeTypes.includes('cluster')).flatMap((r) => r.allowedPolicyArns),
    );
    if (clusterWide.length > 0) {
      add('AssociateClusterWidePolicies', 'entries', cluster, {
        Action: 'eks:AssociateAccessPolicy',
        Condition: { ArnLike: { 'eks:policyArn': clusterWide.map(anyPartition) } },
      });
    }
    const namespaced = new Map<string, Set<string>>();
    for (const rule of own.filter((r) => r.scopeTypes.includes('namespace'))) {
      for (const arn of rule.allowedPolicyArns.filter((a) => !clusterWide.includes(a))) {
        const patterns = namespaced.get(arn) ?? new Set(baselineNamespaces);
        for (const p of rule.namespacePatterns) patterns.add(p);
        namespaced.set(arn, patterns);
      }
    }
    // Policies with the same patterns share a statement.
    const byPatterns = new Map<string, string[]>();
    for (const [arn, patterns] of namespaced) {
      const key = JSON.stringify(sorted(patterns));
      byPatterns.set(key, [...(byPatterns.get(key) ?? []), arn]);
    }
    for (const [key, arns] of [...byPatterns].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const patterns = JSON.parse(key) as string[];
      add(`AssociateInNamespaces${sortedNames(arns)}`, 'entries', cluster, {
        Action: 'eks:AssociateAccessPolicy',
        Condition: {
          ArnLike: { 'eks:policyArn': sorted(arns).map(anyPartition) },
          StringEquals: { 'eks:accessScope': 'namespace' },
          'ForAllValues:StringLike': { 'eks:namespaces': patterns.length > 0 ? patterns : NOTHING },
        },
      });
    }

    // DisassociateAccessPolicy: whatever any source may grant on this cluster (see the header).
    const grantable = sorted(rulesOf(GRANTING_SOURCES).flatMap((r) => r.allowedPolicyArns));
    if (grantable.length > 0) {
      add('DisassociateGrantablePolicies', 'entries', cluster, {
        Action: 'eks:DisassociateAccessPolicy',
        Condition: { ArnLike: { 'eks:policyArn': grantable.map(anyPartition) } },
      });
    }

    // Create/UpdateAccessEntry: only groups the worker's rules (or the baseline patterns) allow; and not
    // at all on a cluster where this worker can grant nothing (it never needs an entry there).
    if (!own.some((r) => r.allowedPolicyArns.length > 0 || r.allowedGroups.length > 0)) continue;
    const groups = sorted([...own.flatMap((r) => r.allowedGroups), ...baselineGroups]);
    const groupCondition = {
      'ForAllValues:StringLike': { 'eks:kubernetesGroups': groups.length > 0 ? groups : NOTHING },
    };
    add('CreateEntriesWithAllowedGroups', 'cluster', cluster, {
      Action: 'eks:CreateAccessEntry',
      Condition: groupCondition,
    });
    add('UpdateEntriesWithAllowedGroups', 'entries', cluster, {
      Action: 'eks:UpdateAccessEntry',
      Condition: groupCondition,
    });
  }

  const statements: IamStatement[] = [];
  const sids = new Map<string, number>();
  for (const { sid, body, clusters, on } of shared.values()) {
    const n = (sids.get(sid) ?? 0) + 1;
    sids.set(sid, n);
    const arns = clusterResourceArns(policy, { ...options, clusters });
    statements.push({
      Sid: n === 1 ? sid : `${sid}${n}`,
      ...body,
      Resource: on === 'cluster' ? arns.clusters : arns.accessEntries,
    } as IamStatement);
  }
  return statements;
}

/** The standard worker's copy of a rule never names cluster admin, even if a rule did. */
function withoutClusterAdminFor(worker: WorkerName, rule: SourceRule): SourceRule {
  if (worker === 'breakGlassWorker') return rule;
  return {
    ...rule,
    allowedPolicyArns: rule.allowedPolicyArns.filter((a) => policyName(a) !== CLUSTER_ADMIN),
  };
}

/** A Sid suffix naming the policies (Sids are alphanumeric): AmazonEKSViewPolicy → View. */
function sortedNames(arns: readonly string[]): string {
  return sorted(
    arns.map((a) =>
      policyName(a)
        .replace(/^AmazonEKS/, '')
        .replace(/Policy$/, '')
        .replace(/[^A-Za-z0-9]/g, ''),
    ),
  ).join('');
}

/** IAM's limit for all inline policies of one role together, in characters without whitespace. */
export const INLINE_POLICY_LIMIT = 10_240;

/** Characters these statements add to a role's inline policies (IAM does not count whitespace). */
export function policySize(statements: readonly unknown[]): number {
  return JSON.stringify(statements).replace(/\s/g, '').length;
}

/** `a,b` (a --param) or a YAML list → trimmed, non-empty values. */
export function parseList(raw: unknown): string[] {
  const list = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(',') : [];
  return [...new Set(list.map((v) => v.trim()).filter(Boolean))];
}
