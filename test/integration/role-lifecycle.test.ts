/**
 * CloudTrail IAM events end to end: the role-lifecycle intake enqueues onto the harness's requests queue
 * (local SQS over HTTP) and keeps its role records in the ledger table (dynalite); the real grant worker,
 * driven by the SQS runner, applies them to the EKS emulator.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { ns, VIEW } from '../helpers/fixtures.js';
import { captureLogger, type Harness, startHarness } from '../helpers/harness.js';
import { createRoleIntake, type RoleIntake } from '../helpers/intakes.js';

const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
const TEAM_A_CI = 'arn:aws:iam::111122223333:role/team-a-ci';

function sample(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../../events/cloudtrail/${name}.json`, import.meta.url), 'utf8'));
}

describe('role lifecycle intake → queue → worker → EKS', () => {
  let h: Harness;
  let logger: ReturnType<typeof captureLogger>;
  let intake: RoleIntake;

  beforeEach(async () => {
    h = await startHarness();
    logger = captureLogger();
    intake = createRoleIntake(h, await loadPolicyFile(EXAMPLE_POLICY_PATH), logger);
  });
  afterEach(async () => {
    await h.close();
  });

  const entry = (cluster: string, principalArn: string) =>
    h.eks.snapshot(cluster).find((e) => e.principalArn === principalArn);
  const logged = () => logger.lines.map((l) => `${l.level}: ${l.message}`);

  test('a CreateRole with a mapping tag ends in the mapped access entry', async () => {
    const result = await intake(sample('create-role-tagged'));
    expect(result.requests.map((r) => [r.action, r.clusterName, r.principalRecreated])).toEqual([
      ['grant', 'dev', true],
    ]);
    await h.drain();
    expect(entry('dev', TEAM_A_CI)).toMatchObject({
      principalArn: TEAM_A_CI,
      tags: { [MANAGED_TAG_KEY]: 'true' },
      policies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }],
    });
    expect(entry('prod', TEAM_A_CI)).toBeUndefined();
    expect(h.auditsFor('iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01-dev')).toMatchObject([
      { outcome: 'granted', source: 'iam-role-created', principalArn: TEAM_A_CI },
    ]);
  });

  test('a DeleteRole then removes the entry', async () => {
    await intake(sample('create-role-tagged'));
    await h.drain();
    expect(entry('dev', TEAM_A_CI)).toBeDefined();

    const result = await intake(sample('delete-role'));
    expect(result.requests.map((r) => [r.action, r.clusterName, r.grantId])).toEqual([
      ['revoke', 'dev', undefined],
      ['revoke', 'prod', undefined],
      // Every cluster of the policy, including the one in another account (through its target role).
      ['revoke', 'staging', undefined],
    ]);
    await h.drain();
    expect(entry('dev', TEAM_A_CI)).toBeUndefined();
    expect(h.auditsFor('iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b07-dev')).toMatchObject([
      { outcome: 'revoked' },
    ]);
  });

  test('a role that matches no mapping changes nothing and says so in the log', async () => {
    const before = { dev: h.eks.snapshot('dev'), prod: h.eks.snapshot('prod') };
    const result = await intake(sample('create-role-unmatched'));
    expect(result).toEqual({ outcome: 'nothing', requests: [], rejections: [] });
    expect(await h.queueDepth()).toBe(0);
    await h.drain();
    expect({ dev: h.eks.snapshot('dev'), prod: h.eks.snapshot('prod') }).toEqual(before);
    expect(h.audits()).toEqual([]);
    expect(logged()).toContain('info: role lambda-image-resizer matched no mapping; nothing to grant');
  });

  test('a role created under a mapped path gets the path mapping, with the path in its ARN', async () => {
    await intake(sample('create-role-path'));
    await h.drain();
    expect(entry('dev', 'arn:aws:iam::111122223333:role/eks/dev/view/ci-reader')?.policies).toEqual([
      { policyArn: VIEW, accessScope: ns('team-shared') },
    ]);
  });

  test('TagRole changes the access the tag maps; UntagRole takes it away', async () => {
    await intake(sample('create-role-tagged'));
    await h.drain();
    await intake(sample('tag-role'));
    await h.drain();
    expect(entry('dev', TEAM_A_CI)?.policies).toEqual([{ policyArn: EDIT, accessScope: ns('team-a') }]);

    await intake(sample('untag-role'));
    await h.drain();
    expect(entry('dev', TEAM_A_CI)).toBeUndefined();
  });

  test('a failed CreateRole is ignored, and the log says why', async () => {
    const result = await intake(sample('create-role-failed'));
    expect(result).toEqual({ outcome: 'ignored', requests: [], rejections: [] });
    expect(await h.queueDepth()).toBe(0);
    expect(logged()).toContain(
      'info: ignoring CloudTrail event: CreateRole failed with EntityAlreadyExistsException (Role with name team-a-ci already exists.); IAM did not change',
    );
  });

  test('a redelivered event enqueues nothing new', async () => {
    await intake(sample('create-role-tagged'));
    await h.drain();
    const again = await intake(sample('create-role-tagged'));
    expect(again).toEqual({ outcome: 'nothing', requests: [], rejections: [] });
    expect(await h.queueDepth()).toBe(0);
    expect(logged().at(-1)).toMatch(/CreateRole 4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01 was already applied$/);
  });

  test('a CreateRole by an untrusted caller enqueues nothing and is audited rejected UNTRUSTED_ACTOR, severity high', async () => {
    const result = await intake(sample('create-role-untrusted'));
    expect(result.outcome).toBe('rejected');
    expect(result.requests).toEqual([]);
    expect(await h.queueDepth()).toBe(0);
    await h.drain();
    expect(h.eks.snapshot('dev')).toEqual([]);
    expect(h.auditsFor('iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b08-dev')).toMatchObject([
      {
        outcome: 'rejected',
        severity: 'high',
        source: 'iam-role-created',
        principalArn: 'arn:aws:iam::111122223333:role/mallory-ci',
        requestedBy: 'arn:aws:iam::111122223333:user/mallory',
        reason: { code: 'UNTRUSTED_ACTOR' },
      },
    ]);
    // A redelivery is a replay: it audits nothing new.
    await intake(sample('create-role-untrusted'));
    expect(h.auditsFor('iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b08-dev')).toHaveLength(1);
  });

  test('events for one role handled at the same time both land, one after the other', async () => {
    await intake(sample('create-role-tagged'));
    const tagOther = structuredClone(sample('tag-role')) as { detail: Record<string, unknown> };
    tagOther.detail.eventID = 'concurrent-tag-0001';
    tagOther.detail.requestParameters = { roleName: 'team-a-ci', tags: [{ key: 'costcenter', value: '42' }] };
    const results = await Promise.all([intake(sample('tag-role')), intake(tagOther)]);
    // The loser of the race re-sends the winner's outbox (same ids, so SQS drops the copies) before planning.
    const distinct = new Map(results.flatMap((r) => r.requests).map((r) => [r.requestId, r.action]));
    expect([...distinct.values()]).toEqual(['grant', 'revoke']);
    await h.drain();
    expect(entry('dev', TEAM_A_CI)?.policies).toEqual([{ policyArn: EDIT, accessScope: ns('team-a') }]);
  });
});
