/**
 * What the worker would do to the ledger for one request, computed without writing it: the rules of
 * GrantService.updateLedger (functions/service/grant-service.ts), applied to a copy of the record.
 * TODO(domain): use the pure ledger-change function from functions/core once it lands, so the two
 * cannot drift.
 */
import {
  endGrant,
  grantFromRequest,
  narrowGrants,
  type PrincipalRecord,
} from '../../functions/core/ledger.js';
import type { AccessRequest, AccessState, Reason } from '../../functions/core/types.js';

export interface Simulated {
  /** The record as the worker would leave it. */
  record: PrincipalRecord;
  /** The grant was first recorded by this request (decides planRecreate for recreated roles). */
  inserted: boolean;
  /** A refusal the worker makes only once it sees the ledger and EKS. */
  rejection?: Reason;
  /** Something a person should know: the request would change nothing, and why. */
  note?: string;
}

export function simulateLedger(
  request: AccessRequest,
  expiresAt: string | undefined,
  original: PrincipalRecord,
  current: AccessState,
  now: Date,
): Simulated {
  const record: PrincipalRecord = structuredClone(original);
  const { clusterName, principalArn } = request;
  if (request.source === 'reconcile') return { record, inserted: false };

  if (request.action === 'grant') {
    if (current.exists && (current.type ?? 'STANDARD') !== 'STANDARD' && request.accessPolicies?.length) {
      return reject(
        record,
        'NOT_STANDARD_ENTRY',
        `the access entry of ${principalArn} on ${clusterName} is of type ${current.type}; access policies apply only to STANDARD entries`,
      );
    }
    if (request.username !== undefined && current.exists && current.username !== request.username) {
      return reject(
        record,
        'USERNAME_CONFLICT',
        `the access entry already maps ${principalArn} to username ${JSON.stringify(current.username)}; this system does not rename existing entries`,
      );
    }
    if (expiresAt !== undefined && Date.parse(expiresAt) <= now.getTime()) {
      return reject(
        record,
        'ALREADY_EXPIRED',
        `the grant would have expired at ${expiresAt}; nothing was applied`,
      );
    }
    if (!record.baseline) {
      const { tags: _ignored, ...baseline } = current;
      record.baseline = baseline;
    }
    const existing = record.grants.find((g) => g.grantId === request.requestId);
    if (!existing) {
      record.grants.push(grantFromRequest(request, expiresAt, now));
      return { record, inserted: true };
    }
    if (existing.status === 'failed') {
      existing.status = 'active';
      delete existing.endedAt;
      return { record, inserted: false };
    }
    return {
      record,
      inserted: false,
      note: `grant ${existing.grantId} is already recorded (${existing.status}); a replay changes nothing`,
    };
  }

  if (request.grantId !== undefined) {
    const grant = record.grants.find((g) => g.grantId === request.grantId);
    if (!grant) {
      return reject(
        record,
        'GRANT_NOT_FOUND',
        `no grant ${request.grantId} exists for ${principalArn} on ${clusterName}; nothing to ${request.source === 'expiry' ? 'expire' : 'revoke'}`,
      );
    }
    if (grant.status !== 'active')
      return { record, inserted: false, note: `grant ${grant.grantId} is already ${grant.status}` };
    if (
      request.source === 'expiry' &&
      grant.expiresAt &&
      Date.parse(grant.expiresAt) > now.getTime() + 60_000
    ) {
      return {
        record,
        inserted: false,
        note: `grant ${grant.grantId} expires at ${grant.expiresAt}; an expiry now is ignored`,
      };
    }
    Object.assign(grant, endGrant(grant, request.source === 'expiry' ? 'expired' : 'revoked', now));
    return { record, inserted: false };
  }

  for (const next of narrowGrants(record.grants, request, now)) {
    const i = record.grants.findIndex((g) => g.grantId === next.grantId);
    if (i >= 0) record.grants[i] = next;
  }
  return { record, inserted: false };
}

function reject(record: PrincipalRecord, code: string, message: string): Simulated {
  return { record, inserted: false, rejection: { code, message } };
}
