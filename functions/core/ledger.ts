/**
 * The grants ledger model: what this system has done to one (cluster, principal).
 * Pure data and pure transitions; persistence lives in adapters/ledger.ts.
 */
import type { GrantExtension } from './extension.js';
import type { AccessRequest, AccessState, PolicyAssociation, Source } from './types.js';

/** Who ended a grant: the route the revoke came by, its request, and who it says asked. */
export interface EndedBy {
  source: Source;
  requestId: string;
  requestedBy?: string;
}

export type GrantStatus = 'active' | 'revoked' | 'expired' | 'failed';

export interface Grant {
  grantId: string;
  requestId: string;
  source: Source;
  policies: PolicyAssociation[];
  kubernetesGroups: string[];
  username?: string;
  expiresAt?: string;
  status: GrantStatus;
  requestedBy?: string;
  approvedBy?: string[];
  reason?: string;
  ticket?: string;
  incidentId?: string;
  createdAt: string;
  endedAt?: string;
  /** Who ended it (absent on grants ended before this was recorded, and on failed ones). */
  endedBy?: EndedBy;
  /**
   * Policy ARNs and groups that revokes by name took out of this grant. Desired state treats
   * only what some grant names as ours to remove; without this record, narrowed-away access
   * would look like someone else's and stay on the entry for good.
   */
  narrowedAway?: { policyArns: string[]; kubernetesGroups: string[] };
  /** Operator extensions, oldest first; `expiresAt` is the latest one's end. */
  extensions?: GrantExtension[];
  /** Optimistic-concurrency counter for conditional writes. */
  version: number;
  /**
   * The queue message that last changed this grant. SQS keeps a message's id across
   * redeliveries, so a retry of the message that made a change still reports it
   * (`granted`, `revoked`), while a replay (a new message) reports `unchanged`.
   */
  lastMessageId?: string;
  /**
   * The request that message carried. A redriven message (the DLQ hands it a new message id) carries
   * the same request, so it can take over a change whose own attempt cycle ended without a record.
   */
  lastRequestId?: string;
  /**
   * Set to `lastMessageId` once that message's terminal audit record is out (whatever its outcome), so a
   * redelivery after a crash publishes nothing (see `reportedMessageIds`), and other messages know the
   * change is reported.
   * While it differs from `lastMessageId`, the change is pending: see `attributeChanges` in ledger-change.ts.
   */
  reportedMessageId?: string;
  /**
   * Set to the reported stamp when the record that reported it was `failed` (the message was dead-lettered):
   * the change is in the ledger but its EKS calls may never have been made. A later message carrying the same
   * request (a redrive: new message id) takes the change over and reports what it applies; see
   * `takeOverFailed` in ledger-change.ts. Meaningless once `lastMessageId` moves on.
   */
  failedMessageId?: string;
  /**
   * The last messages (at most REPORTED_MESSAGES_KEPT) whose terminal record reported a change to this grant,
   * kept although a later message re-stamps it: SQS redelivers every message of a lost invocation with the same
   * id, and a message that reported must not publish a second record (`alreadyReported` in ledger-change.ts).
   */
  reportedMessageIds?: string[];
}

/**
 * How many reporting messages a grant remembers: a lost invocation hands back at most its batch (10 for a FIFO
 * event source), so a grant cannot have been reported by more messages of it.
 */
export const REPORTED_MESSAGES_KEPT = 10;

/** The access the principal had before this system first changed anything, captured once. */
export type Baseline = AccessState;

export interface PrincipalRecord {
  clusterName: string;
  principalArn: string;
  baseline?: Baseline;
  grants: Grant[];
}

export function grantFromRequest(request: AccessRequest, expiresAt: string | undefined, now: Date): Grant {
  return {
    grantId: request.requestId,
    requestId: request.requestId,
    source: request.source,
    policies: (request.accessPolicies ?? []).map(normalizePolicy),
    kubernetesGroups: [...new Set(request.kubernetesGroups ?? [])].sort(),
    ...(request.username !== undefined && { username: request.username }),
    ...(expiresAt !== undefined && { expiresAt }),
    status: 'active',
    ...(request.requestedBy !== undefined && { requestedBy: request.requestedBy }),
    ...(request.approvedBy !== undefined && { approvedBy: request.approvedBy }),
    ...(request.reason !== undefined && { reason: request.reason }),
    ...(request.ticket !== undefined && { ticket: request.ticket }),
    ...(request.incidentId !== undefined && { incidentId: request.incidentId }),
    createdAt: now.toISOString(),
    version: 1,
  };
}

export function normalizePolicy(p: PolicyAssociation): PolicyAssociation {
  return p.accessScope.type === 'cluster'
    ? { policyArn: p.policyArn, accessScope: { type: 'cluster' } }
    : {
        policyArn: p.policyArn,
        accessScope: { type: 'namespace', namespaces: [...new Set(p.accessScope.namespaces ?? [])].sort() },
      };
}

export function isActive(grant: Grant, now: Date): boolean {
  return (
    grant.status === 'active' &&
    (grant.expiresAt === undefined || Date.parse(grant.expiresAt) > now.getTime())
  );
}

/**
 * A revoke that names policies and/or groups but no grantId narrows every active
 * grant by exactly what it names; the baseline is never touched. Returns the grants
 * that changed (with status `revoked` when nothing is left of them).
 */
export function narrowGrants(grants: Grant[], request: AccessRequest, now: Date): Grant[] {
  const namesNothing = !request.accessPolicies?.length && !request.kubernetesGroups?.length;
  const changed: Grant[] = [];
  for (const grant of grants) {
    if (grant.status !== 'active') continue;
    if (namesNothing) {
      changed.push(endGrant(grant, 'revoked', now));
      continue;
    }
    const groups = grant.kubernetesGroups.filter((g) => !request.kubernetesGroups?.includes(g));
    const policies: PolicyAssociation[] = [];
    for (const p of grant.policies) {
      const named = request.accessPolicies?.find((r) => r.policyArn === p.policyArn);
      if (!named) policies.push(p);
      else if (named.accessScope.type === 'namespace' && p.accessScope.type === 'namespace') {
        const left = (p.accessScope.namespaces ?? []).filter(
          (ns) => !named.accessScope.namespaces?.includes(ns),
        );
        if (left.length > 0)
          policies.push({ policyArn: p.policyArn, accessScope: { type: 'namespace', namespaces: left } });
      } else if (named.accessScope.type === 'namespace') {
        // A namespace revoke cannot carve namespaces out of a cluster-wide grant: keep it
        // rather than revoke more than the request names.
        policies.push(p);
      }
    }
    if (groups.length === grant.kubernetesGroups.length && samePolicies(policies, grant.policies)) continue;
    const narrowedAway = {
      policyArns: [
        ...new Set([
          ...(grant.narrowedAway?.policyArns ?? []),
          ...grant.policies
            .filter((p) => !policies.some((q) => q.policyArn === p.policyArn))
            .map((p) => p.policyArn),
        ]),
      ].sort(),
      kubernetesGroups: [
        ...new Set([
          ...(grant.narrowedAway?.kubernetesGroups ?? []),
          ...grant.kubernetesGroups.filter((g) => !groups.includes(g)),
        ]),
      ].sort(),
    };
    const narrowed = {
      ...grant,
      kubernetesGroups: groups,
      policies,
      narrowedAway,
      version: grant.version + 1,
    };
    changed.push(
      groups.length === 0 && policies.length === 0
        ? endGrant({ ...narrowed, version: grant.version }, 'revoked', now)
        : narrowed,
    );
  }
  return changed;
}

export function endGrant(grant: Grant, status: 'revoked' | 'expired' | 'failed', now: Date): Grant {
  return { ...grant, status, endedAt: now.toISOString(), version: grant.version + 1 };
}

function samePolicies(a: PolicyAssociation[], b: PolicyAssociation[]): boolean {
  return JSON.stringify(a.map(normalizePolicy)) === JSON.stringify(b.map(normalizePolicy));
}
