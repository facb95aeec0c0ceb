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

/**
 * Codes an outcome carries when EKS's own rules decided it, not the request or the policy (stable API,
 * carried into the audit record; the README's troubleshooting table explains each):
 * - SCOPE_TOO_MANY_NAMESPACES: rejected, the merged scope would exceed MAX_NAMESPACES_PER_SCOPE;
 * - IAM_PROPAGATION: failed, EKS still called a just-created principal invalid when the retries ran out;
 * - PRINCIPAL_NOT_IN_IAM: failed, EKS called it invalid for longer than IAM takes to propagate.
 */
export const EKS_LIMIT_REASON_CODES = [
  'SCOPE_TOO_MANY_NAMESPACES',
  'IAM_PROPAGATION',
  'PRINCIPAL_NOT_IN_IAM',
] as const;
export type EksLimitReasonCode = (typeof EKS_LIMIT_REASON_CODES)[number];

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
