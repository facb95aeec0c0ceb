import { beforeAll, describe, expect, test } from 'vitest';
import { RejectionError } from '../../functions/core/errors.js';
import type { Grant, PrincipalRecord } from '../../functions/core/ledger.js';
import {
  alreadyReported,
  attributeChanges,
  EMPTY_BASELINE,
  type LedgerChange,
  type LedgerChangeInput,
  mayEnd,
  planLedgerChange,
} from '../../functions/core/ledger-change.js';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import type { AccessRequest, AccessState, Source } from '../../functions/core/types.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { ADMIN, ns, VIEW } from '../helpers/fixtures.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const PRINCIPAL = 'arn:aws:iam::111122223333:role/a';
const absent: AccessState = { exists: false, kubernetesGroups: [], policies: [] };

function grant(id: string, source: Source, over: Partial<Grant> = {}): Grant {
  return {
    grantId: id,
    requestId: id,
    source,
    policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    kubernetesGroups: [],
    status: 'active',
    createdAt: '2026-11-21T10:00:00Z',
    version: 1,
    ...over,
  };
}

function request(over: Partial<AccessRequest>): AccessRequest {
  return {
    schemaVersion: 1,
    requestId: 'r1',
    action: 'revoke',
    source: 'ticket',
    clusterName: 'dev',
    principalArn: PRINCIPAL,
    ...over,
  };
}

function record(grants: Grant[], baseline?: AccessState): PrincipalRecord {
  return { clusterName: 'dev', principalArn: PRINCIPAL, grants, ...(baseline && { baseline }) };
}

function plan(over: Partial<LedgerChangeInput>): LedgerChange {
  return planLedgerChange({
    record: record([]),
    request: request({}),
    current: absent,
    expiresAt: undefined,
    now: NOW,
    messageId: 'm1',
    ...over,
  });
}

function rejection(fn: () => unknown): RejectionError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RejectionError) return err;
    throw err;
  }
  throw new Error('expected a RejectionError');
}

const grantRequest = (over: Partial<AccessRequest> = {}) =>
  request({
    requestId: 'g-new',
    action: 'grant',
    accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    ...over,
  });

describe('planLedgerChange: grants', () => {
  test('captures the baseline and inserts the grant, stamped with the message id', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['x'],
      policies: [],
      tags: { a: 'b' },
    };
    const change = plan({ request: grantRequest(), current });
    expect(change.baseline).toEqual({
      kind: 'capture',
      baseline: { exists: true, type: 'STANDARD', kubernetesGroups: ['x'], policies: [] },
    });
    expect(change.insert).toMatchObject({
      grantId: 'g-new',
      status: 'active',
      lastMessageId: 'm1',
      lastRequestId: 'g-new',
      version: 1,
    });
    expect(change.inserted).toBe(true);
    expect(change.grant).toBe(change.insert);
  });

  test('writes nothing for a replayed grant that is already recorded', () => {
    const existing = grant('g-new', 'ticket');
    const change = plan({ request: grantRequest(), record: record([existing], absent) });
    expect(change).toMatchObject({ updates: [], cancelExpiries: [] });
    expect(change.insert).toBeUndefined();
    expect(change.baseline).toBeUndefined();
    expect(change.grant).toBe(existing);
  });

  test('revives a failed grant an operator redrove', () => {
    const failed = grant('g-new', 'ticket', { status: 'failed', endedAt: 'x', version: 3 });
    const change = plan({ request: grantRequest(), record: record([failed], absent) });
    expect(change.updates).toHaveLength(1);
    expect(change.updates[0]?.expectedVersion).toBe(3);
    expect(change.updates[0]?.next).toMatchObject({ status: 'active', version: 4, lastMessageId: 'm1' });
    expect(change.updates[0]?.next.endedAt).toBeUndefined();
  });

  test('rejects access policies on a non-STANDARD entry with NOT_STANDARD_ENTRY', () => {
    const current: AccessState = { exists: true, type: 'EC2_LINUX', kubernetesGroups: [], policies: [] };
    expect(rejection(() => plan({ request: grantRequest(), current })).code).toBe('NOT_STANDARD_ENTRY');
  });

  test('rejects renaming an existing entry with USERNAME_CONFLICT', () => {
    const current: AccessState = { exists: true, kubernetesGroups: [], policies: [], username: 'old' };
    const err = rejection(() => plan({ request: grantRequest({ username: 'new' }), current }));
    expect(err.code).toBe('USERNAME_CONFLICT');
  });

  test('rejects a grant whose end has passed with ALREADY_EXPIRED', () => {
    const err = rejection(() => plan({ request: grantRequest(), expiresAt: '2026-11-21T11:00:00Z' }));
    expect(err.code).toBe('ALREADY_EXPIRED');
  });
});

describe('planLedgerChange: recreated roles', () => {
  const recreated = grantRequest({ source: 'iam-role-created', principalRecreated: true });
  const deadBaseline: AccessState = { exists: true, kubernetesGroups: ['foreign'], policies: [] };

  test("voids the dead role's baseline with a conditional replace, and asks for a recreate", () => {
    const change = plan({ request: recreated, record: record([], deadBaseline) });
    expect(change.baseline).toEqual({ kind: 'replace', baseline: EMPTY_BASELINE, expected: deadBaseline });
    expect(change.recreate).toBe(true);
    expect(change.inserted).toBe(true);
  });

  test('records an empty baseline for a role seen for the first time', () => {
    const change = plan({ request: recreated, current: { ...deadBaseline, exists: true } });
    expect(change.baseline).toEqual({ kind: 'replace', baseline: EMPTY_BASELINE, expected: undefined });
  });

  test('recreates again on a retry of the same message, but not on a replay by another message', () => {
    const mine = grant('g-new', 'iam-role-created', { lastMessageId: 'm1' });
    const retry = plan({ request: recreated, record: record([mine], EMPTY_BASELINE) });
    expect(retry.recreate).toBe(true);
    expect(retry.baseline).toBeUndefined();
    const replay = plan({ request: recreated, record: record([mine], EMPTY_BASELINE), messageId: 'm2' });
    expect(replay.recreate).toBeUndefined();
  });
});

describe('planLedgerChange: revoke rights', () => {
  const bg = grant('bg-1', 'break-glass', {
    policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
    expiresAt: '2026-11-21T13:00:00Z',
  });
  const ticket = grant('t-1', 'ticket');

  test('refuses a ticket-route revoke of a break-glass grant with REVOKE_NOT_ALLOWED', () => {
    const err = rejection(() => plan({ request: request({ grantId: 'bg-1' }), record: record([bg]) }));
    expect(err.code).toBe('REVOKE_NOT_ALLOWED');
    expect(err.message).toContain('bg-1 (source break-glass');
    expect(err.message).toContain('break-glass, operator, expiry');
  });

  test('ends a break-glass grant through the break-glass route, recording who ended it', () => {
    const change = plan({
      request: request({ source: 'break-glass', grantId: 'bg-1', requestedBy: 'hank@example.com' }),
      record: record([bg]),
    });
    const endedBy = { source: 'break-glass', requestId: 'r1', requestedBy: 'hank@example.com' };
    expect(change.updates[0]?.next).toMatchObject({ status: 'revoked', endedBy, lastMessageId: 'm1' });
    expect(change.cancelExpiries).toEqual(['bg-1']);
    expect(change.endedBy).toEqual(endedBy);
  });

  test.each(['operator', 'expiry'] as const)('lets %s end any grant', (source) => {
    const change = plan({
      request: request({ source, grantId: 'bg-1' }),
      record: record([bg]),
      now: new Date('2026-11-21T13:00:00Z'),
    });
    expect(change.updates[0]?.next.status).toBe(source === 'expiry' ? 'expired' : 'revoked');
  });

  test('ends a ticket grant through the ticket route', () => {
    const change = plan({ request: request({ grantId: 't-1' }), record: record([ticket, bg]) });
    expect(change.updates.map((u) => u.next.grantId)).toEqual(['t-1']);
  });

  test('a ticket revoke naming access narrows only ticket grants, leaving break-glass grants alone', () => {
    const bgView = grant('bg-2', 'break-glass', { expiresAt: '2026-11-21T13:00:00Z' });
    const change = plan({
      request: request({ accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }] }),
      record: record([ticket, bgView]),
    });
    expect(change.updates.map((u) => [u.next.grantId, u.next.status])).toEqual([['t-1', 'revoked']]);
    expect(change.notes[0]?.message).toContain('untouched');
  });

  test('refuses a ticket revoke of what only a break-glass grant holds', () => {
    const err = rejection(() =>
      plan({
        request: request({ accessPolicies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }] }),
        record: record([ticket, bg]),
      }),
    );
    expect(err.code).toBe('REVOKE_NOT_ALLOWED');
  });

  test('a DeleteRole (iam-role-created revoke naming nothing) ends every grant of the deleted role', () => {
    const change = plan({
      request: request({ source: 'iam-role-created', requestedBy: 'arn:aws:iam::111122223333:role/x' }),
      record: record([ticket, bg, grant('i-1', 'iam-role-created')]),
    });
    expect(change.updates.map((u) => u.next.status)).toEqual(['revoked', 'revoked', 'revoked']);
    expect(change.cancelExpiries).toEqual(['t-1', 'bg-1', 'i-1']);
    expect(change.endedBy?.source).toBe('iam-role-created');
  });

  test('an iam-role-created revoke by grant id ends only role-mapping grants', () => {
    expect(
      mayEnd(request({ source: 'iam-role-created', grantId: 'i-1' }), grant('i-1', 'iam-role-created')),
    ).toBe(true);
    expect(mayEnd(request({ source: 'iam-role-created', grantId: 't-1' }), ticket)).toBe(false);
  });

  test('ignores an expiry that arrives early, with a warning', () => {
    const change = plan({ request: request({ source: 'expiry', grantId: 'bg-1' }), record: record([bg]) });
    expect(change.updates).toEqual([]);
    expect(change.notes[0]?.level).toBe('warn');
  });

  test('rejects a revoke of an unknown grant with GRANT_NOT_FOUND', () => {
    expect(rejection(() => plan({ request: request({ grantId: 'nope' }) })).code).toBe('GRANT_NOT_FOUND');
  });

  test('changes nothing for a reconcile', () => {
    const change = plan({
      request: request({ source: 'reconcile', action: 'revoke' }),
      record: record([bg]),
    });
    expect(change).toEqual({ updates: [], cancelExpiries: [], reschedule: [], notes: [] });
  });
});

describe('planLedgerChange: extend (decided by the rule of the grant route, capped from its start)', () => {
  // prod's ticket rule: ViewPolicy in team-* namespaces, maxDuration PT8H, 1 approval, no self-approval.
  let policy: GuardrailPolicy;
  beforeAll(async () => {
    policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
  });
  const OPERATOR = 'arn:aws:sts::111122223333:assumed-role/OperatorRole/olga';
  const HOLDER = 'alice@example.com';
  const APPROVER = 'bob@example.com';
  /** A prod ticket grant that started at 10:00 and ends at 14:00 (NOW is 12:00). */
  const ticketGrant = (over: Partial<Grant> = {}) =>
    grant('g1', 'ticket', { requestedBy: HOLDER, expiresAt: '2026-11-21T14:00:00.000Z', ...over });
  const extendRequest = (over: Partial<AccessRequest> = {}) =>
    request({
      requestId: 'operator-extend-1',
      action: 'extend',
      source: 'operator',
      clusterName: 'prod',
      grantId: 'g1',
      extendBy: 'PT1H',
      requestedBy: OPERATOR,
      approvedBy: [APPROVER],
      reason: 'incident still open',
      ...over,
    });
  const extend = (grants: Grant[], over: Partial<AccessRequest> = {}) =>
    plan({ record: { ...record(grants), clusterName: 'prod' }, request: extendRequest(over), policy });

  test('moves the end later, records the extension, and reschedules the expiry', () => {
    const change = extend([ticketGrant()]);
    expect(change.rule).toBe('clusters.prod.rules.ticket');
    expect(change.updates).toHaveLength(1);
    const next = change.updates[0]?.next as Grant;
    expect(next).toMatchObject({ expiresAt: '2026-11-21T15:00:00.000Z', version: 2, lastMessageId: 'm1' });
    expect(next.extensions).toEqual([
      {
        requestId: 'operator-extend-1',
        previousExpiresAt: '2026-11-21T14:00:00.000Z',
        expiresAt: '2026-11-21T15:00:00.000Z',
        at: NOW.toISOString(),
        requestedBy: OPERATOR,
        approvedBy: [APPROVER],
        reason: 'incident still open',
      },
    ]);
    expect(change.reschedule).toEqual([next]);
    expect(change.cancelExpiries).toEqual([]);
  });

  test('a new end as an instant works the same as extendBy', () => {
    const change = extend([ticketGrant()], { extendBy: undefined, expiresAt: '2026-11-21T17:30:00Z' });
    expect(change.grant?.expiresAt).toBe('2026-11-21T17:30:00.000Z');
  });

  test('refuses an end beyond maxDuration counted from the grant start, and says the latest end', () => {
    // 10:00 + PT8H = 18:00; 14:00 + PT5H = 19:00.
    const err = rejection(() => extend([ticketGrant()], { extendBy: 'PT5H' }));
    expect(err.code).toBe('EXTENSION_EXCEEDS_MAX_DURATION');
    expect(err.message).toMatch(/maximum PT8H of clusters\.prod\.rules\.ticket\.maxDuration/);
    expect(err.message).toMatch(/2026-11-21T18:00:00\.000Z at the latest/);
    expect(extend([ticketGrant()], { extendBy: 'PT4H' }).grant?.expiresAt).toBe('2026-11-21T18:00:00.000Z');
  });

  test('needs approvals as the rule does; neither the operator nor the holder can approve it', () => {
    expect(rejection(() => extend([ticketGrant()], { approvedBy: undefined })).code).toBe('POLICY_DENIED');
    expect(rejection(() => extend([ticketGrant()], { approvedBy: [OPERATOR] })).message).toMatch(
      /approvals: 1 approval by someone other than the requester is required/,
    );
    const byHolder = rejection(() => extend([ticketGrant()], { approvedBy: [HOLDER] }));
    expect(byHolder.code).toBe('POLICY_DENIED');
    expect(byHolder.message).toMatch(/holder alice@example\.com cannot approve its own extension/);
  });

  test('refuses access the rule no longer allows (the policy tightened since the grant)', () => {
    const edit = ticketGrant({ policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }] });
    expect(rejection(() => extend([edit])).message).toMatch(/clusters\.prod\.rules\.ticket\.allowedPolicies/);
  });

  test('only an operator may extend', () => {
    const err = rejection(() => extend([ticketGrant()], { source: 'ticket' }));
    expect(err.code).toBe('EXTEND_NOT_ALLOWED');
  });

  test('refuses grants that are unknown, ended, permanent or lapsed, and ends that are not later', () => {
    expect(rejection(() => extend([ticketGrant()], { grantId: 'nope' })).code).toBe('GRANT_NOT_FOUND');
    expect(rejection(() => extend([ticketGrant({ status: 'revoked' })])).code).toBe('GRANT_NOT_ACTIVE');
    const permanent = ticketGrant();
    delete permanent.expiresAt;
    expect(rejection(() => extend([permanent])).code).toBe('GRANT_NOT_TIME_BOXED');
    expect(rejection(() => extend([ticketGrant({ expiresAt: '2026-11-21T11:59:00.000Z' })])).code).toBe(
      'ALREADY_EXPIRED',
    );
    expect(
      rejection(() => extend([ticketGrant()], { extendBy: undefined, expiresAt: '2026-11-21T13:00:00Z' }))
        .code,
    ).toBe('NOT_AN_EXTENSION');
  });

  test('a replay of a recorded extension adds no time again, but moves the schedule again', () => {
    const first = extend([ticketGrant()]);
    const extended = first.grant as Grant;
    const again = extend([extended]);
    expect(again.updates).toEqual([]);
    expect(again.grant?.expiresAt).toBe('2026-11-21T15:00:00.000Z');
    expect(again.reschedule).toEqual([extended]);
    expect(again.extension?.previousExpiresAt).toBe('2026-11-21T14:00:00.000Z');
  });

  test('a break-glass grant is decided by the break-glass rule (PT1H from its start)', () => {
    const bg = grant('g1', 'break-glass', {
      policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
      incidentId: 'INC-1',
      createdAt: '2026-11-21T11:30:00.000Z',
      expiresAt: '2026-11-21T12:00:30.000Z',
    });
    expect(extend([bg], { extendBy: 'PT29M' }).rule).toBe('clusters.prod.rules.break-glass');
    expect(rejection(() => extend([bg], { extendBy: 'PT31M' })).code).toBe('EXTENSION_EXCEEDS_MAX_DURATION');
  });
});

describe('attributeChanges: whose unreported ledger changes a record holds', () => {
  const stamped = (id: string, messageId: string, requestId: string, reported?: string) =>
    grant(id, 'ticket', {
      lastMessageId: messageId,
      lastRequestId: requestId,
      ...(reported !== undefined && { reportedMessageId: reported }),
    });

  test("a change this message stamped and has not reported is its own; a reported one is nobody's", () => {
    const r = record([stamped('g-1', 'm1', 'g-1'), stamped('g-2', 'm1', 'g-2', 'm1')]);
    expect(attributeChanges(r, 'm1', 'g-1')).toEqual({ own: [r.grants[0]], others: [] });
  });

  test("a later message's unreported change is another's: a replay must leave it to that message", () => {
    // A revoke (m2) recorded its change, then the invocation holding it and the grant (m1) was lost.
    const r = record([stamped('g-1', 'm2', 'rev-1'), stamped('g-2', 'm1', 'g-2', 'm1')]);
    expect(attributeChanges(r, 'm1', 'g-2')).toEqual({ own: [], others: [r.grants[0]] });
    expect(attributeChanges(r, 'm2', 'rev-1')).toEqual({ own: [r.grants[0]], others: [] });
  });

  test('a redrive (new message id, same request) takes over a change whose cycle ended without a record', () => {
    const r = record([stamped('g-1', 'm-old', 'rev-1')]);
    expect(attributeChanges(r, 'm-redriven', 'rev-1').own).toEqual([r.grants[0]]);
  });

  test("grants never stamped (recorded before stamps existed) are nobody's", () => {
    expect(attributeChanges(record([grant('g-1', 'ticket')]), 'm1', 'x')).toEqual({ own: [], others: [] });
  });
});

describe('takeOverFailed: a redrive takes over the change its failed cycle recorded', () => {
  const endedBy = { source: 'ticket' as const, requestId: 'r1' };
  /** A revoke (r1, message m-old) ended t-1 in the ledger, then its EKS calls failed: reported `failed`. */
  const failedRevoke = (over: Partial<Grant> = {}) =>
    grant('t-1', 'ticket', {
      status: 'revoked',
      endedAt: '2026-11-21T11:00:00Z',
      endedBy,
      version: 3,
      lastMessageId: 'm-old',
      lastRequestId: 'r1',
      reportedMessageId: 'm-old',
      failedMessageId: 'm-old',
      ...over,
    });
  const revoke = request({ grantId: 't-1' });

  test('re-stamps the ended grant with the redriven message, so its record says `revoked`', () => {
    const r = record([failedRevoke()]);
    const change = plan({ request: revoke, record: r, messageId: 'm-redriven' });
    expect(change.updates).toHaveLength(1);
    const next = change.updates[0]?.next as Grant;
    expect(change.updates[0]?.expectedVersion).toBe(3);
    expect(next).toMatchObject({
      status: 'revoked',
      version: 4,
      lastMessageId: 'm-redriven',
      lastRequestId: 'r1',
    });
    expect(next.failedMessageId).toBeUndefined();
    expect(change.grant).toEqual(next);
    expect(change.endedBy).toEqual(endedBy);
    // Once applied, the change is the redriven message's own pending change.
    expect(attributeChanges(record([next]), 'm-redriven', 'r1').own).toEqual([next]);
  });

  test('a change reported as applied is a replay: a duplicate takes nothing over', () => {
    const { failedMessageId: _f, ...reported } = failedRevoke();
    const change = plan({ request: revoke, record: record([reported]), messageId: 'm-dup' });
    expect(change.updates).toEqual([]);
    expect(change.endedBy).toBeUndefined();
  });

  test('a stale failure mark (the grant was changed since) is not taken over', () => {
    const change = plan({
      request: revoke,
      record: record([failedRevoke({ lastMessageId: 'm-later', reportedMessageId: 'm-later' })]),
      messageId: 'm-dup',
    });
    expect(change.updates).toEqual([]);
  });

  test('another request, or the failed message itself, takes nothing over', () => {
    const r = record([failedRevoke()]);
    expect(
      plan({ request: request({ requestId: 'r2', grantId: 't-1' }), record: r, messageId: 'm2' }).updates,
    ).toEqual([]);
    expect(plan({ request: revoke, record: r, messageId: 'm-old' }).updates).toEqual([]);
  });

  test('a narrowing revoke takes over what its failed cycle narrowed', () => {
    const narrowed = failedRevoke({ status: 'active', policies: [], kubernetesGroups: ['g'] });
    delete narrowed.endedAt;
    delete narrowed.endedBy;
    const change = plan({
      request: request({ accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }] }),
      record: record([narrowed]),
      messageId: 'm-redriven',
    });
    expect(change.updates.map((u) => u.next.lastMessageId)).toEqual(['m-redriven']);
  });
});

describe('alreadyReported: a redelivery of a message whose record is out', () => {
  const g = (over: Partial<Grant>) => grant('g-1', 'ticket', over);

  test('a message that stamped and reported its change has reported', () => {
    expect(
      alreadyReported(
        record([g({ lastMessageId: 'm1', reportedMessageId: 'm1', reportedMessageIds: ['m1'] })]),
        'm1',
      ),
    ).toBe(true);
  });

  test('it still has after a later message re-stamped the grant (a revoke after the grant, both redelivered)', () => {
    const revoked = g({
      status: 'revoked',
      lastMessageId: 'm2',
      reportedMessageId: 'm2',
      reportedMessageIds: ['m1', 'm2'],
    });
    expect(alreadyReported(record([revoked]), 'm1')).toBe(true);
    expect(alreadyReported(record([revoked]), 'm2')).toBe(true);
  });

  test('a change it stamped and has not reported is an open cycle (a retry): not reported', () => {
    const r = record([
      g({ lastMessageId: 'm1', reportedMessageIds: ['m1'], reportedMessageId: 'm0' }),
      grant('g-2', 'ticket', { lastMessageId: 'm3', reportedMessageId: 'm3', reportedMessageIds: ['m3'] }),
    ]);
    expect(alreadyReported(r, 'm1')).toBe(false);
  });

  test('a message that marked nothing (a rejection, a replay by a new message) cannot be told: not reported', () => {
    const r = record([g({ lastMessageId: 'm1', reportedMessageId: 'm1', reportedMessageIds: ['m1'] })]);
    expect(alreadyReported(r, 'm-new')).toBe(false);
    expect(alreadyReported(record([]), 'm1')).toBe(false);
  });
});
