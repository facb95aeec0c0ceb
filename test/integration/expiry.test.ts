/**
 * Issue 3: time-boxed grants, break-glass and exact restoration, against the emulators over
 * HTTP through the real worker. Expiries are delivered by the Scheduler emulator, which
 * really fires the schedules the worker creates into the FIFO queue.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { expiryRequest, scheduleName } from '../../functions/adapters/scheduler.js';
import { ALREADY_EXPIRED } from '../../functions/core/policy.js';
import { type AccessRequest, MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { auditsOnceThere, eksWrites, ledgerOf } from '../helpers/expiry.js';
import { ADMIN, EDIT, fixture, ns, VIEW } from '../helpers/fixtures.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const ALICE = 'arn:aws:iam::111122223333:role/sre-alice';

function devGrant(requestId: string, principalArn: string, over: Partial<AccessRequest> = {}): AccessRequest {
  return {
    schemaVersion: 1,
    requestId,
    action: 'grant',
    source: 'ticket',
    clusterName: 'dev',
    principalArn,
    accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    requestedBy: 'alice@example.com',
    ticket: 'OPS-300',
    ...over,
  };
}

const expiryOf = (grantId: string) => scheduleName(grantId);

describe('time-boxed grants expire through the Scheduler emulator', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const entryOf = (cluster: string, principalArn: string) =>
    h.eks.snapshot(cluster).find((e) => e.principalArn === principalArn);

  test('overlapping grants of one policy: each expiry removes only its own namespaces, the last deletes the entry we created', async () => {
    const P = 'arn:aws:iam::111122223333:role/overlap';
    await h.send(devGrant('req-overlap-a', P, { duration: 'PT2S' }));
    await h.send(
      devGrant('req-overlap-b', P, {
        duration: 'PT5S',
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-b') }],
      }),
    );
    await h.drain();
    expect(entryOf('dev', P)?.policies).toEqual([{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }]);

    // One one-time schedule per grant, named from the grant id, that sends the expiry request.
    const schedules = h.aws.schedulerEmulator.schedules();
    expect(schedules.map((s) => s.name).sort()).toEqual(
      [expiryOf('req-overlap-a'), expiryOf('req-overlap-b')].sort(),
    );
    for (const s of schedules) {
      expect(s).toMatchObject({ actionAfterCompletion: 'DELETE', flexibleTimeWindow: { Mode: 'OFF' } });
      expect(s.scheduleExpression).toMatch(/^at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\)$/);
    }
    const a = schedules.find((s) => s.name === expiryOf('req-overlap-a'));
    expect(JSON.parse(a?.target.Input ?? '{}')).toEqual(
      expiryRequest({ clusterName: 'dev', principalArn: P }, 'req-overlap-a'),
    );

    const [first] = await auditsOnceThere(h, expiryOf('req-overlap-a'));
    expect(first).toMatchObject({ outcome: 'expired', grantId: 'req-overlap-a', source: 'expiry' });
    expect(first?.changes).toEqual([
      {
        operation: 'AssociateAccessPolicy',
        policyArn: VIEW,
        before: ns('team-a', 'team-b'),
        after: ns('team-b'),
        status: 'applied',
      },
    ]);
    // The second grant still owns team-b; the first expiry must not take it.
    expect(entryOf('dev', P)?.policies).toEqual([{ policyArn: VIEW, accessScope: ns('team-b') }]);
    expect(h.aws.schedulerEmulator.fired().map((f) => f.name)).toContain(expiryOf('req-overlap-a'));
    expect(h.aws.schedulerEmulator.schedules().map((s) => s.name)).toEqual([expiryOf('req-overlap-b')]);

    const [second] = await auditsOnceThere(h, expiryOf('req-overlap-b'));
    expect(second).toMatchObject({ outcome: 'expired', grantId: 'req-overlap-b' });
    expect(second?.changes.map((c) => c.operation)).toEqual(['DeleteAccessEntry']);
    expect(entryOf('dev', P)).toBeUndefined();
    expect(h.aws.schedulerEmulator.schedules()).toEqual([]);

    const grants = (await ledgerOf(h).load('dev', P)).grants;
    expect(grants.map((g) => [g.grantId, g.status])).toEqual([
      ['req-overlap-a', 'expired'],
      ['req-overlap-b', 'expired'],
    ]);
  });

  test('break-glass over a permanent baseline is audited high severity and its expiry restores the baseline exactly', async () => {
    h.eks.seedEntry('prod', {
      principalArn: ALICE,
      kubernetesGroups: ['sre-oncall'],
      username: 'sre-alice',
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    const baseline = entryOf('prod', ALICE);

    await h.send(fixture('prod-break-glass-short', { requestId: 'req-bg-2s', duration: 'PT2S' }));
    await h.drain();
    const [granted] = h.auditsFor('req-bg-2s');
    expect(granted).toMatchObject({
      outcome: 'granted',
      severity: 'high',
      source: 'break-glass',
      incidentId: 'INC-4243',
      grantId: 'req-bg-2s',
    });
    expect(granted?.expiresAt).toBeDefined();
    expect(entryOf('prod', ALICE)).toEqual({
      ...baseline,
      policies: [
        { policyArn: ADMIN, accessScope: { type: 'cluster', namespaces: [] } },
        { policyArn: VIEW, accessScope: ns('team-a') },
      ],
    });

    const [expired] = await auditsOnceThere(h, expiryOf('req-bg-2s'));
    expect(expired).toMatchObject({ outcome: 'expired', grantId: 'req-bg-2s', severity: 'high' });
    expect(expired?.changes).toEqual([
      {
        operation: 'DisassociateAccessPolicy',
        policyArn: ADMIN,
        before: { type: 'cluster' },
        after: null,
        status: 'applied',
      },
    ]);
    // Groups, username, tags and the View scope are exactly what they were.
    expect(entryOf('prod', ALICE)).toEqual(baseline);
  });

  test('an early revoke ("I am done") ends break-glass at once, cancels its schedule and keeps the baseline', async () => {
    h.eks.seedEntry('prod', {
      principalArn: ALICE,
      kubernetesGroups: ['sre-oncall'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    const baseline = entryOf('prod', ALICE);
    await h.send(fixture('prod-break-glass-short', { requestId: 'req-bg-1h', duration: 'PT1H' }));
    await h.drain();
    expect(h.aws.schedulerEmulator.schedules().map((s) => s.name)).toEqual([expiryOf('req-bg-1h')]);

    await h.send({
      schemaVersion: 1,
      requestId: 'req-bg-1h-done',
      action: 'revoke',
      source: 'break-glass',
      clusterName: 'prod',
      principalArn: ALICE,
      grantId: 'req-bg-1h',
      requestedBy: 'sre-alice@example.com',
      reason: "I'm done: checkout is rolled back",
      incidentId: 'INC-4243',
    });
    await h.drain();

    expect(h.auditsFor('req-bg-1h-done')[0]).toMatchObject({
      outcome: 'revoked',
      severity: 'high',
      grantId: 'req-bg-1h',
      incidentId: 'INC-4243',
    });
    expect(h.aws.schedulerEmulator.schedules()).toEqual([]);
    expect(entryOf('prod', ALICE)).toEqual(baseline);
    const [grant] = (await ledgerOf(h).load('prod', ALICE)).grants;
    expect(grant).toMatchObject({ grantId: 'req-bg-1h', status: 'revoked' });
  });

  test('a pre-existing entry is never deleted, even when expiry leaves none of our access on it', async () => {
    const EMPTY = 'arn:aws:iam::111122223333:role/pre-existing-empty';
    const HAD_VIEW = 'arn:aws:iam::111122223333:role/pre-existing-view';
    h.eks.seedEntry('dev', { principalArn: EMPTY });
    h.eks.seedEntry('dev', {
      principalArn: HAD_VIEW,
      kubernetesGroups: ['team-a-readers'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    const before = h.eks.snapshot('dev');

    await h.send(devGrant('req-empty-1s', EMPTY, { duration: 'PT1S', kubernetesGroups: ['team-a-readers'] }));
    // Widens a policy and re-grants a group the principal already had.
    await h.send(
      devGrant('req-view-1s', HAD_VIEW, {
        duration: 'PT1S',
        kubernetesGroups: ['team-a-readers', 'team-c-readers'],
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-c') }],
      }),
    );
    await h.drain();
    expect(entryOf('dev', EMPTY)).toMatchObject({
      kubernetesGroups: ['team-a-readers'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    expect(entryOf('dev', HAD_VIEW)).toMatchObject({
      kubernetesGroups: ['team-a-readers', 'team-c-readers'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-c') }],
    });

    const [emptied] = await auditsOnceThere(h, expiryOf('req-empty-1s'));
    const [narrowed] = await auditsOnceThere(h, expiryOf('req-view-1s'));
    expect(emptied?.outcome).toBe('expired');
    expect(narrowed?.outcome).toBe('expired');
    expect(emptied?.changes.map((c) => c.operation)).not.toContain('DeleteAccessEntry');
    expect(h.eks.snapshot('dev')).toEqual(before);
    expect(entryOf('dev', EMPTY)?.tags[MANAGED_TAG_KEY]).toBeUndefined();
  });

  test('an expiry replayed after it was applied changes nothing: audited `unchanged`, no EKS write', async () => {
    const P = 'arn:aws:iam::111122223333:role/replayed';
    h.eks.seedEntry('dev', { principalArn: P, policies: [{ policyArn: VIEW, accessScope: ns('team-a') }] });
    await h.send(
      devGrant('req-replay', P, {
        duration: 'PT1S',
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-b') }],
      }),
    );
    await h.drain();
    await auditsOnceThere(h, expiryOf('req-replay'));
    const afterExpiry = h.eks.snapshot('dev');
    expect(afterExpiry[0]?.policies).toEqual([{ policyArn: VIEW, accessScope: ns('team-a') }]);

    h.eks.resetCalls();
    const replay = expiryRequest({ clusterName: 'dev', principalArn: P }, 'req-replay');
    await h.send(replay);
    await h.drain();
    const response = await h.invoke([JSON.stringify(replay)]);
    expect(response.batchItemFailures).toEqual([]);

    expect(h.auditsFor(replay.requestId).map((a) => a.outcome)).toEqual([
      'expired',
      'unchanged',
      'unchanged',
    ]);
    expect(eksWrites(h)).toEqual([]);
    expect(h.eks.snapshot('dev')).toEqual(afterExpiry);
  });

  test('a revoke by name that takes a whole policy or group off a grant removes it from EKS, and the entry we created goes once nothing is left', async () => {
    // Regression: narrowed-away access used to count as someone else's, so it stayed on the entry.
    const P = 'arn:aws:iam::111122223333:role/narrowed';
    await h.send(
      devGrant('req-narrow', P, {
        kubernetesGroups: ['team-a-readers', 'team-b-readers'],
        accessPolicies: [
          { policyArn: VIEW, accessScope: ns('team-a') },
          { policyArn: EDIT, accessScope: ns('team-a') },
        ],
      }),
    );
    await h.send({
      schemaVersion: 1,
      requestId: 'req-narrow-revoke',
      action: 'revoke',
      source: 'ticket',
      clusterName: 'dev',
      principalArn: P,
      kubernetesGroups: ['team-b-readers'],
      accessPolicies: [{ policyArn: EDIT, accessScope: ns('team-a') }],
    });
    await h.drain();
    expect(
      h
        .auditsFor('req-narrow-revoke')[0]
        ?.changes.map((c) => c.operation)
        .sort(),
    ).toEqual(['DisassociateAccessPolicy', 'UpdateAccessEntry']);
    expect(entryOf('dev', P)).toMatchObject({
      kubernetesGroups: ['team-a-readers'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });

    await h.send({
      schemaVersion: 1,
      requestId: 'req-narrow-rest',
      action: 'revoke',
      source: 'ticket',
      clusterName: 'dev',
      principalArn: P,
      kubernetesGroups: ['team-a-readers'],
      accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    await h.drain();
    expect(h.auditsFor('req-narrow-rest')[0]?.outcome).toBe('revoked');
    expect(entryOf('dev', P)).toBeUndefined();
  });

  test('a grant whose expiresAt is already past is rejected ALREADY_EXPIRED and nothing is applied', async () => {
    const P = 'arn:aws:iam::111122223333:role/too-late';
    await h.send(devGrant('req-too-late', P, { expiresAt: new Date(Date.now() - 60_000).toISOString() }));
    await h.drain();
    const audits = h.auditsFor('req-too-late');
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ outcome: 'rejected', reason: { code: ALREADY_EXPIRED } });
    expect(h.eks.calls()).toEqual([]);
    expect(h.aws.schedulerEmulator.schedules()).toEqual([]);
    const record = await ledgerOf(h).load('dev', P);
    expect(record.grants).toEqual([]);
    expect(record.baseline).toBeUndefined();
  });
});

describe('expiry is judged when the worker applies a request, not when it was sent', () => {
  let h: Harness;
  // The worker's clock; the test moves it to stand for time spent waiting in the queue.
  let skewMs = 0;
  beforeEach(async () => {
    skewMs = 0;
    h = await startHarness({ now: () => new Date(Date.now() + skewMs) });
  });
  afterEach(async () => {
    await h.close();
  });

  test('a grant that waited in the queue past its expiresAt is rejected and nothing is applied', async () => {
    const P = 'arn:aws:iam::111122223333:role/waited';
    await h.send(devGrant('req-waited', P, { expiresAt: new Date(Date.now() + 1000).toISOString() }));
    skewMs = 2000;
    await h.drain();
    expect(h.auditsFor('req-waited')).toMatchObject([
      { outcome: 'rejected', reason: { code: ALREADY_EXPIRED } },
    ]);
    expect(h.eks.calls()).toEqual([]);
    expect(h.aws.schedulerEmulator.schedules()).toEqual([]);
  });

  test('a duration counts from when the grant is applied, so a delayed one still gets its full time', async () => {
    const P = 'arn:aws:iam::111122223333:role/delayed';
    const HOUR = 60 * 60 * 1000;
    const sentAt = Date.now();
    await h.send(devGrant('req-delayed', P, { duration: 'PT1H' }));
    skewMs = 2 * HOUR;
    await h.drain();
    const [audit] = h.auditsFor('req-delayed');
    expect(audit?.outcome).toBe('granted');
    const expiresAt = Date.parse(audit?.expiresAt ?? '');
    // One hour from when the worker applied it (two hours after it was sent), not from the send.
    expect(expiresAt).toBeGreaterThanOrEqual(sentAt + 3 * HOUR);
    expect(expiresAt).toBeLessThanOrEqual(Date.parse(audit?.at ?? '') + HOUR);
    expect(h.eks.snapshot('dev')).toHaveLength(1);
  });
});
