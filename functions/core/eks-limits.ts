/**
 * Limits of the EKS access-entry API that the plan must respect. Pure.
 *
 * Namespaces per access scope: botocore's EKS model gives `AccessScope.namespaces` no maximum, and
 * neither the API reference, the user guide nor the issue threads we checked state one. The system
 * therefore sets its own ceiling, the same 50 the request contract allows per request, and never
 * sends more: a grant whose merged scope (baseline ∪ active grants, `unionScopes`) would exceed it is
 * rejected before anything is written. The EKS emulator enforces the same ceiling, so a send above it
 * fails loudly in tests.
 */
import { computeDesired } from './desired.js';
import type { Grant, PrincipalRecord } from './ledger.js';
import type { AccessState } from './types.js';

export const MAX_NAMESPACES_PER_SCOPE = 50;

export interface ScopeOverflow {
  policyArn: string;
  namespaces: number;
}

/**
 * The first policy whose merged namespace scope would exceed the ceiling once `grant` is active,
 * given the ledger record and (when no baseline is recorded yet) the current EKS state.
 */
export function scopeOverflow(
  record: PrincipalRecord,
  current: AccessState,
  grant: Grant,
  now: Date,
  max: number = MAX_NAMESPACES_PER_SCOPE,
): ScopeOverflow | undefined {
  const { tags: _tags, ...baseline } = current;
  const candidate: PrincipalRecord = {
    ...record,
    baseline: record.baseline ?? baseline,
    grants: [...record.grants.filter((g) => g.grantId !== grant.grantId), grant],
  };
  for (const [policyArn, scope] of computeDesired(candidate, now).policies) {
    const namespaces = scope?.type === 'namespace' ? new Set(scope.namespaces ?? []).size : 0;
    if (namespaces > max) return { policyArn, namespaces };
  }
  return undefined;
}
