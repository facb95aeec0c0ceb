/**
 * An independent, deliberately naive model of what one principal's access entry must look like after a
 * sequence of requests, and of each request's terminal outcome. It shares no code with
 * functions/core (desired.ts, plan.ts, ledger.ts): if both agree, the state is right for two reasons.
 *
 * The rules it encodes, from DESIGN.md and the README:
 * - entry = baseline (what the principal had before our first grant) ∪ every active grant; per policy the
 *   union of scopes (cluster scope dominates), groups the union of sets;
 * - no active grant left: the baseline again, or no entry at all when there was none;
 * - a grant id takes effect once: a repeated grant request changes nothing, even after its revoke;
 * - a revoke by grantId ends that grant (`revoked` even if EKS does not change, since the ledger does);
 *   revoking an ended grant is `unchanged`, an unknown one `rejected`;
 * - revoke rights: a revoke from a route ends only grants that route made (`operator` and `expiry` end
 *   any); a revoke of another route's grant is `rejected` whether or not that grant is still active.
 */
import type { EntrySnapshot } from '../../infra/local/eks-emulator.js';

export interface ModelScope {
  type: 'cluster' | 'namespace';
  /** Sorted; empty for cluster scope. */
  namespaces: string[];
}

export interface ModelAccess {
  groups: string[];
  policies: Record<string, ModelScope>;
}

export type ModelOutcome = 'granted' | 'revoked' | 'unchanged' | 'rejected';

export interface ModelRequest {
  requestId: string;
  /** `extend` only moves an end, which this model of access does not track: workloads never generate it. */
  action: 'grant' | 'revoke' | 'extend';
  /** Absent: every grant and revoke come by one route. */
  source?: string;
  grantId?: string;
  kubernetesGroups?: string[];
  accessPolicies?: Array<{ policyArn: string; accessScope: { type: string; namespaces?: string[] } }>;
}

export class PrincipalModel {
  private readonly grants = new Map<string, { access: ModelAccess; active: boolean; source?: string }>();

  constructor(readonly baseline: ModelAccess | undefined) {}

  apply(request: ModelRequest): ModelOutcome {
    const before = this.state();
    if (request.action === 'extend') throw new Error('the access model does not model extensions');
    if (request.action === 'grant') {
      if (!this.grants.has(request.requestId)) {
        this.grants.set(request.requestId, {
          access: accessOf(request),
          active: true,
          ...(request.source !== undefined && { source: request.source }),
        });
      }
      return sameAccess(before, this.state()) ? 'unchanged' : 'granted';
    }
    const grant = request.grantId === undefined ? undefined : this.grants.get(request.grantId);
    if (!grant) return 'rejected';
    const anyRoute = request.source === 'operator' || request.source === 'expiry';
    if (!anyRoute && grant.source !== request.source) return 'rejected';
    if (!grant.active) return 'unchanged';
    grant.active = false;
    return 'revoked';
  }

  /** The entry EKS must hold, or undefined for "no entry". */
  state(): ModelAccess | undefined {
    const active = [...this.grants.values()].filter((g) => g.active).map((g) => g.access);
    if (active.length === 0) return this.baseline && clone(this.baseline);
    return unionAll(this.baseline ? [this.baseline, ...active] : active);
  }
}

export function accessOf(request: Pick<ModelRequest, 'kubernetesGroups' | 'accessPolicies'>): ModelAccess {
  const policies: Record<string, ModelScope> = {};
  for (const p of request.accessPolicies ?? []) {
    policies[p.policyArn] =
      p.accessScope.type === 'cluster'
        ? { type: 'cluster', namespaces: [] }
        : { type: 'namespace', namespaces: [...new Set(p.accessScope.namespaces ?? [])].sort() };
  }
  return { groups: [...new Set(request.kubernetesGroups ?? [])].sort(), policies };
}

function unionAll(list: ModelAccess[]): ModelAccess {
  const groups = new Set<string>();
  const policies: Record<string, ModelScope> = {};
  for (const a of list) {
    for (const g of a.groups) groups.add(g);
    for (const [arn, scope] of Object.entries(a.policies)) {
      const prev = policies[arn];
      if (!prev) policies[arn] = clone(scope);
      else if (prev.type === 'cluster' || scope.type === 'cluster') {
        policies[arn] = { type: 'cluster', namespaces: [] };
      } else {
        prev.namespaces = [...new Set([...prev.namespaces, ...scope.namespaces])].sort();
      }
    }
  }
  return { groups: [...groups].sort(), policies };
}

/** An emulator snapshot entry in the model's terms (username and tags are not modelled). */
export function accessOfSnapshot(entry: EntrySnapshot): ModelAccess {
  const policies: Record<string, ModelScope> = {};
  for (const p of entry.policies) {
    policies[p.policyArn] = {
      type: p.accessScope.type,
      namespaces: p.accessScope.type === 'cluster' ? [] : [...p.accessScope.namespaces].sort(),
    };
  }
  return { groups: [...entry.kubernetesGroups].sort(), policies };
}

export function sameAccess(a: ModelAccess | undefined, b: ModelAccess | undefined): boolean {
  return canonical(a) === canonical(b);
}

/** Stable text form, for equality and for readable diffs in assertion messages. */
export function canonical(a: ModelAccess | undefined): string {
  if (!a) return 'absent';
  const policies = Object.keys(a.policies)
    .sort()
    .map((arn) => {
      const s = a.policies[arn]!;
      return `${arn.slice(arn.lastIndexOf('/') + 1)}@${s.type === 'cluster' ? 'cluster' : s.namespaces.join(',')}`;
    });
  return `groups=[${[...a.groups].sort().join(',')}] policies=[${policies.join(' ')}]`;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}
