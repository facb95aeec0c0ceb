/**
 * adapters/target-clients.ts against the local STS over HTTP (the real @aws-sdk/client-sts): sessions
 * cached per account, and renewal after EKS refused a session bounded by a cool-down, so calls refused
 * together (or a role refusing every session) do not each assume the role again.
 */
import { EKSClient } from '@aws-sdk/client-eks';
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TargetClients } from '../../functions/adapters/target-clients.js';
import type { ClusterTarget } from '../../functions/core/cluster-target.js';
import { type StsEmulator, startSts } from '../../infra/local/sts.js';

const HOME = { account: '123456789012', region: 'us-east-1' };
const STAGING: ClusterTarget = {
  alias: 'staging',
  name: 'staging',
  account: '444455556666',
  region: 'eu-west-1',
};
const ROLE = 'arn:aws:iam::444455556666:role/eks-access-grants-test-target';

describe('target-role clients', () => {
  let sts: StsEmulator;
  let stsClient: STSClient;
  const made: EKSClient[] = [];
  beforeAll(async () => {
    sts = await startSts();
    sts.createRole(ROLE);
    stsClient = new STSClient({
      region: 'us-east-1',
      endpoint: sts.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });
  afterAll(async () => {
    for (const c of made) c.destroy();
    stsClient.destroy();
    await sts.close();
  });

  const assumes = () => sts.calls().filter((c) => c.action === 'AssumeRole' && c.status === 200).length;

  test('a refused session is renewed once per cool-down, however many calls were refused', async () => {
    let now = Date.now();
    const home = new EKSClient({ region: HOME.region });
    made.push(home);
    const clients = new TargetClients({
      home: HOME,
      accounts: [STAGING.account],
      roleName: 'eks-access-grants-test-target',
      sessionName: 'test',
      sts: stsClient,
      homeClient: home,
      eks: { maxAttempts: 1 },
      now: () => now,
    });
    const credentialsOf = async () => {
      const c = clients.clientFor(STAGING);
      made.push(c);
      return (await c.config.credentials()).accessKeyId;
    };
    const before = assumes();
    const first = await credentialsOf();
    expect(assumes() - before).toBe(1);
    // Five calls refused together: the first renewal is shared.
    for (let i = 0; i < 5; i++) expect(clients.renew(STAGING)).toBe(true);
    const second = await credentialsOf();
    expect(second).not.toBe(first);
    expect(assumes() - before).toBe(2);
    // Still inside the cool-down: the renewed session is kept, not replaced.
    now += 9_000;
    expect(clients.renew(STAGING)).toBe(true);
    expect(await credentialsOf()).toBe(second);
    expect(assumes() - before).toBe(2);
    // After it, a refusal renews again.
    now += 2_000;
    expect(clients.renew(STAGING)).toBe(true);
    expect(await credentialsOf()).not.toBe(second);
    expect(assumes() - before).toBe(3);
    // The deployment's own account has nothing to renew.
    expect(clients.renew({ ...STAGING, account: HOME.account })).toBe(false);
  });
});
