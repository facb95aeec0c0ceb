/**
 * AuditRecord v1: one terminal record per request per attempt cycle.
 */
import { createHash } from 'node:crypto';
import type { EndedBy } from './ledger.js';
import type { DroppedAccess, EksChange } from './plan.js';
import type { AccessRequest, AccessScope, Reason } from './types.js';

export const AUDIT_OUTCOMES = [
  'granted',
  'revoked',
  'expired',
  'unchanged',
  'rejected',
  'failed',
  /** The reconciler found EKS differing from the ledger. */
  'drift',
  /** The worker converged a drifted principal back to the ledger (opt-in). */
  'repaired',
  /** An operator moved a time-boxed grant's end later; `expiresAt` is the new end, `previousExpiresAt` the old. */
  'extended',
] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditChange {
  operation: EksChange['op'];
  policyArn?: string;
  before: unknown;
  after: unknown;
  /** `failed` when EKS refused the call (the record's reason says why); `planned` in drift reports. */
  status: 'applied' | 'failed' | 'planned';
}

export interface AuditRecord {
  schemaVersion: 1;
  auditId: string;
  requestId: string;
  grantId?: string;
  outcome: AuditOutcome;
  /** `high` for break-glass so a bus rule can page someone. */
  severity: 'normal' | 'high';
  reason?: Reason;
  /** The cluster alias the request named. */
  clusterName?: string;
  /** `arn:aws:eks:<region>:<account>:cluster/<name>`: where the alias resolved (core/cluster-target.ts). */
  clusterArn?: string;
  principalArn?: string;
  source?: string;
  action?: string;
  requestedBy?: string;
  approvedBy?: string[];
  ticket?: string;
  incidentId?: string;
  changes: AuditChange[];
  expiresAt?: string;
  /** On `extended`: when the grant was to end before this extension. */
  previousExpiresAt?: string;
  /** On `revoked` and `expired`: who ended the grant(s): the route, its request, and who it says asked. */
  endedBy?: EndedBy;
  /**
   * On the grant that recreated a recreated role's entry (severity `high`): what the stale entry held that
   * this system never granted, and so did not carry over.
   */
  dropped?: DroppedAccess;
  /** The SenderId SQS stamped on the message the worker acted on (for a redriven dead letter, the DLQ writer's). */
  senderId?: string;
  attempt: number;
  at: string;
}

export interface AuditInput {
  requestId: string;
  outcome: AuditOutcome;
  attempt: number;
  at: Date;
  /** Distinguishes attempts of one request; with requestId it makes auditId deterministic. */
  attemptKey: string;
  request?: Partial<AccessRequest>;
  grantId?: string;
  reason?: Reason;
  changes?: AuditChange[];
  expiresAt?: string;
  previousExpiresAt?: string;
  /** Defaults to `high` for break-glass requests; the expiry of a break-glass grant passes it too. */
  severity?: AuditRecord['severity'];
  endedBy?: EndedBy;
  dropped?: DroppedAccess;
  clusterArn?: string;
  senderId?: string;
}

/** The hash the worker makes `auditId` with: the first 32 hex digits of SHA-256. */
export function auditHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

/** The worker's attempt key: the SQS message it acted on and that message's receive count. */
export function messageAttemptKey(messageId: string, receiveCount: number): string {
  return `${messageId}:${receiveCount}`;
}

/** What `auditId` is the hash of. */
function auditIdSource(requestId: string, attemptKey: string, outcome: AuditOutcome): string {
  return `${requestId}\u0000${attemptKey}\u0000${outcome}`;
}

/**
 * Whether the worker produced `record` for SQS message `messageId` (the id SendMessage returned): its
 * auditId is the hash of its request id, outcome, and that message's id with the record's attempt. Nobody
 * can make another message carry a MessageId SQS gave ours, so a record of a forged twin (same request id,
 * sent by someone else) never matches, whatever its requestId or senderId say.
 */
export function isRecordOfMessage(record: AuditRecord, messageId: string): boolean {
  return (
    record.auditId ===
    auditHash(auditIdSource(record.requestId, messageAttemptKey(messageId, record.attempt), record.outcome))
  );
}

export function buildAuditRecord(input: AuditInput, hash: (s: string) => string): AuditRecord {
  const r = input.request ?? {};
  const grantId = input.grantId ?? r.grantId;
  return {
    schemaVersion: 1,
    auditId: hash(auditIdSource(input.requestId, input.attemptKey, input.outcome)),
    requestId: input.requestId,
    ...(grantId !== undefined && { grantId }),
    outcome: input.outcome,
    severity: input.severity ?? (r.source === 'break-glass' ? 'high' : 'normal'),
    ...(input.reason && { reason: input.reason }),
    ...(r.clusterName !== undefined && { clusterName: r.clusterName }),
    ...(input.clusterArn !== undefined && { clusterArn: input.clusterArn }),
    ...(r.principalArn !== undefined && { principalArn: r.principalArn }),
    ...(r.source !== undefined && { source: r.source }),
    ...(r.action !== undefined && { action: r.action }),
    ...(r.requestedBy !== undefined && { requestedBy: r.requestedBy }),
    ...(r.approvedBy !== undefined && { approvedBy: r.approvedBy }),
    ...(r.ticket !== undefined && { ticket: r.ticket }),
    ...(r.incidentId !== undefined && { incidentId: r.incidentId }),
    changes: input.changes ?? [],
    ...(input.expiresAt !== undefined && { expiresAt: input.expiresAt }),
    ...(input.previousExpiresAt !== undefined && { previousExpiresAt: input.previousExpiresAt }),
    ...(input.endedBy !== undefined && { endedBy: input.endedBy }),
    ...(input.dropped !== undefined && { dropped: input.dropped }),
    ...(input.senderId !== undefined && { senderId: input.senderId }),
    attempt: input.attempt,
    at: input.at.toISOString(),
  };
}

/** An EKS change as the audit trail shows it: the call, and the state before and after. */
export function describeChange(change: EksChange, status: AuditChange['status']): AuditChange {
  switch (change.op) {
    case 'CreateAccessEntry':
      return {
        operation: change.op,
        before: null,
        after: { kubernetesGroups: change.kubernetesGroups, username: change.username ?? null },
        status,
      };
    case 'UpdateAccessEntry':
      return {
        operation: change.op,
        before: { kubernetesGroups: change.before },
        after: { kubernetesGroups: change.kubernetesGroups },
        status,
      };
    case 'AssociateAccessPolicy':
      return {
        operation: change.op,
        policyArn: change.policyArn,
        before: scopeOrNull(change.before),
        after: change.accessScope,
        status,
      };
    case 'DisassociateAccessPolicy':
      return {
        operation: change.op,
        policyArn: change.policyArn,
        before: change.before,
        after: null,
        status,
      };
    case 'DeleteAccessEntry':
      return { operation: change.op, before: change.before, after: null, status };
  }
}

function scopeOrNull(s: AccessScope | undefined): AccessScope | null {
  return s ?? null;
}
