/**
 * Cross-account grants (issue 13 items 2, 3, 5) over loopback HTTP: the real worker assumes the target
 * role through the local STS (real @aws-sdk/client-sts), and the EKS emulator keeps the staging account
 * and region apart by the session's credentials, so an entry can only land in staging if the worker
 * really acted with the target role's credentials.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, test } from 'vitest';
import { scheduleName } from '../../functions/adapters/scheduler.js';
import { type GuardrailPolicy, validatePolicy } from '../../functions/core/policy.js';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { auditsOnceThere, eksWrites } from '../helpers/expiry.js';
import { EDIT, fixture, ns, VIEW } from '../helpers/fixtures.js';
import {
  createTargetRole,
  type Harness,
  STAGING,
  startHarness,
  TARGET_ROLE_ARN,
} from '../helpers/harness.js';

const TEAM_A = 'arn:aws:iam::111122223333:role/team-a-dev';
const STAGING_ARN = 'arn:aws:eks:eu-west-1:444455556666:cluster/staging';
const STAGING_KEY = '444455556666:eu-west-1:staging';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const stagingGrant = (requestId = 'req-stg-view-1', extra: Record<string, unknown> = {}) => ({
  ...fixture('dev-view-grant'),
  requestId,
  clusterName: 'staging',
  ...extra,
});
const stagingRevoke = (requestId: string, grantId: string) => ({
  ...fixture('dev-view-revoke'),
  requestId,
  clusterName: 'staging',
  grantId,
});

function harness(): Harness {
  if (!h) throw new Error('no harness');
  return h;
}
const stagingEntries = () => harness().eks.snapshot('staging', STAGING);
const assumeCalls = () =>
  harness()
    .sts.calls()
    .filter((c) => c.action === 'AssumeRole');

describe('cross-account clusters through the target role', () => {
  test('grants on staging in its own account and region, audits its ARN and keys the ledger with account and region', async () => {
    h = await startHarness();
    await h.send(stagingGrant());
    await h.drain();

    expect(stagingEntries()).toMatchObject([
      {
        principalArn: TEAM_A,
        kubernetesGroups: ['team-a-readers'],
        tags: { [MANAGED_TAG_KEY]: 'true' },
        policies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }],
      },
    ]);
    // The home account-region's clusters are untouched, and every write went to staging's.
    expect(h.eks.snapshot('dev')).toEqual([]);
    expect(eksWrites(h).every((c) => c.account === STAGING.account && c.region === STAGING.region)).toBe(
      true,
    );
    expect(h.auditsFor('req-stg-view-1')).toMatchObject([
      { outcome: 'granted', clusterName: 'staging', clusterArn: STAGING_ARN },
    ]);
    const item = await h.aws.dynamodb.send(
      new GetItemCommand({
        TableName: 'grants',
        Key: { pk: { S: `P#${STAGING_KEY}#${TEAM_A}` }, sk: { S: 'G#req-stg-view-1' } },
      }),
    );
    expect(item.Item?.status?.S).toBe('active');
    expect(assumeCalls()).toMatchObject([{ roleArn: TARGET_ROLE_ARN, status: 200 }]);
  });

  test('credentials are cached per account: a second request assumes no role; a revoke ends the grant', async () => {
    h = await startHarness();
    await h.send(stagingGrant());
    await h.drain();
    await h.send(stagingRevoke('req-stg-revoke-1', 'req-stg-view-1'));
    await h.drain();
    expect(h.auditsFor('req-stg-revoke-1')).toMatchObject([
      { outcome: 'revoked', clusterArn: STAGING_ARN, grantId: 'req-stg-view-1' },
    ]);
    expect(stagingEntries()).toEqual([]);
    expect(assumeCalls()).toHaveLength(1);
  });

  test('a time-boxed grant on staging expires through its schedule', async () => {
    h = await startHarness();
    await h.send(stagingGrant('req-stg-1s', { duration: 'PT1S' }));
    await h.drain();
    expect(stagingEntries()).toHaveLength(1);
    // The schedule's name and the expiry's request id carry the account and region.
    const expiryId = scheduleName('req-stg-1s', STAGING_KEY);
    expect(expiryId).not.toBe(scheduleName('req-stg-1s'));
    expect(h.aws.schedulerEmulator.schedules().map((s) => s.name)).toEqual([expiryId]);
    const [expired] = await auditsOnceThere(h, expiryId);
    expect(expired).toMatchObject({
      outcome: 'expired',
      source: 'expiry',
      clusterName: 'staging',
      clusterArn: STAGING_ARN,
      grantId: 'req-stg-1s',
    });
    expect(stagingEntries()).toEqual([]);
  });

  test("a recreated principal's stale entry on staging is recreated with only our grants", async () => {
    h = await startHarness({ policy: await withStagingRoleRule() });
    h.eks.seedEntry(
      'staging',
      {
        principalArn: TEAM_A,
        kubernetesGroups: ['ops-humans'],
        policies: [{ policyArn: VIEW, accessScope: ns('team-z') }],
      },
      STAGING,
    );
    h.eks.recreatePrincipal(TEAM_A);
    expect(h.eks.isStale('staging', TEAM_A, STAGING)).toBe(true);
    await h.send({
      schemaVersion: 1,
      requestId: 'iam-stg-recreate-1',
      action: 'grant',
      source: 'iam-role-created',
      clusterName: 'staging',
      principalArn: TEAM_A,
      accessPolicies: [{ policyArn: EDIT, accessScope: ns('team-a') }],
      requestedBy: 'arn:aws:iam::111122223333:role/platform-admin',
      principalRecreated: true,
    });
    await h.drain();
    expect(h.auditsFor('iam-stg-recreate-1')).toMatchObject([
      {
        outcome: 'granted',
        severity: 'high',
        clusterArn: STAGING_ARN,
        dropped: {
          kubernetesGroups: ['ops-humans'],
          policies: [{ policyArn: VIEW, accessScope: ns('team-z') }],
        },
      },
    ]);
    expect(stagingEntries()).toMatchObject([
      { kubernetesGroups: [], policies: [{ policyArn: EDIT, accessScope: ns('team-a') }] },
    ]);
    expect(h.eks.isStale('staging', TEAM_A, STAGING)).toBe(false);
  });

  test('a missing target role fails TARGET_ROLE_UNAVAILABLE at once: failed audit, dead-lettered, no EKS call', async () => {
    h = await startHarness({ targetRole: false });
    await h.send(stagingGrant());
    await h.drain();
    const [failed] = h.auditsFor('req-stg-view-1');
    expect(failed).toMatchObject({
      outcome: 'failed',
      clusterArn: STAGING_ARN,
      attempt: 1,
      reason: { code: 'TARGET_ROLE_UNAVAILABLE' },
    });
    expect(failed?.reason?.message).toContain(TARGET_ROLE_ARN);
    expect(h.auditsFor('req-stg-view-1')).toHaveLength(1);
    expect(assumeCalls()).toMatchObject([{ status: 403 }]);
    expect(h.eks.calls().filter((c) => c.account === STAGING.account)).toEqual([]);
    const dlq = await h.dlqBodies();
    expect(dlq.map((b) => JSON.parse(b).requestId)).toEqual(['req-stg-view-1']);

    // Once the role is deployed, the redriven message goes through.
    createTargetRole(h.sts);
    await h.send(stagingGrant('req-stg-view-2'));
    await h.drain();
    expect(h.auditsFor('req-stg-view-2')).toMatchObject([{ outcome: 'granted' }]);
  });

  test('a target role deleted and recreated: the dead session is refused, the worker assumes again and carries on', async () => {
    h = await startHarness();
    await h.send(stagingGrant());
    await h.drain();
    h.sts.deleteRole(TARGET_ROLE_ARN);
    createTargetRole(h.sts);
    await h.send(stagingRevoke('req-stg-revoke-1', 'req-stg-view-1'));
    await h.drain();
    expect(h.auditsFor('req-stg-revoke-1')).toMatchObject([{ outcome: 'revoked' }]);
    expect(stagingEntries()).toEqual([]);
    // The cached session's first call got a 403, then a new session did the work.
    expect(h.eks.calls().some((c) => c.status === 403)).toBe(true);
    expect(assumeCalls()).toHaveLength(2);
  });

  test('many principals refused at once after the role is recreated cost one new AssumeRole, not one each', async () => {
    h = await startHarness();
    await h.send(stagingGrant());
    await h.drain();
    h.sts.deleteRole(TARGET_ROLE_ARN);
    createTargetRole(h.sts);
    // Ten principals in one batch, each in its own FIFO group: their first calls all carry the dead session.
    const principals = Array.from({ length: 10 }, (_, i) => `arn:aws:iam::111122223333:role/team-a-ci-${i}`);
    for (const [i, principalArn] of principals.entries()) {
      await h.send(stagingGrant(`req-stg-many-${i}`, { principalArn }));
    }
    await h.drain();
    for (const i of principals.keys()) {
      expect(h.auditsFor(`req-stg-many-${i}`), `req-stg-many-${i}`).toMatchObject([{ outcome: 'granted' }]);
    }
    // The first session, and one renewal shared by every principal whose call was refused.
    expect(assumeCalls()).toHaveLength(2);
  });
});

/** The sample policy, with an iam-role-created rule on staging (for the recreated-role path). */
async function withStagingRoleRule(): Promise<GuardrailPolicy> {
  const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
    clusters: Record<string, { rules: Record<string, unknown> }>;
  };
  const staging = doc.clusters.staging;
  if (!staging) throw new Error('the sample policy has no staging cluster');
  staging.rules['iam-role-created'] = {
    allowedPolicies: ['AmazonEKSEditPolicy'],
    scopeTypes: ['namespace'],
    namespacePatterns: ['team-*'],
    allowedAccounts: ['111122223333'],
  };
  return validatePolicy(doc);
}
