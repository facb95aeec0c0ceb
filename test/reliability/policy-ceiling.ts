/**
 * An independent reading of the guardrail policy file: the most access it can ever allow on a cluster,
 * checked against what EKS actually holds. It reads the raw YAML document and shares no code with
 * functions/core/policy.ts. Deliberately simple: namespace patterns must be a literal or a literal
 * followed by one `*` (all the sample policy uses); anything else throws rather than guess.
 */
import type { EntrySnapshot } from '../../infra/local/eks-emulator.js';

interface RawRule {
  allowedPolicies?: string[];
  scopeTypes?: string[];
  namespacePatterns?: string[];
  allowedAccounts?: string[];
  allowedGroups?: string[];
  allowedUsernames?: string[];
  maxDuration?: string;
  requireDuration?: boolean;
}
export interface RawPolicy {
  clusters: Record<string, { rules: Record<string, RawRule> }>;
}

const POLICY_PREFIX = 'arn:aws:eks::aws:cluster-access-policy/';

export class PolicyCeiling {
  constructor(
    private readonly doc: RawPolicy,
    /** The partition the clusters live in; account ids in the policy are accounts of this partition. */
    private readonly partition = 'aws',
  ) {}

  /**
   * Everything on `entry` that neither the policy nor the entry's `baseline` (access the principal had
   * before this system touched it) accounts for. Empty = no over-grant.
   */
  excess(clusterName: string, entry: EntrySnapshot, baseline?: EntrySnapshot): string[] {
    const rules = Object.entries(this.doc.clusters[clusterName]?.rules ?? {});
    const where = `${clusterName} ${entry.principalArn}`;
    const m = /^arn:([a-z-]+):iam::(\d{12}):(role|user)\/(?:.*\/)?([^/]+)$/.exec(entry.principalArn);
    const partition = m?.[1];
    const account = m?.[2];
    const applicable = rules.filter(
      ([, r]) =>
        partition === this.partition && account !== undefined && (r.allowedAccounts ?? []).includes(account),
    );
    const out: string[] = [];

    for (const p of entry.policies) {
      const name = p.policyArn.startsWith(POLICY_PREFIX)
        ? p.policyArn.slice(POLICY_PREFIX.length)
        : p.policyArn;
      const before = baseline?.policies.find((b) => b.policyArn === p.policyArn)?.accessScope;
      const allowing = applicable.filter(([, r]) =>
        (r.allowedPolicies ?? []).some((a) => a === name || a === p.policyArn),
      );
      if (p.accessScope.type === 'cluster') {
        const ok =
          before?.type === 'cluster' || allowing.some(([, r]) => (r.scopeTypes ?? []).includes('cluster'));
        if (!ok) out.push(`${where}: ${name} at cluster scope`);
        continue;
      }
      for (const ns of p.accessScope.namespaces) {
        const ok =
          before?.type === 'cluster' ||
          before?.namespaces.includes(ns) ||
          allowing.some(
            ([, r]) =>
              (r.scopeTypes ?? []).includes('namespace') &&
              (r.namespacePatterns ?? []).some((pattern) => namespaceCovered(pattern, ns)),
          );
        if (!ok) out.push(`${where}: ${name} in namespace ${ns}`);
      }
    }

    for (const g of entry.kubernetesGroups) {
      const ok =
        baseline?.kubernetesGroups.includes(g) ||
        (!g.toLowerCase().startsWith('system:') &&
          applicable.some(([, r]) => (r.allowedGroups ?? []).some((pattern) => globRegex(pattern).test(g))));
      if (!ok) out.push(`${where}: group ${g}`);
    }

    const expected = baseline?.username ?? defaultUsername(entry.principalArn);
    if (
      entry.username !== expected &&
      !applicable.some(([, r]) =>
        (r.allowedUsernames ?? []).some((pattern) => globRegex(pattern).test(entry.username)),
      )
    ) {
      out.push(`${where}: username ${entry.username}`);
    }
    if (entry.type !== (baseline?.type ?? 'STANDARD')) out.push(`${where}: type ${entry.type}`);
    return out;
  }

  /** Longest time a grant from `source` on `clusterName` may last, in ms (undefined = unbounded). */
  maxDurationMs(clusterName: string, source: string): number | undefined {
    const d = this.doc.clusters[clusterName]?.rules[source]?.maxDuration;
    if (d === undefined) return undefined;
    const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(d);
    if (!m) throw new Error(`policy-ceiling: cannot read maxDuration ${d}`);
    const [, days, hours, minutes, seconds] = m.map((v) => Number(v ?? 0));
    return ((((days ?? 0) * 24 + (hours ?? 0)) * 60 + (minutes ?? 0)) * 60 + (seconds ?? 0)) * 1000;
  }

  requiresDuration(clusterName: string, source: string): boolean {
    const rule = this.doc.clusters[clusterName]?.rules[source];
    return rule?.requireDuration === true || rule?.maxDuration !== undefined;
  }
}

/** EKS's username for an entry created without one. */
function defaultUsername(principalArn: string): string {
  const m = /^arn:([a-z-]+):iam::(\d{12}):(role|user)\/(?:.*\/)?([^/]+)$/.exec(principalArn);
  if (!m) return '';
  return m[3] === 'role'
    ? `arn:${m[1]}:sts::${m[2]}:assumed-role/${m[4]}/{{SessionName}}`
    : `arn:${m[1]}:iam::${m[2]}:user/${m[4]}`;
}

/** `team-*` covers `team-a` and the prefix `team-a-*`; a literal pattern covers only itself. */
function namespaceCovered(pattern: string, namespace: string): boolean {
  const star = pattern.indexOf('*');
  if (star !== -1 && star !== pattern.length - 1) {
    throw new Error(`policy-ceiling: namespace pattern ${pattern} is not a literal or a literal + '*'`);
  }
  const requestedPrefix = namespace.endsWith('*') ? namespace.slice(0, -1) : undefined;
  if (star === -1) return requestedPrefix === undefined && namespace === pattern;
  const literal = pattern.slice(0, -1);
  return (requestedPrefix ?? namespace).startsWith(literal);
}

function globRegex(pattern: string): RegExp {
  const escaped = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${escaped}$`, 's');
}
