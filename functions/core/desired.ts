/**
 * Desired access = baseline ∪ every active grant, restricted to what this system
 * manages. Only policies and groups that some grant (active or ended) ever named are
 * "managed": everything else on the entry belongs to someone else and is never
 * touched, which is how nothing gets revoked that we did not grant.
 */
import { type Grant, isActive, normalizePolicy, type PrincipalRecord } from './ledger.js';
import { type AccessScope, type AccessState, MANAGED_TAG_KEY, type PolicyAssociation } from './types.js';

export interface DesiredAccess {
  /** Active grants; with none, the entry is only kept for access that is not ours. */
  activeGrants: number;
  /** True when the entry did not exist before this system first touched the principal. */
  entryOwned: boolean;
  /** Desired scope per managed policy ARN; `undefined` means "must not be associated". */
  policies: Map<string, AccessScope | undefined>;
  /** Desired membership per managed group. */
  groups: Map<string, boolean>;
  /** Username to use if the entry has to be created. */
  username?: string;
}

export function computeDesired(record: PrincipalRecord, now: Date): DesiredAccess {
  const baseline: AccessState = record.baseline ?? { exists: false, kubernetesGroups: [], policies: [] };
  const active = record.grants.filter((g) => isActive(g, now));

  const policies = new Map<string, AccessScope | undefined>();
  const groups = new Map<string, boolean>();
  for (const grant of record.grants) {
    for (const p of grant.policies) policies.set(p.policyArn, undefined);
    for (const g of grant.kubernetesGroups) groups.set(g, false);
    // Access a revoke by name took away is still ours: it must leave EKS, not turn foreign.
    for (const arn of grant.narrowedAway?.policyArns ?? []) policies.set(arn, undefined);
    for (const g of grant.narrowedAway?.kubernetesGroups ?? []) groups.set(g, false);
  }
  for (const arn of policies.keys()) {
    const scopes = [
      ...baseline.policies.filter((p) => p.policyArn === arn),
      ...active.flatMap((g) => g.policies.filter((p) => p.policyArn === arn)),
    ].map((p) => p.accessScope);
    policies.set(arn, unionScopes(scopes));
  }
  for (const name of groups.keys()) {
    groups.set(
      name,
      baseline.kubernetesGroups.includes(name) || active.some((g) => g.kubernetesGroups.includes(name)),
    );
  }

  const username = baseline.exists ? baseline.username : firstUsername(active);
  return {
    activeGrants: active.length,
    entryOwned: !baseline.exists,
    policies,
    groups,
    ...(username !== undefined && { username }),
  };
}

/** Cluster scope dominates; otherwise the union of namespaces, sorted. */
export function unionScopes(scopes: AccessScope[]): AccessScope | undefined {
  if (scopes.length === 0) return undefined;
  if (scopes.some((s) => s.type === 'cluster')) return { type: 'cluster' };
  const namespaces = [...new Set(scopes.flatMap((s) => s.namespaces ?? []))].sort();
  return { type: 'namespace', namespaces };
}

export function sameScope(a: AccessScope | undefined, b: AccessScope | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.type !== b.type) return false;
  if (a.type === 'cluster') return true;
  const x = [...new Set(a.namespaces ?? [])].sort();
  const y = [...new Set(b.namespaces ?? [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The full desired state for a principal, as a plain AccessState (for audit and reports). */
export function desiredState(current: AccessState, desired: DesiredAccess): AccessState {
  // Delete only an entry we created (baseline absent AND our tag on it) that holds nothing
  // but what we granted: DeleteAccessEntry drops every policy on it.
  // With no active grant an absent entry stays absent (never recreate what someone deleted).
  const ours = current.tags?.[MANAGED_TAG_KEY] !== undefined;
  if (
    desired.activeGrants === 0 &&
    (!current.exists || (desired.entryOwned && ours && !hasForeignAccess(current, desired)))
  ) {
    return { exists: false, kubernetesGroups: [], policies: [] };
  }
  const groups = new Set(current.kubernetesGroups);
  for (const [name, want] of desired.groups) want ? groups.add(name) : groups.delete(name);
  const policies: PolicyAssociation[] = current.policies.filter((p) => !desired.policies.has(p.policyArn));
  for (const [policyArn, scope] of desired.policies)
    if (scope) policies.push(normalizePolicy({ policyArn, accessScope: scope }));
  policies.sort((a, b) => a.policyArn.localeCompare(b.policyArn));
  return {
    exists: true,
    ...(current.type !== undefined && { type: current.type }),
    kubernetesGroups: [...groups].sort(),
    ...((current.exists ? current.username : desired.username) !== undefined && {
      username: current.exists ? current.username : desired.username,
    }),
    policies,
  };
}

/** Access on the entry that no grant of ours ever named: someone else's, so the entry stays. */
export function hasForeignAccess(current: AccessState, desired: DesiredAccess): boolean {
  return (
    current.policies.some((p) => !desired.policies.has(p.policyArn)) ||
    current.kubernetesGroups.some((g) => !desired.groups.has(g))
  );
}

function firstUsername(grants: Grant[]): string | undefined {
  return [...grants].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).find((g) => g.username)?.username;
}
