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
  it('lists the current catalogue: the aws-cli example plus the newer user-guide policies', async () => {
    // aws-cli awscli/examples/eks/list-access-policies.rst (19 names) and the EKS user guide,
    // "Review access policy permissions" (AIOpsAssistant, ARCRegionSwitchScaling, ClusterInsights,
    // SecretReader).
    const res = await client().send(new ListAccessPoliciesCommand({}));
    expect(res.accessPolicies?.map((p) => p.name).sort()).toEqual(
      [
        'AmazonAIOpsAssistantPolicy',
        'AmazonARCRegionSwitchScalingPolicy',
        'AmazonEKSAdminPolicy',
        'AmazonEKSAdminViewPolicy',
        'AmazonEKSAutoNodePolicy',
        'AmazonEKSBlockStorageClusterPolicy',
        'AmazonEKSBlockStoragePolicy',
        'AmazonEKSClusterAdminPolicy',
        'AmazonEKSClusterInsightsPolicy',
        'AmazonEKSComputeClusterPolicy',
        'AmazonEKSComputePolicy',
        'AmazonEKSEditPolicy',
        'AmazonEKSHybridPolicy',
        'AmazonEKSLoadBalancingClusterPolicy',
        'AmazonEKSLoadBalancingPolicy',
        'AmazonEKSNetworkingClusterPolicy',
        'AmazonEKSNetworkingPolicy',
        'AmazonEKSSecretReaderPolicy',
        'AmazonEKSViewPolicy',
        'AmazonEMRJobPolicy',
        'AmazonSagemakerHyperpodClusterPolicy',
        'AmazonSagemakerHyperpodControllerPolicy',
        'AmazonSagemakerHyperpodSystemNamespacePolicy',
      ].sort(),
    );
    expect(res.nextToken).toBeUndefined();
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
    // aws-controllers-k8s/community#2144 quotes EKS's answer for policy operations on a node entry.
    expect(err.name).toBe('InvalidParameterException');
    expect(err.message).toBe(
      'This operation can only be performed on Access Entries with a type of "STANDARD".',
    );
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

// Issue 10: what real EKS does that the emulator used to get wrong. Each test cites its source.
describe('real EKS behaviour', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const INVALID_PRINCIPAL = 'The specified principalArn is invalid: invalid principal';

  it('calls a just-created role an invalid principal until IAM has propagated, then accepts it', async () => {
    // terraform-aws-eks#2969 quotes the answer; terraform-provider-aws retries exactly this message
    // (internal/service/eks/access_entry.go, RetryWhenIsAErrorMessageContains, 2-minute propagationTimeout).
    emu.setFaults({ iamPropagationMs: 150 });
    emu.createPrincipal(ROLE);
    const eks = client();
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(err.name).toBe('InvalidParameterException');
    expect(err.message).toBe(INVALID_PRINCIPAL);
    expect(err.$metadata.httpStatusCode).toBe(400);
    expect(emu.snapshot('dev')).toEqual([]);
    await sleep(200);
    const res = await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(res.accessEntry?.principalArn).toBe(ROLE);
  });

  it('calls a recreated role invalid for the propagation window, and a deleted one until it exists again', async () => {
    emu.setFaults({ iamPropagationMs: 10_000 });
    const eks = client();
    emu.recreatePrincipal(ROLE);
    expect(
      (await failure(eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }))))
        .message,
    ).toBe(INVALID_PRINCIPAL);
    emu.setFaults({});
    emu.deletePrincipal(USER);
    expect(
      (await failure(eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: USER }))))
        .message,
    ).toBe(INVALID_PRINCIPAL);
    emu.createPrincipal(USER);
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: USER }));
    // Principals the test never created are long-standing: no window applies to them.
    emu.setFaults({ iamPropagationMs: 10_000 });
    await eks.send(
      new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: `arn:aws:iam::${ACCOUNT}:role/old` }),
    );
  });

  it('requires a colon somewhere before {{SessionName}} or {{SessionNameRaw}} in a username', async () => {
    // EKS user guide, "Create access entries": "you can't have a username of john{{SessionName}}. The
    // username would have to be :john{{SessionName}} or jo:hn{{SessionName}}."
    const eks = client();
    const create = (principalArn: string, username: string) =>
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn, username }));
    for (const bad of ['john{{SessionName}}', 'john{{SessionNameRaw}}']) {
      const err = await failure(create(ROLE, bad));
      expect(err.name, bad).toBe('InvalidParameterException');
    }
    await create(ROLE, ':john{{SessionName}}');
    await create(`arn:aws:iam::${ACCOUNT}:role/r2`, 'jo:hn{{SessionNameRaw}}');
    await create(`arn:aws:iam::${ACCOUNT}:role/r3`, 'john');
    const upd = await failure(
      eks.send(
        new UpdateAccessEntryCommand({
          clusterName: 'dev',
          principalArn: ROLE,
          username: 'x{{SessionName}}',
        }),
      ),
    );
    expect(upd.name).toBe('InvalidParameterException');
  });

  it('refuses access entries for service-linked roles, also on entries EKS made for them', async () => {
    // EKS user guide, "Create access entries": "Access entries do not support service linked roles";
    // the answer is quoted in terraform-provider-aws#36447.
    const slr = `arn:aws:iam::${ACCOUNT}:role/aws-service-role/emr-containers.amazonaws.com/AWSServiceRoleForAmazonEMRContainers`;
    const eks = client();
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: slr })),
    );
    expect(err.name).toBe('InvalidParameterException');
    expect(err.message).toBe(
      'The caller is not allowed to modify access entries with a principalArn value of a Service Linked Role',
    );
    // EKS itself creates entries for some service-linked roles (containers-roadmap#2618); callers cannot change them.
    const eksSlr = `arn:aws:iam::${ACCOUNT}:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS`;
    emu.seedEntry('dev', {
      principalArn: eksSlr,
      policies: [{ policyArn: policy('AmazonEKSClusterInsightsPolicy'), accessScope: { type: 'cluster' } }],
    });
    const calls = [
      () => eks.send(new DeleteAccessEntryCommand({ clusterName: 'dev', principalArn: eksSlr })),
      () =>
        eks.send(
          new UpdateAccessEntryCommand({ clusterName: 'dev', principalArn: eksSlr, kubernetesGroups: ['g'] }),
        ),
      () =>
        eks.send(
          new DisassociateAccessPolicyCommand({
            clusterName: 'dev',
            principalArn: eksSlr,
            policyArn: policy('AmazonEKSClusterInsightsPolicy'),
          }),
        ),
    ];
    for (const call of calls) expect((await failure(call())).name).toBe('InvalidParameterException');
    expect(emu.snapshot('dev')).toHaveLength(1);
  });

  it('creates EC2 (Auto Mode) entries that take AmazonEKSAutoNodePolicy at cluster scope, and nothing else', async () => {
    // EKS user guide, create-node-class.adoc "Create node class access entry": type EC2, then
    // associate-access-policy AmazonEKSAutoNodePolicy --access-scope type=cluster (eksctl#8098).
    const node = `arn:aws:iam::${ACCOUNT}:role/auto-node`;
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: node, type: 'EC2' }));
    const associate = (
      policyArn: string,
      accessScope: { type: 'cluster' | 'namespace'; namespaces?: string[] },
    ) =>
      eks.send(
        new AssociateAccessPolicyCommand({ clusterName: 'dev', principalArn: node, policyArn, accessScope }),
      );
    expect((await failure(associate(VIEW, { type: 'cluster' }))).name).toBe('InvalidParameterException');
    expect(
      (await failure(associate(policy('AmazonEKSAutoNodePolicy'), { type: 'namespace', namespaces: ['a'] })))
        .name,
    ).toBe('InvalidParameterException');
    await associate(policy('AmazonEKSAutoNodePolicy'), { type: 'cluster' });
    const listed = await eks.send(
      new ListAssociatedAccessPoliciesCommand({ clusterName: 'dev', principalArn: node }),
    );
    expect(listed.associatedAccessPolicies?.map((p) => p.policyArn)).toEqual([
      policy('AmazonEKSAutoNodePolicy'),
    ]);
    const entry = await eks.send(new DescribeAccessEntryCommand({ clusterName: 'dev', principalArn: node }));
    expect(entry.accessEntry?.type).toBe('EC2');
  });

  it('creates HYPERPOD_LINUX entries and refuses access-policy operations on them', async () => {
    // botocore service-2.json CreateAccessEntryRequest.type lists HYPERPOD_LINUX; access policies apply to
    // STANDARD entries (user guide, access-policies.adoc) and the CDK documents none for HyperPod.
    const hp = `arn:aws:iam::${ACCOUNT}:role/hyperpod-exec`;
    const eks = client();
    await eks.send(
      new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: hp, type: 'HYPERPOD_LINUX' }),
    );
    const err = await failure(
      eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: hp,
          policyArn: policy('AmazonSagemakerHyperpodClusterPolicy'),
          accessScope: { type: 'cluster' },
        }),
      ),
    );
    expect(err.message).toBe(
      'This operation can only be performed on Access Entries with a type of "STANDARD".',
    );
    const list = await failure(
      eks.send(new ListAssociatedAccessPoliciesCommand({ clusterName: 'dev', principalArn: hp })),
    );
    expect(list.name).toBe('InvalidParameterException');
    // A node type names a role of the cluster's account (user guide, "Create access entries").
    const otherAccount = await failure(
      eks.send(
        new CreateAccessEntryCommand({
          clusterName: 'dev',
          principalArn: 'arn:aws:iam::999999999999:role/hp',
          type: 'HYPERPOD_LINUX',
        }),
      ),
    );
    expect(otherAccount.name).toBe('InvalidParameterException');
  });

  it('lets any catalogue policy be associated to a STANDARD entry', async () => {
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    await eks.send(
      new AssociateAccessPolicyCommand({
        clusterName: 'dev',
        principalArn: ROLE,
        policyArn: policy('AmazonEMRJobPolicy'),
        accessScope: { type: 'namespace', namespaces: ['emr'] },
      }),
    );
    expect(emu.snapshot('dev')[0]?.policies.map((p) => p.policyArn)).toEqual([policy('AmazonEMRJobPolicy')]);
  });

  it('hides a just-created entry from Delete and Disassociate too, so a 404 there does not mean "gone"', async () => {
    // Same window as Describe/Update/Associate: the user guide says access entry creation and updates
    // "are eventually consistent, and may take several seconds to be effective".
    emu.setFaults({ postCreateNotFoundMs: 150 });
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const del = await failure(
      eks.send(new DeleteAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(del.name).toBe('ResourceNotFoundException');
    expect(del.message).toContain('The specified principalArn could not be found');
    const dis = await failure(
      eks.send(
        new DisassociateAccessPolicyCommand({ clusterName: 'dev', principalArn: ROLE, policyArn: VIEW }),
      ),
    );
    expect(dis.name).toBe('ResourceNotFoundException');
    expect(emu.snapshot('dev')).toHaveLength(1);
    await sleep(200);
    await eks.send(new DeleteAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(emu.snapshot('dev')).toEqual([]);
  });

  it('answers a create right after a delete with ResourceInUseException 409 for the post-delete window', async () => {
    // terraform-aws-eks#3293: replacing an entry (delete, then create) got "ResourceInUseException: The
    // specified access entry resource is already in use on this cluster".
    emu.setFaults({ postDeleteConflictMs: 150 });
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    await eks.send(new DeleteAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const gone = await failure(
      eks.send(new DescribeAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(gone.name).toBe('ResourceNotFoundException');
    const again = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE })),
    );
    expect(again.name).toBe('ResourceInUseException');
    expect(again.$metadata.httpStatusCode).toBe(409);
    await sleep(200);
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    expect(emu.snapshot('dev')).toHaveLength(1);
  });

  it('refuses an empty tag map (TagMap min 1 in the API model) but accepts none', async () => {
    // botocore service-2.json: "TagMap": {"type": "map", ..., "max": 50, "min": 1}.
    const eks = client();
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE, tags: {} })),
    );
    expect(err.name).toBe('InvalidParameterException');
    const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    expect(
      (
        await failure(
          eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE, tags: tooMany })),
        )
      ).name,
    ).toBe('InvalidParameterException');
    await eks.send(
      new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE, tags: { a: 'b' } }),
    );
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: USER }));
    expect(emu.snapshot('dev').map((e) => e.tags)).toEqual([{ a: 'b' }, {}]);
  });

  it('enforces its ceiling on namespaces per access scope (default 50, configurable)', async () => {
    // The API model sets no maximum on AccessScope.namespaces and no AWS source we found states one; the
    // emulator holds the system to its own ceiling (functions/core/eks-limits.ts).
    const eks = client();
    await eks.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
    const scope = (n: number) => ({
      type: 'namespace' as const,
      namespaces: Array.from({ length: n }, (_, i) => `ns-${i}`),
    });
    const associate = (n: number) =>
      eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: ROLE,
          policyArn: VIEW,
          accessScope: scope(n),
        }),
      );
    await associate(50);
    const err = await failure(associate(51));
    expect(err.name).toBe('InvalidParameterException');
    expect(err.message).toContain('at most 50 namespaces');
    expect(emu.snapshot('dev')[0]?.policies[0]?.accessScope.namespaces).toHaveLength(50);

    const strict = await startEksEmulator({
      accountId: ACCOUNT,
      clusters: [{ name: 'dev' }],
      maxNamespacesPerScope: 2,
    });
    const c = new EKSClient({
      endpoint: strict.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
      maxAttempts: 1,
    });
    try {
      await c.send(new CreateAccessEntryCommand({ clusterName: 'dev', principalArn: ROLE }));
      const e = await failure(
        c.send(
          new AssociateAccessPolicyCommand({
            clusterName: 'dev',
            principalArn: ROLE,
            policyArn: VIEW,
            accessScope: scope(3),
          }),
        ),
      );
      expect(e.message).toContain('at most 2 namespaces');
    } finally {
      c.destroy();
      await strict.close();
    }
  });
});
