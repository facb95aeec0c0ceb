// Issue 10: the worker against the EKS behaviours real AWS shows and the emulator now models (IAM
// propagation, consistency windows around create and delete, node entry types, tag maps, namespaces
// per scope). Real SDK clients over loopback HTTP; sources are cited in infra/local/eks-emulator/.
import { EKSClient } from '@aws-sdk/client-eks';
import { afterEach, describe, expect, test } from 'vitest';
import { EksAdapter } from '../../functions/adapters/eks.js';
import { auditRecordJsonSchema } from '../../functions/core/audit-schema.js';
import { PermanentError } from '../../functions/core/errors.js';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { accepts } from '../helpers/ajv.js';
import { fixture, ns, VIEW } from '../helpers/fixtures.js';
import {
  CREDENTIALS,
  eksWrites,
  type Harness,
  type HarnessOptions,
  REGION,
  startHarness,
} from '../helpers/harness.js';

const ROLE = 'arn:aws:iam::111122223333:role/team-a-dev';

/** What the role-lifecycle intake enqueues for a CreateRole that a role mapping matches. */
const roleCreatedGrant = (over: Record<string, unknown> = {}) =>
  fixture('dev-view-grant', {
    requestId: 'req-role-created-0001',
    source: 'iam-role-created',
    kubernetesGroups: undefined,
    approvedBy: undefined,
    accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    ...over,
  });

let h: Harness;
async function start(opts: HarnessOptions = {}) {
  h = await startHarness(opts);
  return h;
}
afterEach(async () => {
  for (const record of h.audits()) expect(accepts(auditRecordJsonSchema(), record)).toBe(true);
  await h.close();
});

const writesOk = () => eksWrites(h);

describe('IAM propagation after CreateRole', () => {
  test('a role-created grant that meets the propagation window is retried and still granted', async () => {
    await start({ maxReceiveCount: 5 });
    h.eks.createPrincipal(ROLE);
    h.eks.setFaults({ iamPropagationMs: 2000 });
    await h.send(roleCreatedGrant());
    await h.drain(60_000);

    expect(h.auditsFor('req-role-created-0001').map((a) => a.outcome)).toEqual(['granted']);
    expect(h.eks.snapshot('dev')).toMatchObject([
      { principalArn: ROLE, policies: [{ policyArn: VIEW, accessScope: ns('team-a') }] },
    ]);
    // EKS did refuse the create at first, and the worker classified that as IAM propagation.
    expect(h.eks.calls().some((c) => c.operation === 'CreateAccessEntry' && c.status === 400)).toBe(true);
    expect(
      h.logger.lines.some((l) => l.extra.some((e) => e.code === 'IAM_PROPAGATION')),
      'a retry logged with code IAM_PROPAGATION',
    ).toBe(true);
    expect(await h.dlqBodies()).toEqual([]);
  });

  test('a window that outlasts the retries fails the grant with IAM_PROPAGATION, dead-lettered, nothing applied', async () => {
    await start({ maxReceiveCount: 2 });
    h.eks.createPrincipal(ROLE);
    h.eks.setFaults({ iamPropagationMs: 600_000 });
    await h.send(roleCreatedGrant());
    await h.drain(60_000);

    const audits = h.auditsFor('req-role-created-0001');
    expect(audits.map((a) => a.outcome)).toEqual(['failed']);
    expect(audits[0]).toMatchObject({ attempt: 2, reason: { code: 'IAM_PROPAGATION' } });
    expect(audits[0]?.reason?.message).toMatch(/gave up after 2 attempts.*invalid principal/);
    expect((await h.dlqBodies()).map((b) => JSON.parse(b).requestId)).toEqual(['req-role-created-0001']);
    expect(h.eks.snapshot('dev')).toEqual([]);
    expect(writesOk()).toEqual([]);
  });

  test('a principal EKS still calls invalid after IAM_PROPAGATION_WINDOW_SECONDS fails with PRINCIPAL_NOT_IN_IAM', async () => {
    await start({ maxReceiveCount: 10, iamPropagationWindowSeconds: 1 });
    h.eks.deletePrincipal(ROLE); // a ticket for a role that does not exist (any more)
    await h.send(fixture('dev-view-grant'));
    await h.drain(60_000);

    const audits = h.auditsFor('req-dev-view-0001');
    expect(audits.map((a) => a.outcome)).toEqual(['failed']);
    expect(audits[0]?.reason?.code).toBe('PRINCIPAL_NOT_IN_IAM');
    expect(audits[0]?.reason?.message).toContain('IAM_PROPAGATION_WINDOW_SECONDS');
    // It retried while inside the window, then stopped well before the 10 attempts.
    expect(h.logger.lines.some((l) => l.extra.some((e) => e.code === 'IAM_PROPAGATION'))).toBe(true);
    expect(audits[0]?.attempt).toBeLessThan(10);
    expect(await h.dlqBodies()).toHaveLength(1);
    expect(h.eks.snapshot('dev')).toEqual([]);
  });
});

describe('consistency windows around create and delete', () => {
  test('recreates the entry of a recreated role through the post-delete conflict and IAM propagation', async () => {
    await start({ maxReceiveCount: 8 });
    // The old role's entry, created by this system; then the role is deleted and created again.
    h.eks.seedEntry('dev', {
      principalArn: ROLE,
      tags: { [MANAGED_TAG_KEY]: 'true' },
      createdAt: Date.now() - 86_400_000,
    });
    h.eks.recreatePrincipal(ROLE);
    expect(h.eks.isStale('dev', ROLE)).toBe(true);
    h.eks.setFaults({ iamPropagationMs: 1500, postDeleteConflictMs: 3000, postCreateNotFoundMs: 300 });
    await h.send(roleCreatedGrant({ principalRecreated: true }));
    await h.drain(60_000);

    expect(h.auditsFor('req-role-created-0001').map((a) => a.outcome)).toEqual(['granted']);
    const [entry] = h.eks.snapshot('dev');
    expect(entry).toMatchObject({
      principalArn: ROLE,
      policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    });
    expect(h.eks.isStale('dev', ROLE)).toBe(false);
    const statuses = h.eks
      .calls()
      .filter((c) => c.operation === 'CreateAccessEntry')
      .map((c) => c.status);
    expect(statuses).toContain(400); // IAM propagation was met
    expect(statuses).toContain(409); // and the post-delete window
    expect(statuses.at(-1)).toBe(200);
    expect(await h.dlqBodies()).toEqual([]);
  });

  test('a revoke right after a groups-only grant does not take the unseen entry for "already gone"', async () => {
    await start({ maxReceiveCount: 5 });
    h.eks.setFaults({ postCreateNotFoundMs: 700 });
    await h.send(fixture('dev-view-grant', { accessPolicies: undefined }));
    await h.send(fixture('dev-view-revoke'));
    await h.drain(60_000);

    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual(['granted']);
    expect(h.auditsFor('req-dev-view-revoke-0001').map((a) => a.outcome)).toEqual(['revoked']);
    // The entry this system created is gone: the revoke saw it and deleted it.
    expect(h.eks.snapshot('dev')).toEqual([]);
    expect(writesOk().map((c) => c.operation)).toEqual(['CreateAccessEntry', 'DeleteAccessEntry']);
  });

  test('a failed grant rolls back the entry it created even while EKS still hides it', async () => {
    await start({ maxReceiveCount: 1, eksMaxAttempts: 1 });
    // Create succeeds; the association fails for good; EKS hides the new entry for longer than the
    // attempt takes, so the rollback's first read says "no entry".
    h.eks.setFaults({ postCreateNotFoundMs: 2500, errorRate: { AssociateAccessPolicy: 1 } });
    await h.send(fixture('dev-view-grant'));
    await h.drain(60_000);

    expect(h.auditsFor('req-dev-view-0001').map((a) => a.outcome)).toEqual(['failed']);
    expect(h.eks.snapshot('dev')).toEqual([]);
    expect(writesOk().map((c) => c.operation)).toEqual(['CreateAccessEntry', 'DeleteAccessEntry']);
  });
});

describe('node entry types', () => {
  test('never associates access policies to a non-STANDARD entry (the worker rule), and writes nothing', async () => {
    await start({ eksAccountId: '111122223333' });
    const node = 'arn:aws:iam::111122223333:role/auto-node';
    h.eks.seedEntry('dev', {
      principalArn: node,
      type: 'EC2',
      policies: [
        {
          policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSAutoNodePolicy',
          accessScope: { type: 'cluster' },
        },
      ],
    });
    await h.send(fixture('dev-view-grant', { principalArn: node, kubernetesGroups: undefined }));
    await h.drain();
    const [audit] = h.auditsFor('req-dev-view-0001');
    expect(audit).toMatchObject({ outcome: 'rejected', reason: { code: 'NOT_STANDARD_ENTRY' } });
    expect(writesOk()).toEqual([]);
    expect(h.eks.snapshot('dev')[0]?.policies.map((p) => p.policyArn)).toEqual([
      'arn:aws:eks::aws:cluster-access-policy/AmazonEKSAutoNodePolicy',
    ]);
  });
});

describe('namespaces per access scope', () => {
  const many = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  test('rejects a grant whose merged scope would exceed 50 namespaces, touching neither ledger nor EKS', async () => {
    await start();
    await h.send(
      fixture('dev-view-grant', {
        kubernetesGroups: undefined,
        accessPolicies: [{ policyArn: VIEW, accessScope: ns(...many('team-a', 30)) }],
      }),
    );
    await h.drain();
    h.eks.resetCalls();
    await h.send(
      fixture('dev-view-grant', {
        requestId: 'req-dev-view-0002',
        kubernetesGroups: undefined,
        accessPolicies: [{ policyArn: VIEW, accessScope: ns(...many('team-b', 25)) }],
      }),
    );
    await h.drain();

    const [audit] = h.auditsFor('req-dev-view-0002');
    expect(audit).toMatchObject({ outcome: 'rejected', reason: { code: 'SCOPE_TOO_MANY_NAMESPACES' } });
    expect(audit?.reason?.message).toContain('55 namespaces');
    expect(audit?.reason?.message).toContain('at most 50');
    expect(writesOk()).toEqual([]);
    expect(h.eks.snapshot('dev')[0]?.policies[0]?.accessScope.namespaces).toHaveLength(30);
    // Nothing recorded: a later grant that fits is still granted.
    await h.send(
      fixture('dev-view-grant', {
        requestId: 'req-dev-view-0003',
        kubernetesGroups: undefined,
        accessPolicies: [{ policyArn: VIEW, accessScope: ns(...many('team-b', 20)) }],
      }),
    );
    await h.drain();
    expect(h.auditsFor('req-dev-view-0003').map((a) => a.outcome)).toEqual(['granted']);
    expect(h.eks.snapshot('dev')[0]?.policies[0]?.accessScope.namespaces).toHaveLength(50);
  });
});

describe('EKS adapter over HTTP', () => {
  test('never sends an empty tag map, and never more namespaces than a scope may hold', async () => {
    await start();
    const client = new EKSClient({
      region: REGION,
      endpoint: h.eks.endpoint,
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const eks = new EksAdapter(client);
      // The API model gives TagMap "min": 1; the emulator refuses {} as EKS does.
      await eks.apply('dev', ROLE, { op: 'CreateAccessEntry', kubernetesGroups: [], tags: {} });
      expect(h.eks.snapshot('dev')).toMatchObject([{ principalArn: ROLE, tags: {} }]);

      h.eks.resetCalls();
      const tooMany = {
        type: 'namespace' as const,
        namespaces: Array.from({ length: 51 }, (_, i) => `n${i}`),
      };
      const err = await eks
        .apply('dev', ROLE, { op: 'AssociateAccessPolicy', policyArn: VIEW, accessScope: tooMany })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).code).toBe('SCOPE_TOO_MANY_NAMESPACES');
      expect(h.eks.calls()).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});
