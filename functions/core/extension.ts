/**
 * Extending a time-boxed grant: whether an `extend` request may move a grant's end, and to when. Pure
 * (policy, request, grant, now); the ledger change (core/ledger-change.ts) calls it with the grant it
 * found, since only the ledger knows which route made a grant and when it started.
 *
 * Who may extend, and why (a security reviewer's reading):
 * - Only source `operator`, which the queues accept only from OperatorRole (sender binding, C1). The
 *   intakes (tickets, role events, break-glass) never send an extend: an extension is a privileged,
 *   sender-bound act, not something a webhook body can ask for.
 * - It is decided by the rule of the route that made the grant (`clusters.<c>.rules.<grant.source>`), as
 *   if the grant were requested again now with its new end: the access it holds must still be allowed
 *   (a policy tightened since the grant is not bypassed by extending), approvals as that rule requires,
 *   an incident id where it requires one, and the total (grant start to new end) at most its maxDuration.
 *   An operator cannot extend a grant whose route has no rule any more (deny by default).
 * - Approvals: `approvedBy` on the extend request. When the rule forbids self-approval, neither the
 *   operator who asks (`requestedBy`) nor the person who holds the grant (its `requestedBy`) counts as an
 *   approver: the holder is the one who benefits, so approving one's own extension is self-approval too.
 * - Only an active grant that has not yet ended can be extended (an extension of a lapsed grant would be
 *   a new grant without its request); only later, never earlier (an early end is a revoke); never a
 *   permanent grant (nothing to extend); never past the contract's 90-day cap from its start.
 */
import type { Grant } from './ledger.js';
import { decideGrant, formatDuration, type GuardrailPolicy, join, own, type SourceRule } from './policy.js';
import { GRANTING_SOURCES, type GrantingSource } from './policy-schema.js';
import { MAX_DURATION_MS, parseIsoDuration } from './request.js';
import type { AccessRequest, Reason } from './types.js';

/** Codes an extension can be refused with (stable API); it can also be POLICY_DENIED and ALREADY_EXPIRED. */
export const EXTENSION_REASON_CODES = [
  'EXTEND_NOT_ALLOWED',
  'GRANT_NOT_ACTIVE',
  'GRANT_NOT_TIME_BOXED',
  'NOT_AN_EXTENSION',
  'EXTENSION_EXCEEDS_MAX_DURATION',
] as const;

/** One extension as the grant records it: replays of its request are recognised by `requestId`. */
export interface GrantExtension {
  requestId: string;
  previousExpiresAt: string;
  expiresAt: string;
  at: string;
  requestedBy?: string;
  approvedBy?: string[];
  reason?: string;
}

export type ExtensionDecision =
  | { allowed: true; rule: string; expiresAt: string; previousExpiresAt: string }
  | { allowed: false; reason: Reason };

export function decideExtension(
  policy: GuardrailPolicy,
  request: AccessRequest,
  grant: Grant,
  now: Date,
): ExtensionDecision {
  const what = `grant ${grant.grantId} of ${request.principalArn} on ${request.clusterName}`;
  if (request.source !== 'operator') {
    return refuse(
      'EXTEND_NOT_ALLOWED',
      `only an operator may extend a grant (source operator, sent as the operator role); got source ${request.source}`,
    );
  }
  if (grant.status !== 'active') {
    return refuse('GRANT_NOT_ACTIVE', `${what} is ${grant.status}; only an active grant can be extended`);
  }
  if (grant.expiresAt === undefined) {
    return refuse('GRANT_NOT_TIME_BOXED', `${what} has no end; there is nothing to extend`);
  }
  const previous = Date.parse(grant.expiresAt);
  if (previous <= now.getTime()) {
    return refuse(
      'ALREADY_EXPIRED',
      `${what} ended at ${grant.expiresAt}; a lapsed grant cannot be extended: request a new grant`,
    );
  }
  const end =
    request.extendBy !== undefined
      ? previous + (parseIsoDuration(request.extendBy) ?? 0)
      : Date.parse(request.expiresAt ?? '');
  if (!(end > previous)) {
    return refuse(
      'NOT_AN_EXTENSION',
      `${what} ends at ${grant.expiresAt}; the requested end ${isoOrNothing(end)} is not later. ` +
        'To end it earlier, revoke it.',
    );
  }
  const expiresAt = new Date(end).toISOString();

  const clusterPath = join('clusters', request.clusterName);
  const cluster = own(policy.clusters, request.clusterName);
  const source = grant.source as GrantingSource;
  const rulePath = join(join(clusterPath, 'rules'), grant.source);
  const rule: SourceRule | undefined =
    cluster && GRANTING_SOURCES.includes(source)
      ? own(cluster.rules as Record<string, SourceRule>, source)
      : undefined;
  if (!rule) {
    return refuse(
      'POLICY_DENIED',
      `${rulePath}: no rule for source ${grant.source} on cluster ${request.clusterName}; an extension is ` +
        'decided by the rule of the route that made the grant (deny by default)',
    );
  }

  const start = Date.parse(grant.createdAt);
  const total = end - start;
  const cap = Math.min(rule.maxDurationMs ?? MAX_DURATION_MS, MAX_DURATION_MS);
  if (total > cap) {
    const capText =
      rule.maxDurationMs !== undefined && rule.maxDurationMs <= MAX_DURATION_MS
        ? `the maximum ${rule.maxDuration} of ${join(rulePath, 'maxDuration')}`
        : 'the contract maximum P90D';
    return refuse(
      'EXTENSION_EXCEEDS_MAX_DURATION',
      `${what} started at ${grant.createdAt}; ending it at ${expiresAt} makes it last ${formatDuration(total)}, ` +
        `more than ${capText}, counted from its start. It can end at ${new Date(start + cap).toISOString()} at the latest.`,
    );
  }

  // The grant as if requested again now, by the operator, with its new end: the same rule checks it.
  const holder = grant.requestedBy;
  const approvedBy = (request.approvedBy ?? []).filter(
    (a) => rule.approvals.allowSelfApproval || holder === undefined || a !== holder,
  );
  const again: AccessRequest = {
    schemaVersion: 1,
    requestId: request.requestId,
    action: 'grant',
    source: grant.source,
    clusterName: request.clusterName,
    principalArn: request.principalArn,
    ...(grant.policies.length > 0 && { accessPolicies: grant.policies }),
    ...(grant.kubernetesGroups.length > 0 && { kubernetesGroups: grant.kubernetesGroups }),
    ...(grant.username !== undefined && { username: grant.username }),
    expiresAt,
    ...(request.requestedBy !== undefined && { requestedBy: request.requestedBy }),
    ...(approvedBy.length > 0 && { approvedBy }),
    ...((request.incidentId ?? grant.incidentId) !== undefined && {
      incidentId: request.incidentId ?? grant.incidentId,
    }),
  };
  const decision = decideGrant(rule, rulePath, again, now);
  if (!decision.allowed) {
    const dropped = (request.approvedBy?.length ?? 0) - approvedBy.length;
    return refuse(
      decision.reason.code,
      `extension of ${what}: ${decision.reason.message}` +
        (dropped > 0 ? ` (the grant's holder ${holder} cannot approve its own extension)` : ''),
    );
  }
  return { allowed: true, rule: rulePath, expiresAt, previousExpiresAt: grant.expiresAt };
}

function refuse(code: string, message: string): ExtensionDecision {
  return { allowed: false, reason: { code, message } };
}

function isoOrNothing(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : '(none)';
}
