/**
 * How one request changes a principal's ledger record. Pure: the grant service loads the record and the
 * current EKS state, calls `planLedgerChange`, writes what it returns (in the order given) and applies it to
 * the record it holds; every rule about grants, revokes, expiry and recreated roles lives here and is
 * tested without emulators (DESIGN §6 style 11).
 *
 * Transitions (one function each; add new ones, such as an extension, to TRANSITIONS):
 *   converge  reconcile: the ledger already says what EKS should hold; nothing changes
 *   grant     insert the grant (capturing the baseline before our first change), or revive a failed one
 *   end       a revoke or expiry naming a grant: end it, if the sender may (revoke rights below)
 *   narrow    a revoke naming access but no grant: take exactly that out of the grants the sender may end
 *   extend    an operator moves a time-boxed grant's end later, as core/extension.ts decides; rescheduled
 *
 * Revoke rights: a revoke ends only grants its route made, so a holder of one route's key cannot end what
 * another route granted. `expiry` (the Scheduler and the reconciler's sweep) and `operator` end anything;
 * a DeleteRole (an `iam-role-created` revoke that names nothing) ends every grant of the deleted role,
 * since no grant for its ARN can still be wanted. So a requester who is done early revokes through the
 * route the grant came by, and a break-glass grant ends only by the break-glass route, an operator, or its
 * expiry.
 */
import { RejectionError } from './errors.js';
import { decideExtension, type GrantExtension } from './extension.js';
import {
  type Baseline,
  type EndedBy,
  endGrant,
  type Grant,
  grantFromRequest,
  narrowGrants,
  type PrincipalRecord,
} from './ledger.js';
import type { GuardrailPolicy } from './policy.js';
import type { AccessRequest, AccessState, Source } from './types.js';

export type { EndedBy } from './ledger.js';

/** Codes a ledger change can reject with (stable API, carried into the audit record). */
export const LEDGER_REASON_CODES = [
  'NOT_STANDARD_ENTRY',
  'USERNAME_CONFLICT',
  'ALREADY_EXPIRED',
  'GRANT_NOT_FOUND',
  'REVOKE_NOT_ALLOWED',
] as const;
export type LedgerReasonCode = (typeof LEDGER_REASON_CODES)[number];

/** An expiry that arrives more than this before the grant's end is early (clock skew, a stale schedule). */
export const EARLY_EXPIRY_TOLERANCE_MS = 60_000;

export const EMPTY_BASELINE: Baseline = Object.freeze({ exists: false, kubernetesGroups: [], policies: [] });

export interface LedgerChangeInput {
  record: PrincipalRecord;
  request: AccessRequest;
  /** The entry as EKS reports it now. */
  current: AccessState;
  /** When a grant ends, as the policy decided it. */
  expiresAt: string | undefined;
  now: Date;
  /** The queue message; stamped on every grant this change touches. */
  messageId: string;
  /** Needed by an extend only: it is decided against the rule of the grant's route. */
  policy?: GuardrailPolicy;
}

export type BaselineWrite =
  /** Write-once: a concurrent capture keeps the first, and the service uses what is stored. */
  | { kind: 'capture'; baseline: Baseline }
  /** Only for a recreated role: the dead role's baseline is void. Conditional on `expected` still being stored. */
  | { kind: 'replace'; baseline: Baseline; expected: Baseline | undefined };

export interface GrantUpdate {
  next: Grant;
  expectedVersion: number;
}

export interface LedgerNote {
  level: 'info' | 'warn';
  message: string;
  data?: Record<string, unknown>;
}

export interface LedgerChange {
  /** Written first. */
  baseline?: BaselineWrite;
  /** Written next; `false` from the ledger means someone inserted it concurrently. */
  insert?: Grant;
  /** Then these, each conditional on its expected version. */
  updates: GrantUpdate[];
  /** Expiry schedules of grants that ended, removed last. */
  cancelExpiries: string[];
  /** Grants whose end moved: their schedules are moved to the new end (after the writes). */
  reschedule: Grant[];
  /** On an extend: the extension, as the grant records it (also on a replay of it). */
  extension?: GrantExtension;
  /** On an extend decided now: the policy rule that allowed it (e.g. clusters.prod.rules.ticket). */
  rule?: string;
  /** The grant the request concerns, as it will be once the writes are done. */
  grant?: Grant;
  /** The request created its grant now (not a replay of one already recorded). */
  inserted?: boolean;
  /**
   * A recreated role: the stale entry must be deleted and created again with only our active grants.
   * Set on the attempt that records the grant and on retries of that same message.
   */
  recreate?: boolean;
  /** Who ended the grants this change ends. */
  endedBy?: EndedBy;
  notes: LedgerNote[];
}

type Transition = (input: LedgerChangeInput) => LedgerChange;

const TRANSITIONS: Record<'converge' | 'grant' | 'end' | 'narrow' | 'extend', Transition> = {
  converge: () => nothing(),
  grant: grantTransition,
  end: endTransition,
  narrow: narrowTransition,
  extend: extendTransition,
};

/** The change a request makes to the ledger record, or a RejectionError saying why it may not. */
export function planLedgerChange(input: LedgerChangeInput): LedgerChange {
  return takeOverFailed(input, TRANSITIONS[transitionOf(input.request)](input));
}

/**
 * A message carrying a request whose earlier cycle ended `failed` (a redrive: the DLQ hands the message back
 * with a new message id) takes over the ledger changes that cycle recorded and reported as failed. They are
 * in the ledger, so the transition finds nothing left to do (a revoke finds its grant already ended, a narrow
 * nothing more to narrow, an extend its extension recorded), yet their EKS calls may never have been made:
 * without the take-over this attempt would apply them and still report `unchanged`. Re-stamped with this
 * message, they are this message's own pending changes again, and its record says what happened (`revoked`,
 * with the calls it applied). Only a failed report is taken over: a duplicate of a request whose change was
 * applied and reported (`revoked`) stays a replay (`unchanged`), and the re-stamp is reported like any
 * change, so a second duplicate after the redrive is a replay too. A retry of the failed message itself
 * (same id) takes nothing over: its cycle is the one that ended.
 */
export function takeOverFailed(input: LedgerChangeInput, change: LedgerChange): LedgerChange {
  const { record, request, messageId } = input;
  if (request.source === 'reconcile') return change;
  const touched = new Set([
    ...(change.insert ? [change.insert.grantId] : []),
    ...change.updates.map((u) => u.next.grantId),
  ]);
  for (const g of record.grants) {
    if (touched.has(g.grantId)) continue;
    if (!reportedFailed(g) || g.lastRequestId !== request.requestId || g.lastMessageId === messageId)
      continue;
    const next = stamp({ ...g, version: g.version + 1 }, messageId, request.requestId);
    delete next.failedMessageId;
    change.updates.push({ next, expectedVersion: g.version });
    if (change.grant?.grantId === g.grantId) change.grant = next;
    // Who ended it is on the grant: the failed cycle of this same request.
    if (!change.endedBy && g.status !== 'active' && g.endedBy?.requestId === request.requestId) {
      change.endedBy = g.endedBy;
    }
    change.notes.push({
      level: 'info',
      message: 'taking over a ledger change whose earlier cycle of this request ended failed (a redrive)',
      data: { grantId: g.grantId, failedMessageId: g.failedMessageId },
    });
  }
  return change;
}

/** The grant's last change was reported by a `failed` record. */
function reportedFailed(g: Grant): boolean {
  return (
    g.lastMessageId !== undefined &&
    g.reportedMessageId === g.lastMessageId &&
    g.failedMessageId === g.lastMessageId
  );
}

export function transitionOf(request: AccessRequest): keyof typeof TRANSITIONS {
  // The reconciler asks only to converge EKS to what the ledger already says.
  if (request.source === 'reconcile') return 'converge';
  if (request.action === 'grant') return 'grant';
  if (request.action === 'extend') return 'extend';
  return request.grantId !== undefined ? 'end' : 'narrow';
}

// ---------------------------------------------------------------------------------------------------------

function grantTransition(input: LedgerChangeInput): LedgerChange {
  const { record, request, current, expiresAt, now, messageId } = input;
  const { clusterName, principalArn } = request;
  if (current.exists && (current.type ?? 'STANDARD') !== 'STANDARD' && request.accessPolicies?.length) {
    throw new RejectionError(
      'NOT_STANDARD_ENTRY',
      `the access entry of ${principalArn} on ${clusterName} is of type ${current.type}; access policies apply only to STANDARD entries`,
    );
  }
  // A recreated role's entry is created anew, so its old username is no conflict.
  if (
    !request.principalRecreated &&
    request.username !== undefined &&
    current.exists &&
    current.username !== request.username
  ) {
    throw new RejectionError(
      'USERNAME_CONFLICT',
      `the access entry already maps ${principalArn} to username ${JSON.stringify(current.username)}; this system does not rename existing entries`,
    );
  }
  if (expiresAt !== undefined && Date.parse(expiresAt) <= now.getTime()) {
    throw new RejectionError(
      'ALREADY_EXPIRED',
      `the grant would have expired at ${expiresAt}; nothing was applied`,
    );
  }
  const change = nothing();
  const existing = record.grants.find((g) => g.grantId === request.requestId);
  // CreateRole succeeded for this ARN, so an entry that exists belongs to a deleted role whose baseline is
  // void. Recreate when the grant is first recorded, and again on a retry of that same message (the first
  // attempt may have failed between delete and create); a replay (another message) converges normally.
  const recreate =
    request.principalRecreated === true &&
    (existing === undefined ||
      (existing.lastMessageId === messageId && existing.reportedMessageId !== messageId));
  if (recreate) {
    if (!isEmptyBaseline(record.baseline)) {
      change.baseline = { kind: 'replace', baseline: EMPTY_BASELINE, expected: record.baseline };
    }
    change.recreate = true;
  } else if (!record.baseline) {
    // Captured once, before our first change: what expiry and revoke restore to.
    const { tags: _ignored, ...baseline } = current;
    change.baseline = { kind: 'capture', baseline };
  }
  if (!existing) {
    const grant = stamp(grantFromRequest(request, expiresAt, now), messageId, request.requestId);
    return { ...change, insert: grant, grant, inserted: true };
  }
  if (existing.status === 'failed') {
    // An operator redrove a request that had failed: give it another go.
    const revived = stamp(
      { ...existing, status: 'active', version: existing.version + 1 },
      messageId,
      request.requestId,
    );
    delete revived.endedAt;
    change.updates.push({ next: revived, expectedVersion: existing.version });
    return { ...change, grant: revived };
  }
  return { ...change, grant: existing };
}

function endTransition(input: LedgerChangeInput): LedgerChange {
  const { record, request, now, messageId } = input;
  const { clusterName, principalArn } = request;
  const grant = record.grants.find((g) => g.grantId === request.grantId);
  if (!grant) {
    throw new RejectionError(
      'GRANT_NOT_FOUND',
      `no grant ${request.grantId} exists for ${principalArn} on ${clusterName}; nothing to ${request.source === 'expiry' ? 'expire' : 'revoke'}`,
    );
  }
  if (!mayEnd(request, grant)) throw notAllowed(request, [grant]);
  const change = nothing();
  if (grant.status !== 'active') return { ...change, grant };
  if (
    request.source === 'expiry' &&
    grant.expiresAt &&
    Date.parse(grant.expiresAt) > now.getTime() + EARLY_EXPIRY_TOLERANCE_MS
  ) {
    change.notes.push({
      level: 'warn',
      message: 'expiry arrived before the grant expires; ignoring it',
      data: { grantId: grant.grantId, expiresAt: grant.expiresAt },
    });
    return { ...change, grant };
  }
  const endedBy = endedByOf(request);
  const ended = stamp(
    { ...endGrant(grant, request.source === 'expiry' ? 'expired' : 'revoked', now), endedBy },
    messageId,
    request.requestId,
  );
  change.updates.push({ next: ended, expectedVersion: grant.version });
  change.cancelExpiries.push(grant.grantId);
  return { ...change, grant: ended, endedBy };
}

/** A revoke that names what to take away (or nothing: everything) across the grants its sender may end. */
function narrowTransition(input: LedgerChangeInput): LedgerChange {
  const { record, request, now, messageId } = input;
  const active = record.grants.filter((g) => g.status === 'active');
  const allowed = active.filter((g) => mayEnd(request, g));
  const change = nothing();
  const endedBy = endedByOf(request);
  const changed = narrowGrants(allowed, request, now);
  const forbidden = narrowGrants(
    active.filter((g) => !mayEnd(request, g)),
    request,
    now,
  );
  if (changed.length === 0 && forbidden.length > 0) {
    // Everything it names is held only by grants another route made: refuse, rather than say `unchanged`.
    throw notAllowed(
      request,
      forbidden.map((f) => active.find((g) => g.grantId === f.grantId) as Grant),
    );
  }
  if (forbidden.length > 0) {
    change.notes.push({
      level: 'warn',
      message: `revoke by ${request.source} left ${forbidden.length} grant(s) of other routes untouched`,
      data: { untouched: forbidden.map((g) => `${g.grantId} (${g.source})`) },
    });
  }
  for (const next of changed) {
    const prev = record.grants.find((g) => g.grantId === next.grantId) as Grant;
    const withWho = next.status === 'active' ? next : { ...next, endedBy };
    change.updates.push({
      next: stamp(withWho, messageId, request.requestId),
      expectedVersion: prev.version,
    });
    if (next.status !== 'active') change.cancelExpiries.push(next.grantId);
  }
  return changed.length > 0 ? { ...change, endedBy } : change;
}

/** An operator's extension of one time-boxed grant: decided by core/extension.ts, then recorded and rescheduled. */
function extendTransition(input: LedgerChangeInput): LedgerChange {
  const { record, request, now, messageId, policy } = input;
  const grant = record.grants.find((g) => g.grantId === request.grantId);
  if (!grant) {
    throw new RejectionError(
      'GRANT_NOT_FOUND',
      `no grant ${request.grantId} exists for ${request.principalArn} on ${request.clusterName}; nothing to extend`,
    );
  }
  const change = nothing();
  const done = grant.extensions?.find((e) => e.requestId === request.requestId);
  if (done) {
    // A redelivery or replay of an extension already recorded: extending again would add the time twice.
    // Moving the schedule again is idempotent and finishes an attempt that failed after the ledger write.
    if (grant.status === 'active') change.reschedule.push(grant);
    return { ...change, grant, extension: done };
  }
  if (!policy) throw new Error('internal: an extend is decided against the guardrail policy; none was given');
  const decision = decideExtension(policy, request, grant, now);
  if (!decision.allowed) throw new RejectionError(decision.reason.code, decision.reason.message);
  const extension: GrantExtension = {
    requestId: request.requestId,
    previousExpiresAt: decision.previousExpiresAt,
    expiresAt: decision.expiresAt,
    at: now.toISOString(),
    ...(request.requestedBy !== undefined && { requestedBy: request.requestedBy }),
    ...(request.approvedBy !== undefined && { approvedBy: request.approvedBy }),
    ...(request.reason !== undefined && { reason: request.reason }),
  };
  const extended = stamp(
    {
      ...grant,
      expiresAt: decision.expiresAt,
      extensions: [...(grant.extensions ?? []), extension],
      version: grant.version + 1,
    },
    messageId,
    request.requestId,
  );
  change.updates.push({ next: extended, expectedVersion: grant.version });
  change.reschedule.push(extended);
  return { ...change, grant: extended, extension, rule: decision.rule };
}

// ---------------------------------------------------------------------------------------------------------

/** Ledger changes whose terminal audit record is not out yet, split by whose they are. */
export interface PendingChanges {
  /**
   * Stamped by this message (in this attempt or an earlier one of its cycle), or by an earlier message
   * carrying the same request whose cycle ended without a record (a redrive takes it over).
   */
  own: Grant[];
  /** Stamped by another message whose cycle is still open, or ended without a record. */
  others: Grant[];
}

/**
 * Whose unreported ledger changes `record` holds. Another message's pending change means its attempt cycle
 * is open: typically a later message of this FIFO group that had written the ledger when the invocation
 * holding both was lost (a Lambda timeout), so this message is being replayed ahead of it; or the
 * break-glass worker, working on the same principal from its own queue. That message applies its change
 * and reports it; a message with nothing of its own pending must leave EKS to it, or its record (a
 * replay's `unchanged`) would list EKS calls made for another request, and that request's record none.
 */
export function attributeChanges(
  record: PrincipalRecord,
  messageId: string,
  requestId: string,
): PendingChanges {
  const out: PendingChanges = { own: [], others: [] };
  for (const g of record.grants) {
    if (g.lastMessageId === undefined || g.reportedMessageId === g.lastMessageId) continue;
    if (g.lastMessageId === messageId || g.lastRequestId === requestId) out.own.push(g);
    else out.others.push(g);
  }
  return out;
}

/**
 * Whether `messageId` is a redelivery of a message whose attempt cycle already ended with its terminal record:
 * a grant names it among the messages that reported a change to it (kept after later messages re-stamp the
 * grant), and no change it stamped is pending. SQS redelivers a
 * message with the same id when the invocation that handled it was lost after the handler finished (a Lambda
 * timeout at the end of the batch, a crash before the event source mapping deleted it); another record would
 * only repeat the outcome as `unchanged`. A message that stamped nothing (a rejection, a replay of a request
 * another message recorded, a reconcile) cannot be told apart from a first delivery and is handled again.
 */
export function alreadyReported(record: PrincipalRecord, messageId: string): boolean {
  // A change it stamped and has not reported: its cycle is open (a retry after a transient fault).
  if (record.grants.some((g) => g.lastMessageId === messageId && g.reportedMessageId !== messageId)) {
    return false;
  }
  return record.grants.some(
    (g) =>
      g.reportedMessageIds?.includes(messageId) ||
      (g.lastMessageId === messageId && g.reportedMessageId === messageId),
  );
}

/** Whether the revoke (or expiry) `request` may end or narrow `grant`: see the module comment. */
export function mayEnd(request: AccessRequest, grant: Grant): boolean {
  if (request.source === 'expiry' || request.source === 'operator') return true;
  if (request.source === 'iam-role-created' && isRoleDeletion(request)) return true;
  return grant.source === request.source;
}

/** A DeleteRole revoke: from the role intake, naming no grant and no access, so everything of ours goes. */
export function isRoleDeletion(request: AccessRequest): boolean {
  return (
    request.source === 'iam-role-created' &&
    request.action === 'revoke' &&
    request.grantId === undefined &&
    !request.accessPolicies?.length &&
    !request.kubernetesGroups?.length
  );
}

/** Which routes may end a grant made by `source`, for messages. */
export function routesThatMayEnd(source: Source): string {
  const routes = new Set<string>([source, 'operator', 'expiry']);
  return `${[...routes].join(', ')}${source === 'iam-role-created' ? '' : ', or a DeleteRole of the role'}`;
}

function notAllowed(request: AccessRequest, grants: Grant[]): RejectionError {
  const list = grants.map(
    (g) => `${g.grantId} (source ${g.source}; may be ended by ${routesThatMayEnd(g.source)})`,
  );
  return new RejectionError(
    'REVOKE_NOT_ALLOWED',
    `a ${request.source} revoke may end only grants made through the ${request.source} route; ` +
      `${grants.length === 1 ? 'grant' : 'grants'} ${list.join('; ')} of ${request.principalArn} on ${request.clusterName} ` +
      `${grants.length === 1 ? 'was' : 'were'} not changed`,
  );
}

function endedByOf(request: AccessRequest): EndedBy {
  return {
    source: request.source,
    requestId: request.requestId,
    ...(request.requestedBy !== undefined && { requestedBy: request.requestedBy }),
  };
}

function stamp(grant: Grant, messageId: string, requestId: string): Grant {
  return { ...grant, lastMessageId: messageId, lastRequestId: requestId };
}

function nothing(): LedgerChange {
  return { updates: [], cancelExpiries: [], reschedule: [], notes: [] };
}

function isEmptyBaseline(b: Baseline | undefined): boolean {
  return b !== undefined && !b.exists && b.kubernetesGroups.length === 0 && b.policies.length === 0;
}
