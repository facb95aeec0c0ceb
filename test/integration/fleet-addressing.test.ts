/**
 * Fleet addressing on the worker (issue 13 item 1): ledger keys of clusters in the deployment's own
 * account and region keep the single-account form, so data that version wrote is still read and
 * acted on without a migration; an alias may name a cluster by another EKS name.
 */
import { GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, test } from 'vitest';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import { validatePolicy } from '../../functions/core/policy.js';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { fixture, ns, VIEW } from '../helpers/fixtures.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const TEAM_A = 'arn:aws:iam::111122223333:role/team-a-dev';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** The sample policy with `dev` re-declared under another alias that names it explicitly. */
async function aliasedPolicy(): Promise<GuardrailPolicy> {
  const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
    clusters: Record<string, Record<string, unknown>>;
  };
  const { dev, ...rest } = doc.clusters;
  return validatePolicy({ ...doc, clusters: { ...rest, 'team-dev': { ...dev, name: 'dev' } } });
}

describe('ledger keys of home clusters', () => {
  test('a grant on a home cluster is stored under the single-account key P#<name>#<principal>', async () => {
    h = await startHarness();
    await h.send(fixture('dev-view-grant'));
    await h.drain();
    const item = await h.aws.dynamodb.send(
      new GetItemCommand({
        TableName: 'grants',
        Key: { pk: { S: `P#dev#${TEAM_A}` }, sk: { S: 'G#req-dev-view-0001' } },
      }),
    );
    expect(JSON.parse(item.Item?.doc?.S ?? '{}')).toMatchObject({
      grantId: 'req-dev-view-0001',
      status: 'active',
    });
  });

  test('items the single-account version wrote are read and acted on: a revoke of an old grant ends it', async () => {
    h = await startHarness();
    // Exactly the items the single-account release wrote for a granted principal (adapters/ledger.ts then).
    const pk = { S: `P#dev#${TEAM_A}` };
    const baseline = { exists: false, kubernetesGroups: [], policies: [] };
    const grant = {
      grantId: 'old-grant-1',
      requestId: 'old-grant-1',
      source: 'ticket',
      policies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['team-a'] } }],
      kubernetesGroups: [],
      status: 'active',
      requestedBy: 'alice@example.com',
      createdAt: '2025-01-01T00:00:00.000Z',
      version: 1,
    };
    await h.aws.dynamodb.send(
      new PutItemCommand({
        TableName: 'grants',
        Item: {
          pk,
          sk: { S: 'BASELINE' },
          managedCluster: { S: 'dev' },
          managedPrincipal: { S: TEAM_A },
          doc: { S: JSON.stringify(baseline) },
        },
      }),
    );
    await h.aws.dynamodb.send(
      new PutItemCommand({
        TableName: 'grants',
        Item: {
          pk,
          sk: { S: 'G#old-grant-1' },
          status: { S: 'active' },
          version: { N: '1' },
          doc: { S: JSON.stringify(grant) },
        },
      }),
    );
    h.eks.seedEntry('dev', {
      principalArn: TEAM_A,
      tags: { [MANAGED_TAG_KEY]: 'true' },
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });

    await h.send({
      schemaVersion: 1,
      requestId: 'revoke-old-1',
      action: 'revoke',
      source: 'ticket',
      clusterName: 'dev',
      principalArn: TEAM_A,
      grantId: 'old-grant-1',
      requestedBy: 'alice@example.com',
    });
    await h.drain();
    expect(h.auditsFor('revoke-old-1')).toMatchObject([{ outcome: 'revoked', grantId: 'old-grant-1' }]);
    expect(h.eks.snapshot('dev')).toEqual([]);
  });

  test('an alias naming another EKS cluster acts on that cluster and keys the ledger by its name', async () => {
    h = await startHarness({ policy: await aliasedPolicy() });
    await h.send({ ...fixture('dev-view-grant'), clusterName: 'team-dev' });
    await h.drain();
    expect(h.auditsFor('req-dev-view-0001')).toMatchObject([{ outcome: 'granted', clusterName: 'team-dev' }]);
    expect(h.eks.snapshot('dev')).toMatchObject([{ principalArn: TEAM_A }]);
    const scan = await h.aws.dynamodb.send(new ScanCommand({ TableName: 'grants' }));
    expect(new Set(scan.Items?.map((i) => i.pk?.S))).toEqual(new Set([`P#dev#${TEAM_A}`]));
  });
});
