// The EKS emulator seen through the real @aws-sdk/client-eks over loopback HTTP: if these pass, the
// adapters and the grant-worker can trust the emulator's wire format, semantics and faults.
import {
  AssociateAccessPolicyCommand,
  CreateAccessEntryCommand,
  DeleteAccessEntryCommand,
  DescribeAccessEntryCommand,
  DescribeClusterCommand,
  DisassociateAccessPolicyCommand,
  EKSClient,
  type EKSClientConfig,
  type EKSServiceException,
  ListAccessEntriesCommand,
  ListAccessPoliciesCommand,
  ListAssociatedAccessPoliciesCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
// The retry utilities the client itself uses; imported to check its classification, not to replace it.
import { ConfiguredRetryStrategy, isThrottlingError } from '@smithy/core/retry';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EksEmulator, startEksEmulator } from '../../infra/local/eks-emulator.js';

const ACCOUNT = '111122223333';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/team/dev-role`;
const USER = `arn:aws:iam::${ACCOUNT}:user/alice`;
const policy = (name: string) => `arn:aws:eks::aws:cluster-access-policy/${name}`;
const VIEW = policy('AmazonEKSViewPolicy');
const EDIT = policy('AmazonEKSEditPolicy');
const ADMIN = policy('AmazonEKSAdminPolicy');

let emu: EksEmulator;
const clients: EKSClient[] = [];

function client(extra: Partial<EKSClientConfig> = {}): EKSClient {
  const c = new EKSClient({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
    ...extra,
  });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<EKSServiceException> {
  try {
    await p;
  } catch (err) {
    return err as EKSServiceException;
  }
  throw new Error('expected the call to fail');
}

beforeEach(async () => {
  emu = await startEksEmulator({
    accountId: ACCOUNT,
    clusters: [{ name: 'dev' }, { name: 'legacy', authenticationMode: 'CONFIG_MAP' }],
    entryQuota: 5,
  });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await emu.close();
});

describe('access entries', () => {
  it('creates a STANDARD entry with default usernames and describes it by percent-encoded ARN', async () => {
    const eks = client();
    const created = await eks.send(
      new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE, kubernetesGroups: ['viewers'] }),
    );
    expect(created.accessEntry).toMatchObject({
      clusterName: 'dev',
      principalArn: ROLE,
      kubernetesGroups: ['viewers'],
      type: 'STANDARD',
      // The role's path is dropped in the STS session ARN EKS maps it to.
      username: `arn:aws:sts::${ACCOUNT}:assumed-role/dev-role/{{SessionName}}`,
    });
    expect(created.accessEntry?.accessEntryArn).toMatch(
      new RegExp(
        `^arn:aws:eks:us-east-1:${ACCOUNT}:access-entry/dev/role/${ACCOUNT}/dev-role/[0-9a-f-]{36}$`,
      ),
    );
    expect(created.accessEntry?.createdAt).toBeInstanceOf(Date);
    expect(Math.abs(created.accessEntry!.createdAt!.getTime() - Date.now())).toBeLessThan(5000);

    const described = await eks.send(
      new DescribeAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }),
    );
    expect(described.accessEntry).toEqual(created.accessEntry);

    const user = await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: USER }));
    expect(user.accessEntry?.username).toBe(USER);
    expect(user.accessEntry?.kubernetesGroups).toEqual([]);
  });

  it('replaces groups and username on update: omitted fields reset to their defaults', async () => {
    const eks = client();
    await eks.send(
      new CreateAccessEntryCommand({
        clusterName: 'dev',
        principalArn: ROLE,
        kubernetesGroups: ['a', 'b'],
        username: 'dev-user',
      }),
    );
    const replaced = await eks.send(
      new UpdateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE, kubernetesGroups: ['c'] }),
    );
    expect(replaced.accessEntry?.kubernetesGroups).toEqual(['c']);
    expect(replaced.accessEntry?.username).toBe(
      `arn:aws:sts::${ACCOUNT}:assumed-role/dev-role/{{SessionName}}`,
    );

    const reset = await eks.send(new UpdateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(reset.accessEntry?.kubernetesGroups).toEqual([]);
  });

  it('drops all associated policies when the entry is deleted', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    for (const policyArn of [VIEW, EDIT]) {
      await eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: ROLE,
          policyArn,
          accessScope: { type: 'cluster' },
        }),
      );
    }
    await eks.send(new DeleteAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(emu.snapshot('dev')).toEqual([]);

    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const listed = await eks.send(
      new ListAssociatedAccessPoliciesCommand({ clusterName: 'dev', principalArn: ROLE }),
    );
    expect(listed.associatedAccessPolicies).toEqual([]);
  });

  it('answers a replayed create with the same clientRequestToken with the entry instead of a conflict', async () => {
    const eks = client();
    const input = { clusterName: 'dev', principalArn: ROLE, clientRequestToken: 'token-1' };
    const first = await eks.send(new CreateAccessEntryCommand(input));
    const replay = await eks.send(new CreateAccessEntryCommand(input));
    expect(replay.accessEntry?.accessEntryArn).toBe(first.accessEntry?.accessEntryArn);
  });

  it('rejects a second entry for the same principal with ResourceInUseException 409', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(err.name).toBe('ResourceInUseException');
    expect(err.$metadata.httpStatusCode).toBe(409);
  });

  it('rejects a system: group', async () => {
    const err = await failure(
      client().send(
        new CreateAccessEntryCommand({
          clusterName: 'dev',
          principalArn: ROLE,
          kubernetesGroups: ['system:masters'],
        }),
      ),
    );
    expect(err.name).toBe('InvalidParameterException');
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it.each(['system:admin', 'eks:x', 'aws:x', 'amazon:x', 'iam:x'])(
    'rejects the reserved username %s',
    async (username) => {
      const err = await failure(
        client().send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE, username })),
      );
      expect(err.name).toBe('InvalidParameterException');
    },
  );

  it('rejects principals that are not IAM role or user ARNs', async () => {
    const eks = client();
    for (const principalArn of [
      `arn:aws:sts::${ACCOUNT}:assumed-role/dev-role/session`,
      `arn:aws:iam::${ACCOUNT}:group/devs`,
      'not-an-arn',
    ]) {
      const err = await failure(eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn })));
      expect(err.name).toBe('InvalidParameterException');
    }
  });

  it('enforces the per-cluster entry quota with ResourceLimitExceededException', async () => {
    const eks = client();
    for (let i = 0; i < 5; i++) {
      await eks.send(
        new CreateAccessEntryCommand({
          clusterName: 'dev',
          principalArn: `arn:aws:iam::${ACCOUNT}:role/r${i}`,
        }),
      );
    }
    const err = await failure(
      eks.send(
        new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: `arn:aws:iam::${ACCOUNT}:role/r5` }),
      ),
    );
    expect(err.name).toBe('ResourceLimitExceededException');
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it('pages ListAccessEntries with maxResults and nextToken', async () => {
    const eks = client();
    const arns = [0, 1, 2, 3, 4].map((i) => `arn:aws:iam::${ACCOUNT}:role/r${i}`);
    for (const principalArn of arns) emu.seedEntry('dev', { principalArn });
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await eks.send(
        new ListAccessEntriesCommand({ clusterName: 'dev', maxResults: 2, nextToken }),
      );
      seen.push(...(page.accessEntries ?? []));
      nextToken = page.nextToken;
      pages++;
    } while (nextToken);
    expect(pages).toBe(3);
    expect(seen).toEqual(arns);
  });

  it('filters ListAccessEntries by associated policy', async () => {
    emu.seedEntry('dev', {
      principalArn: ROLE,
      policies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }],
    });
    emu.seedEntry('dev', { principalArn: USER });
    const page = await client().send(
      new ListAccessEntriesCommand({ clusterName: 'dev', associatedPolicyArn: VIEW }),
    );
    expect(page.accessEntries).toEqual([ROLE]);
  });

  it('answers ResourceNotFoundException 404 for an unknown cluster', async () => {
    const err = await failure(client().send(new ListAccessEntriesCommand({ clusterName: 'nope' })));
    expect(err.name).toBe('ResourceNotFoundException');
    expect(err.message).toBe('No cluster found for name: nope.');
    expect(err.$metadata.httpStatusCode).toBe(404);
  });

  it('rejects access-entry operations on a CONFIG_MAP cluster with InvalidRequestException', async () => {
    const eks = client();
    const described = await eks.send(new DescribeClusterCommand({ name: 'legacy' }));
    expect(described.cluster).toMatchObject({
      name: 'legacy',
      status: 'ACTIVE',
      accessConfig: { authenticationMode: 'CONFIG_MAP' },
    });
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'legacy', principalArn: ROLE })),
    );
    expect(err.name).toBe('InvalidRequestException');
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it('marks an entry stale when its role is recreated with the same ARN', async () => {
    await client().send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(emu.isStale('dev', ROLE)).toBe(false);
    emu.recreatePrincipal(ROLE);
    expect(emu.isStale('dev', ROLE)).toBe(true);
  });
});

describe('access policies', () => {
  it('lists the AWS-managed access policies', async () => {
    const res = await client().send(new ListAccessPoliciesCommand({}));
    expect(res.accessPolicies?.map((p) => p.name).sort()).toEqual(
      [
        'AmazonEKSAdminPolicy',
        'AmazonEKSAdminViewPolicy',
        'AmazonEKSClusterAdminPolicy',
        'AmazonEKSEditPolicy',
        'AmazonEKSSecretReaderPolicy',
        'AmazonEKSViewPolicy',
      ].sort(),
    );
    for (const p of res.accessPolicies ?? []) expect(p.arn).toBe(policy(p.name!));
  });

  it('replaces the scope when an already-associated policy is associated again', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const first = await eks.send(
      new AssociateAccessPolicyCommand({
        clusterName: 'dev',
        principalArn: ROLE,
        policyArn: EDIT,
        accessScope: { type: 'namespace', namespaces: ['team-a'] },
      }),
    );
    expect(first.associatedAccessPolicy?.associatedAt).toBeInstanceOf(Date);
    const second = await eks.send(
      new AssociateAccessPolicyCommand({
        clusterName: 'dev',
        principalArn: ROLE,
        policyArn: EDIT,
        accessScope: { type: 'namespace', namespaces: ['team-b', 'team-c'] },
      }),
    );
    expect(second).toMatchObject({
      clusterName: 'dev',
      principalArn: ROLE,
      associatedAccessPolicy: {
        policyArn: EDIT,
        accessScope: { type: 'namespace', namespaces: ['team-b', 'team-c'] },
      },
    });
    const listed = await eks.send(
      new ListAssociatedAccessPoliciesCommand({ clusterName: 'dev', principalArn: ROLE }),
    );
    expect(listed.associatedAccessPolicies).toHaveLength(1);
    expect(listed.associatedAccessPolicies?.[0]?.accessScope).toEqual({
      type: 'namespace',
      namespaces: ['team-b', 'team-c'],
    });
  });

  it('answers ResourceNotFoundException when disassociating a policy that is not associated', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const err = await failure(
      eks.send(
        new DisassociateAccessPolicyCommand({ clusterName: 'dev', principalArn: ROLE, policyArn: VIEW }),
      ),
    );
    expect(err.name).toBe('ResourceNotFoundException');
    expect(err.$metadata.httpStatusCode).toBe(404);
  });

  it('disassociates an associated policy addressed by its percent-encoded ARN', async () => {
    emu.seedEntry('dev', {
      principalArn: ROLE,
      policies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }],
    });
    await client().send(
      new DisassociateAccessPolicyCommand({ clusterName: 'dev', principalArn: ROLE, policyArn: VIEW }),
    );
    expect(emu.snapshot('dev')[0]?.policies).toEqual([]);
  });

  it('rejects a namespace scope without namespaces and a cluster scope with namespaces', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    for (const accessScope of [
      { type: 'namespace' as const },
      { type: 'namespace' as const, namespaces: [] },
      { type: 'cluster' as const, namespaces: ['default'] },
    ]) {
      const err = await failure(
        eks.send(
          new AssociateAccessPolicyCommand({
            clusterName: 'dev',
            principalArn: ROLE,
            policyArn: VIEW,
            accessScope,
          }),
        ),
      );
      expect(err.name).toBe('InvalidParameterException');
    }
  });

  it('rejects an unknown policy ARN with InvalidParameterException', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const err = await failure(
      eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: ROLE,
          policyArn: policy('AmazonEKSMadeUpPolicy'),
          accessScope: { type: 'cluster' },
        }),
      ),
    );
    expect(err.name).toBe('InvalidParameterException');
  });

  it('refuses policies and usernames on non-STANDARD entries', async () => {
    const eks = client();
    const node = `arn:aws:iam::${ACCOUNT}:role/node-role`;
    const withUser = await failure(
      eks.send(
        new CreateAccessEntryCommand({
          clusterName: 'dev',
          principalArn: node,
          type: 'EC2_LINUX',
          username: 'x',
        }),
      ),
    );
    expect(withUser.name).toBe('InvalidParameterException');

    await eks.send(
      new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: node, type: 'EC2_LINUX' }),
    );
    const err = await failure(
      eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: node,
          policyArn: VIEW,
          accessScope: { type: 'cluster' },
        }),
      ),
    );
    expect(err.name).toBe('InvalidRequestException');
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it('pages ListAssociatedAccessPolicies with maxResults and nextToken', async () => {
    emu.seedEntry('dev', {
      principalArn: ROLE,
      policies: [VIEW, EDIT, ADMIN].map((policyArn) => ({
        policyArn,
        accessScope: { type: 'cluster' as const },
      })),
    });
    const eks = client();
    const first = await eks.send(
      new ListAssociatedAccessPoliciesCommand({ clusterName: 'dev', principalArn: ROLE, maxResults: 2 }),
    );
    expect(first.associatedAccessPolicies).toHaveLength(2);
    expect(first.nextToken).toBeDefined();
    const second = await eks.send(
      new ListAssociatedAccessPoliciesCommand({
        clusterName: 'dev',
        principalArn: ROLE,
        maxResults: 2,
        nextToken: first.nextToken,
      }),
    );
    expect(second.nextToken).toBeUndefined();
    const all = [...(first.associatedAccessPolicies ?? []), ...(second.associatedAccessPolicies ?? [])];
    expect(all.map((p) => p.policyArn).sort()).toEqual([ADMIN, EDIT, VIEW].sort());
  });
});

describe('control surface', () => {
  it('seeds entries and reports a sorted, deterministic snapshot', () => {
    emu.seedEntry('dev', {
      principalArn: USER,
      kubernetesGroups: ['b', 'a'],
      tags: { owner: 'x' },
      policies: [
        { policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['z', 'y'] } },
        { policyArn: ADMIN, accessScope: { type: 'cluster' } },
      ],
    });
    emu.seedEntry('dev', { principalArn: ROLE });
    expect(emu.snapshot('dev')).toEqual([
      {
        principalArn: ROLE,
        type: 'STANDARD',
        kubernetesGroups: [],
        username: `arn:aws:sts::${ACCOUNT}:assumed-role/dev-role/{{SessionName}}`,
        tags: {},
        policies: [],
      },
      {
        principalArn: USER,
        type: 'STANDARD',
        kubernetesGroups: ['a', 'b'],
        username: USER,
        tags: { owner: 'x' },
        policies: [
          { policyArn: ADMIN, accessScope: { type: 'cluster', namespaces: [] } },
          { policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['y', 'z'] } },
        ],
      },
    ]);
    expect(() => emu.seedEntry('dev', { principalArn: ROLE })).toThrow(/already/);
  });

  it('closes promptly while the SDK holds keep-alive connections', async () => {
    await client().send(new DescribeClusterCommand({ name: 'dev' }));
    const started = performance.now();
    await emu.close();
    expect(performance.now() - started).toBeLessThan(1000);
    emu = await startEksEmulator(); // afterEach closes it again
  });
});

describe('fault injection', () => {
  it('recovers from a 500 sequence through SDK retries and logs every failed call', async () => {
    emu.setFaults({ errorSequence: [{ operation: 'DescribeCluster', status: 500, count: 2 }] });
    const res = await client({ maxAttempts: 3 }).send(new DescribeClusterCommand({ name: 'dev' }));
    expect(res.cluster?.name).toBe('dev');
    expect(res.$metadata.attempts).toBe(3);
    expect(emu.calls().map((c) => [c.operation, c.status])).toEqual([
      ['DescribeCluster', 500],
      ['DescribeCluster', 500],
      ['DescribeCluster', 200],
    ]);
    expect(emu.calls()[0]).toMatchObject({ clusterName: 'dev' });
  });

  it('fails only the configured operation in an error sequence', async () => {
    emu.setFaults({ errorSequence: [{ operation: 'CreateAccessEntry', status: 503, count: 1 }] });
    const eks = client();
    await eks.send(new DescribeClusterCommand({ name: 'dev' }));
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(err.name).toBe('ServiceUnavailableException');
    expect(err.$metadata.httpStatusCode).toBe(503);
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
  });

  it('answers 429 ThrottlingException once the token bucket is empty, which the SDK classifies as throttling', async () => {
    emu.setFaults({ throttle: { ratePerSecond: 0.001, burst: 2 } });
    const eks = client();
    await eks.send(new DescribeClusterCommand({ name: 'dev' }));
    await eks.send(new ListAccessEntriesCommand({ clusterName: 'dev' }));
    const err = await failure(eks.send(new DescribeClusterCommand({ name: 'dev' })));
    expect(err.name).toBe('ThrottlingException');
    expect(err.$metadata.httpStatusCode).toBe(429);
    // The SDK types `cause` as unknown, the classifier as Error; the runtime object is the same.
    expect(isThrottlingError(err as Parameters<typeof isThrottlingError>[0])).toBe(true);
    expect(emu.calls().map((c) => c.status)).toEqual([200, 200, 429]);
  });

  it('lets the standard retry strategy retry a 429', async () => {
    emu.setFaults({ errorSequence: [{ operation: '*', status: 429, count: 1 }] });
    // Zero backoff: the default throttling backoff base is a full second.
    const eks = client({ retryStrategy: new ConfiguredRetryStrategy(2, 0) });
    const res = await eks.send(new DescribeClusterCommand({ name: 'dev' }));
    expect(res.$metadata.attempts).toBe(2);
    expect(emu.calls().map((c) => c.status)).toEqual([429, 200]);
  });

  it('injects ServerException at the configured rate with an injectable RNG', async () => {
    emu.setFaults({ errorRate: { ListAccessPolicies: 1 }, random: () => 0.5 });
    const eks = client();
    const err = await failure(eks.send(new ListAccessPoliciesCommand({})));
    expect(err.name).toBe('ServerException');
    expect(err.$metadata.httpStatusCode).toBe(500);
    await eks.send(new DescribeClusterCommand({ name: 'dev' }));
    emu.setFaults({ errorRate: { '*': 0.4 }, random: () => 0.5 });
    await eks.send(new ListAccessPoliciesCommand({}));
  });

  it('hides a just-created entry for postCreateNotFoundMs, then serves it', async () => {
    emu.setFaults({ postCreateNotFoundMs: 150 });
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const err = await failure(
      eks.send(new DescribeAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(err.name).toBe('ResourceNotFoundException');
    expect(err.message).toContain('The specified principalArn could not be found');
    const assoc = await failure(
      eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: ROLE,
          policyArn: VIEW,
          accessScope: { type: 'cluster' },
        }),
      ),
    );
    expect(assoc.name).toBe('ResourceNotFoundException');
    await new Promise((r) => setTimeout(r, 200));
    const res = await eks.send(new DescribeAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(res.accessEntry?.principalArn).toBe(ROLE);
  });

  it('applies the configured latency to every answer', async () => {
    emu.setFaults({ latencyMs: 120 });
    const eks = client();
    const started = performance.now();
    await eks.send(new DescribeClusterCommand({ name: 'dev' }));
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
    emu.clearFaults();
    const again = performance.now();
    await eks.send(new DescribeClusterCommand({ name: 'dev' }));
    expect(performance.now() - again).toBeLessThan(110);
  });
});
