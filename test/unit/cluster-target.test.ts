import { describe, expect, test } from 'vitest';
import { messageGroupId } from '../../functions/adapters/queue.js';
import { expiryRequest, scheduleName } from '../../functions/adapters/scheduler.js';
import {
  accountOfQueue,
  ClusterDirectory,
  clusterArn,
  clusterKey,
  groupKeys,
} from '../../functions/core/cluster-target.js';
import { ConfigError } from '../../functions/core/errors.js';
import { type GuardrailPolicy, validatePolicy } from '../../functions/core/policy.js';

const HOME = { account: '123456789012', region: 'us-east-1' };
const RULES = {
  ticket: {
    allowedPolicies: ['AmazonEKSViewPolicy'],
    scopeTypes: ['namespace'],
    namespacePatterns: ['team-*'],
    allowedAccounts: ['111122223333'],
  },
};

function policyOf(clusters: Record<string, Record<string, unknown>>): GuardrailPolicy {
  return validatePolicy({
    version: 1,
    clusters: Object.fromEntries(Object.entries(clusters).map(([k, v]) => [k, { rules: RULES, ...v }])),
  });
}

describe('cluster addressing', () => {
  const policy = policyOf({
    dev: {},
    payments: { name: 'payments-prod-01' },
    staging: { account: '444455556666', region: 'eu-west-1' },
    west: { region: 'us-west-2' },
  });
  const directory = new ClusterDirectory(policy, HOME);

  test('an alias defaults to the deployment account and region and to its own name', () => {
    expect(directory.resolve('dev')).toEqual({ alias: 'dev', name: 'dev', ...HOME });
    expect(directory.resolve('payments')).toEqual({ alias: 'payments', name: 'payments-prod-01', ...HOME });
    expect(directory.resolve('staging')).toEqual({
      alias: 'staging',
      name: 'staging',
      account: '444455556666',
      region: 'eu-west-1',
    });
    expect(directory.resolve('unknown')).toBeUndefined();
  });

  test('home clusters keep the single-account key (their EKS name); others carry account and region', () => {
    expect(directory.keyOf('dev')).toBe('dev');
    expect(directory.keyOf('payments')).toBe('payments-prod-01');
    expect(directory.keyOf('staging')).toBe('444455556666:eu-west-1:staging');
    // Same account, other region: still not home (EKS and its rate limits are per account-region).
    expect(directory.keyOf('west')).toBe('123456789012:us-west-2:west');
    expect(directory.fromKey('444455556666:eu-west-1:staging')?.alias).toBe('staging');
    expect(directory.fromKey('payments-prod-01')?.alias).toBe('payments');
  });

  test('only accounts the policy names may be assumed into', () => {
    expect(directory.remoteAccounts()).toEqual(['444455556666']);
  });

  test('the cluster ARN is the one EKS reports, partition from the region', () => {
    const staging = directory.resolve('staging');
    expect(staging && clusterArn(staging)).toBe('arn:aws:eks:eu-west-1:444455556666:cluster/staging');
    expect(clusterArn({ alias: 'c', name: 'c', account: '123456789012', region: 'cn-north-1' })).toBe(
      'arn:aws-cn:eks:cn-north-1:123456789012:cluster/c',
    );
  });

  test('refuses two aliases of one EKS cluster (they would keep two ledgers of one entry)', () => {
    const twice = policyOf({
      dev: {},
      blue: { name: 'dev' },
      eu: { account: HOME.account, region: HOME.region },
    });
    expect(() => new ClusterDirectory(twice, HOME)).toThrow(ConfigError);
    expect(() => new ClusterDirectory(twice, HOME)).toThrow(
      /clusters.blue: is the same EKS cluster as clusters.dev/,
    );
  });

  test('group ids and schedule names of home clusters are those of the single-account version', () => {
    const home = directory.resolve('dev');
    if (!home) throw new Error('dev');
    const principal = 'arn:aws:iam::111122223333:role/a';
    // Pinned: the forms released before fleets; in-flight messages and live schedules keep them.
    expect(messageGroupId(clusterKey(home, HOME), principal)).toBe(
      'f8e7452f46fd38b7a996d724cca9e21290eb719181b26e4c646f1a38b9042342',
    );
    expect(scheduleName('g1', 'dev')).toBe('expiry-711430f6164e93803d93428bc1fab80f41e213bb19768930');
    expect(scheduleName('g1')).toBe('expiry-711430f6164e93803d93428bc1fab80f41e213bb19768930');
    const remote = directory.keyOf('staging');
    expect(scheduleName('g1', remote)).not.toBe(scheduleName('g1'));
    expect(scheduleName('g1', remote)).toMatch(/^expiry-[0-9a-f]{48}$/);
    expect(messageGroupId(remote, principal)).not.toBe(messageGroupId('staging', principal));
    expect(expiryRequest({ clusterName: 'staging', principalArn: principal }, 'g1', remote)).toMatchObject({
      clusterName: 'staging',
      requestId: scheduleName('g1', remote),
    });
  });

  test('reads the deployment account from its queue URL or ARN', () => {
    expect(accountOfQueue('https://sqs.eu-west-1.amazonaws.com/123456789012/requests.fifo')).toBe(
      '123456789012',
    );
    expect(accountOfQueue('http://127.0.0.1:4566/123456789012/requests.fifo')).toBe('123456789012');
    expect(accountOfQueue('arn:aws:sqs:eu-west-1:123456789012:requests.fifo')).toBe('123456789012');
    expect(accountOfQueue('not-a-queue')).toBeUndefined();
    // Producers that cannot tell fall back to the alias, which is right for a single-account policy.
    expect(groupKeys(policy, undefined, 'x')('staging')).toBe('staging');
    expect(groupKeys(policy, 'us-east-1', 'http://h/123456789012/q.fifo')('staging')).toBe(
      '444455556666:eu-west-1:staging',
    );
  });
});

describe('policy: cluster location fields', () => {
  test('accepts name, account and region', () => {
    const p = policyOf({ staging: { name: 'stg-1', account: '444455556666', region: 'eu-west-1' } });
    expect(p.clusters.staging).toMatchObject({ name: 'stg-1', account: '444455556666', region: 'eu-west-1' });
  });

  test('refuses an unquoted account, a malformed region and an invalid EKS name, naming each', () => {
    let message = '';
    try {
      policyOf({ a: { account: 444455556666 }, b: { region: 'EU-WEST-1' }, c: { name: '-bad' } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/clusters\.a\.account: .*quoted/);
    expect(message).toMatch(/clusters\.b\.region/);
    expect(message).toMatch(/clusters\.c\.name/);
  });
});
