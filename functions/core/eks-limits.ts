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
import type { PrincipalRecord } from './ledger.js';
import type { LedgerChange } from './ledger-change.js';

export const MAX_NAMESPACES_PER_SCOPE = 50;

export interface ScopeOverflow {
  policyArn: string;
  namespaces: number;
}

/**
 * The first policy whose merged namespace scope would exceed the ceiling once the ledger `change`
 * is written to `record` (a new or revived grant, a replaced baseline).
 */
export function scopeOverflow(
  record: PrincipalRecord,
  change: Pick<LedgerChange, 'baseline' | 'insert' | 'updates'>,
  now: Date,
  max: number = MAX_NAMESPACES_PER_SCOPE,
): ScopeOverflow | undefined {
  const updated = new Map(change.updates.map((u) => [u.next.grantId, u.next]));
  const grants = record.grants.map((g) => updated.get(g.grantId) ?? g);
  for (const next of updated.values()) if (!grants.some((g) => g.grantId === next.grantId)) grants.push(next);
  if (change.insert) grants.push(change.insert);
  const after: PrincipalRecord = {
    ...record,
    ...(change.baseline ? { baseline: change.baseline.baseline } : {}),
    grants,
  };
  for (const [policyArn, scope] of computeDesired(after, now).policies) {
    const namespaces = scope?.type === 'namespace' ? new Set(scope.namespaces ?? []).size : 0;
    if (namespaces > max) return { policyArn, namespaces };
  }
  return undefined;
}
