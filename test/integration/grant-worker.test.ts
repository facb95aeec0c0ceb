import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { auditRecordJsonSchema } from '../../functions/core/audit-schema.js';
import { validatePolicy } from '../../functions/core/policy.js';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { accepts } from '../helpers/ajv.js';
import { EDIT, fixture, fixtureBody, ns, VIEW } from '../helpers/fixtures.js';
import { eksWrites, type Harness, startHarness } from '../helpers/harness.js';

const TEAM_A = 'arn:aws:iam::111122223333:role/team-a-dev';

describe('grant worker against the EKS emulator over HTTP', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    // Whatever happened, every record published is a valid AuditRecord v1.
    for (const record of h.audits()) expect(accepts(auditRecordJsonSchema(), record)).toBe(true);
    await h.close();
  });

  const writes = () => eksWrites(h);

  test('grants a new principal: creates a tagged entry, associates the policy and audits `granted`', async () => {
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    const [entry] = h.eks.snapshot('dev');
    expect(entry).toMatchObject({
      principalArn: TEAM_A,
      kubernetesGroups: ['team-a-readers'],
      tags: { [MANAGED_TAG_KEY]: 'true' },
      policies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }],
    });
    const [audit] = h.auditsFor('req-dev-view-0001');
    expect(audit).toMatchObject({
      outcome: 'granted',
      severity: 'normal',
      clusterName: 'dev',
      principalArn: TEAM_A,
      grantId: 'req-dev-view-0001',
      ticket: 'OPS-101',
      approvedBy: ['bob@example.com'],
      attempt: 1,
    });
    expect(audit?.changes.map((c) => c.operation)).toEqual(['CreateAccessEntry', 'AssociateAccessPolicy']);
    expect(audit?.changes[1]).toMatchObject({
      before: null,
      after: ns('team-a', 'team-b'),
      status: 'applied',
    });
  });

  test('changes a scope with a single AssociateAccessPolicy that widens the namespaces', async () => {
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    h.eks.resetCalls();
    await h.send(
      fixture('dev-view-grant', {
        requestId: 'req-dev-view-0002',
        kubernetesGroups: undefined,
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-c') }],
      }),
    );
    await h.drain();
    expect(writes().map((c) => c.operation)).toEqual(['AssociateAccessPolicy']);
    expect(h.eks.snapshot('dev')[0]?.policies).toEqual([
      { policyArn: VIEW, accessScope: ns('team-a', 'team-b', 'team-c') },
    ]);
    expect(h.auditsFor('req-dev-view-0002')[0]?.changes[0]).toMatchObject({
      before: ns('team-a', 'team-b'),
      after: ns('team-a', 'team-b', 'team-c'),
    });
  });

  test('merges groups into an existing entry and keeps its username and other groups', async () => {
    h.eks.seedEntry('dev', { principalArn: TEAM_A, kubernetesGroups: ['ops-humans'], username: 'team-a' });
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    const [entry] = h.eks.snapshot('dev');
    expect(entry?.kubernetesGroups).toEqual(['ops-humans', 'team-a-readers']);
    expect(entry?.username).toBe('team-a');
    expect(entry?.tags[MANAGED_TAG_KEY]).toBeUndefined();
  });

  test('an identical repeat makes no write call and is audited `unchanged`', async () => {
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    h.eks.resetCalls();
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    expect(writes()).toEqual([]);
    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual(['granted', 'unchanged']);
  });

  test('a grant replayed after its revoke does not bring the access back', async () => {
    await h.send(fixture('dev-view-grant'));
    await h.send(fixture('dev-view-revoke'));
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    expect(h.eks.snapshot('dev')).toEqual([]);
    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual(['granted', 'unchanged']);
  });

  test('duplicates of one message in a batch converge to one state with one audit record each', async () => {
    const body = JSON.stringify(fixture('dev-view-grant'));
    const response = await h.invoke([body, body, body]);
    expect(response.batchItemFailures).toEqual([]);
    expect(h.eks.snapshot('dev')).toHaveLength(1);
    expect(writes().map((c) => c.operation)).toEqual(['CreateAccessEntry', 'AssociateAccessPolicy']);
    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual([
      'granted',
      'unchanged',
      'unchanged',
    ]);
  });

  test('a revoke removes exactly the revoked grant and deletes the entry this system created', async () => {
    await h.send(fixture('dev-view-grant'));
    await h.send(fixture('dev-view-revoke'));
    await h.drain();
    expect(h.eks.snapshot('dev')).toEqual([]);
    const revoke = h.auditsFor(fixture('dev-view-revoke').requestId)[0];
    expect(revoke).toMatchObject({ outcome: 'revoked', grantId: 'req-dev-view-0001' });
    expect(revoke?.changes.map((c) => c.operation)).toEqual(['DeleteAccessEntry']);
  });

  test('a revoke never removes access the principal had before', async () => {
    h.eks.seedEntry('dev', {
      principalArn: TEAM_A,
      kubernetesGroups: ['team-a-readers'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    await h.send(fixture('dev-view-grant'));
    await h.send(fixture('dev-view-revoke'));
    await h.drain();
    expect(h.eks.snapshot('dev')[0]).toMatchObject({
      kubernetesGroups: ['team-a-readers'],
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
  });

  test('a revoke by name narrows only what it names', async () => {
    await h.send(fixture('dev-view-grant'));
    await h.send(fixture('dev-edit-grant', { principalArn: TEAM_A }));
    await h.send({
      schemaVersion: 1,
      requestId: 'req-revoke-team-b',
      action: 'revoke',
      source: 'ticket',
      clusterName: 'dev',
      principalArn: TEAM_A,
      accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-b') }],
    });
    await h.drain();
    const policies = h.eks.snapshot('dev')[0]?.policies;
    expect(policies?.find((p) => p.policyArn === VIEW)?.accessScope).toEqual(ns('team-a'));
    expect(policies?.find((p) => p.policyArn === EDIT)).toBeDefined();
  });

  test.each([
    ['invalid-assumed-role', 'ASSUMED_ROLE_ARN'],
    ['invalid-system-group', 'SYSTEM_GROUP'],
    ['invalid-namespace-missing', 'NAMESPACES_REQUIRED'],
    ['invalid-unknown-field', 'UNKNOWN_FIELD'],
  ])('rejects the %s sample with %s, acknowledges it and calls no EKS API', async (name, code) => {
    await h.send(JSON.parse(fixtureBody(name)));
    await h.drain();
    expect(h.eks.calls()).toEqual([]);
    expect(h.audits()).toHaveLength(1);
    expect(h.audits()[0]).toMatchObject({ outcome: 'rejected', reason: { code } });
    expect(h.audits()[0]?.reason?.message.length).toBeGreaterThan(20);
    expect(await h.queueDepth()).toBe(0);
    expect(await h.dlqBodies()).toEqual([]);
  });

  test.each([
    ['MALFORMED_JSON', '{"schemaVersion": 1,'],
    // Invalid action and source: the audit record must still match its schema (checked after each test).
    ['INVALID_ACTION', JSON.stringify({ ...fixture('dev-view-grant'), source: 'hacker', action: 'pwn' })],
    ['NOT_AN_OBJECT', '[1,2,3]'],
    ['BODY_TOO_LARGE', JSON.stringify({ ...fixture('dev-view-grant'), reason: 'x'.repeat(20_000) })],
    ['RESERVED_USERNAME', JSON.stringify(fixture('dev-view-grant', { username: 'system:admin' }))],
    [
      'INVALID_NAMESPACE',
      JSON.stringify(
        fixture('dev-view-grant', { accessPolicies: [{ policyArn: VIEW, accessScope: ns('Team_A') }] }),
      ),
    ],
    [
      'INVALID_PRINCIPAL_ARN',
      JSON.stringify(fixture('dev-view-grant', { principalArn: 'arn:aws:iam::1111:role/x' })),
    ],
    [
      'POLICY_DENIED',
      JSON.stringify(
        fixture('dev-view-grant', {
          accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }],
        }),
      ),
    ],
    [
      'POLICY_DENIED',
      JSON.stringify(fixture('dev-view-grant', { principalArn: 'arn:aws:iam::999999999999:role/outsider' })),
    ],
  ])('rejects a body with %s and calls no EKS API', async (code, body) => {
    const response = await h.invoke([body]);
    expect(response.batchItemFailures).toEqual([]);
    expect(h.eks.calls()).toEqual([]);
    expect(h.audits()[0]).toMatchObject({ outcome: 'rejected', reason: { code } });
  });

  test('recovers from 5xx and throttling through SDK retries', async () => {
    h.eks.setFaults({
      errorSequence: [
        { operation: 'CreateAccessEntry', status: 500, count: 2 },
        { operation: 'AssociateAccessPolicy', status: 429, count: 1 },
      ],
    });
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual(['granted']);
    expect(h.eks.calls().filter((c) => c.status >= 429).length).toBe(3);
    expect(h.eks.snapshot('dev')).toHaveLength(1);
  });

  test('retries the eventual-consistency 404 that follows a create', async () => {
    h.eks.setFaults({ postCreateNotFoundMs: 400 });
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual(['granted']);
    expect(h.eks.calls().some((c) => c.status === 404 && c.operation === 'AssociateAccessPolicy')).toBe(true);
    expect(h.eks.snapshot('dev')[0]?.policies).toHaveLength(1);
  });

  test('returns a message whose faults outlast the invocation and publishes `failed` on the last attempt', async () => {
    h.eks.setFaults({ errorRate: { AssociateAccessPolicy: 1 } });
    await h.send(fixture('dev-view-grant'));
    await h.drain(60_000);
    const audits = h.auditsFor('req-dev-view-0001');
    expect(audits.map((a) => a.outcome)).toEqual(['failed']);
    expect(audits[0]).toMatchObject({ attempt: 3, reason: { code: 'EKS_UNAVAILABLE' } });
    expect(await h.dlqBodies()).toHaveLength(1);
    // Nothing half-applied: the entry created on the way is rolled back.
    expect(h.eks.snapshot('dev')).toEqual([]);
  });
});

describe('grant worker: recreated roles and revoke rights', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    for (const record of h.audits()) expect(accepts(auditRecordJsonSchema(), record)).toBe(true);
    await h.close();
  });

  const writes = () => eksWrites(h);

  const roleGrant = (requestId: string) => ({
    schemaVersion: 1 as const,
    requestId,
    action: 'grant' as const,
    source: 'iam-role-created' as const,
    clusterName: 'dev',
    principalArn: TEAM_A,
    accessPolicies: [{ policyArn: EDIT, accessScope: ns('team-a') }],
    requestedBy: 'arn:aws:iam::111122223333:role/platform-admin',
    principalRecreated: true,
  });

  test("a recreated role's entry keeps only our active grants; foreign access is dropped and audited high", async () => {
    // The dead role had access someone else gave it, and a ticket grant of ours.
    h.eks.seedEntry('dev', {
      principalArn: TEAM_A,
      kubernetesGroups: ['ops-humans'],
      username: 'old-name',
      policies: [{ policyArn: VIEW, accessScope: ns('team-z') }],
      tags: { owner: 'someone' },
    });
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    h.eks.recreatePrincipal(TEAM_A);
    await h.send(roleGrant('iam-recreate-1'));
    await h.drain();

    const [entry] = h.eks.snapshot('dev');
    expect(entry).toMatchObject({
      kubernetesGroups: ['team-a-readers'],
      tags: { owner: 'someone', [MANAGED_TAG_KEY]: 'true' },
      policies: [
        { policyArn: EDIT, accessScope: ns('team-a') },
        { policyArn: VIEW, accessScope: ns('team-a', 'team-b') },
      ],
    });
    expect(entry?.username).not.toBe('old-name');
    expect(h.eks.isStale('dev', TEAM_A)).toBe(false);
    const [audit] = h.auditsFor('iam-recreate-1');
    expect(audit).toMatchObject({
      outcome: 'granted',
      severity: 'high',
      dropped: {
        kubernetesGroups: ['ops-humans'],
        policies: [{ policyArn: VIEW, accessScope: ns('team-z') }],
        username: 'old-name',
      },
    });
    // The new role's baseline is empty, so once our grants end the entry we created goes.
    await h.send(fixture('dev-view-revoke'));
    await h.send({
      ...roleGrant('iam-recreate-r'),
      action: 'revoke',
      accessPolicies: undefined,
      principalRecreated: undefined,
      grantId: 'iam-recreate-1',
    });
    await h.drain();
    expect(h.eks.snapshot('dev')).toEqual([]);
  });

  test('a ticket revoke of an active break-glass grant is REVOKE_NOT_ALLOWED; the break-glass route may end it', async () => {
    const bg = fixture('prod-break-glass');
    await h.send(bg);
    await h.drain();
    h.eks.resetCalls();
    const revoke = (requestId: string, source: 'ticket' | 'break-glass') => ({
      schemaVersion: 1 as const,
      requestId,
      action: 'revoke' as const,
      source,
      clusterName: 'prod',
      principalArn: bg.principalArn,
      grantId: bg.requestId,
      requestedBy: 'carol@example.com',
    });
    await h.send(revoke('ticket-revoke-bg', 'ticket'));
    await h.drain();
    expect(h.auditsFor('ticket-revoke-bg')[0]).toMatchObject({
      outcome: 'rejected',
      reason: { code: 'REVOKE_NOT_ALLOWED' },
    });
    expect(writes()).toEqual([]);
    expect(h.eks.snapshot('prod')).toHaveLength(1);

    await h.send(revoke('bg-done-early', 'break-glass'));
    await h.drain();
    expect(h.auditsFor('bg-done-early')[0]).toMatchObject({
      outcome: 'revoked',
      severity: 'high',
      endedBy: { source: 'break-glass', requestId: 'bg-done-early', requestedBy: 'carol@example.com' },
    });
    expect(h.eks.snapshot('prod')).toEqual([]);
  });
});

describe('grant worker: permanent EKS errors', () => {
  let h: Harness;
  beforeEach(async () => {
    const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as { clusters: Record<string, unknown> };
    // A cluster the policy knows but EKS does not: EKS answers ResourceNotFoundException.
    doc.clusters.ghost = doc.clusters.dev;
    h = await startHarness({ policy: validatePolicy(doc) });
  });
  afterEach(async () => {
    await h.close();
  });

  test('sends a permanent EKS error to the DLQ at once with a `failed` audit', async () => {
    await h.send(fixture('dev-view-grant', { clusterName: 'ghost' }));
    await h.drain();
    const audits = h.auditsFor('req-dev-view-0001');
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ outcome: 'failed', attempt: 1, reason: { code: 'CLUSTER_NOT_FOUND' } });
    const dlq = await h.dlqBodies();
    expect(dlq.map((b) => JSON.parse(b).requestId)).toEqual(['req-dev-view-0001']);
  });
});
