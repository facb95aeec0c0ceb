import { describe, expect, test } from 'vitest';
import { computeDesired } from '../../functions/core/desired.js';
import type { Grant, PrincipalRecord } from '../../functions/core/ledger.js';
import { planChanges, planRecreate } from '../../functions/core/plan.js';
import { type AccessState, MANAGED_TAG_KEY } from '../../functions/core/types.js';

const VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
const ADMIN = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy';
const NOW = new Date('2026-11-21T12:00:00Z');

const ns = (...namespaces: string[]) => ({ type: 'namespace' as const, namespaces });
const absent: AccessState = { exists: false, kubernetesGroups: [], policies: [] };

function grant(id: string, over: Partial<Grant> = {}): Grant {
  return {
    grantId: id,
    requestId: id,
    source: 'ticket',
    policies: [],
    kubernetesGroups: [],
    status: 'active',
    createdAt: `2026-11-21T10:00:0${id.length % 10}Z`,
    version: 1,
    ...over,
  };
}

function record(baseline: AccessState | undefined, grants: Grant[]): PrincipalRecord {
  return {
    clusterName: 'dev',
    principalArn: 'arn:aws:iam::111122223333:role/a',
    ...(baseline && { baseline }),
    grants,
  };
}

function plan(current: AccessState, rec: PrincipalRecord) {
  return planChanges(current, computeDesired(rec, NOW));
}

describe('planChanges', () => {
  test('creates a tagged entry and associates policies for a first grant', () => {
    const p = plan(
      absent,
      record(absent, [
        grant('g1', { policies: [{ policyArn: VIEW, accessScope: ns('b', 'a') }], kubernetesGroups: ['r'] }),
      ]),
    );
    expect(p.changes).toEqual([
      { op: 'CreateAccessEntry', kubernetesGroups: ['r'], tags: { [MANAGED_TAG_KEY]: 'true' } },
      { op: 'AssociateAccessPolicy', policyArn: VIEW, accessScope: ns('a', 'b') },
    ]);
  });

  test('makes no call when EKS already matches the desired state', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['r'],
      policies: [{ policyArn: VIEW, accessScope: ns('a') }],
    };
    const p = plan(
      current,
      record(absent, [
        grant('g1', { policies: [{ policyArn: VIEW, accessScope: ns('a') }], kubernetesGroups: ['r'] }),
      ]),
    );
    expect(p.changes).toEqual([]);
  });

  test('widens a scope with one AssociateAccessPolicy (replaces, no disassociate gap)', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: [],
      policies: [{ policyArn: VIEW, accessScope: ns('a') }],
    };
    const p = plan(
      current,
      record(current, [grant('g1', { policies: [{ policyArn: VIEW, accessScope: ns('b') }] })]),
    );
    expect(p.changes).toEqual([
      { op: 'AssociateAccessPolicy', policyArn: VIEW, accessScope: ns('a', 'b'), before: ns('a') },
    ]);
  });

  test('sends the full merged group set and keeps the username on update', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['theirs'],
      username: 'me',
      policies: [],
    };
    const p = plan(current, record(current, [grant('g1', { kubernetesGroups: ['ours'] })]));
    expect(p.changes).toEqual([
      { op: 'UpdateAccessEntry', kubernetesGroups: ['ours', 'theirs'], username: 'me', before: ['theirs'] },
    ]);
  });

  test('never sends a username for a non-STANDARD entry', () => {
    const current: AccessState = {
      exists: true,
      type: 'EC2_LINUX',
      kubernetesGroups: [],
      username: 'system:node:{{EC2PrivateDNSName}}',
      policies: [],
    };
    const p = plan(current, record(current, [grant('g1', { kubernetesGroups: ['ours'] })]));
    expect(p.changes).toEqual([{ op: 'UpdateAccessEntry', kubernetesGroups: ['ours'], before: [] }]);
  });

  test('restores a baseline scope that a grant widened once the grant ends', () => {
    const baseline: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: [],
      policies: [{ policyArn: VIEW, accessScope: ns('a') }],
    };
    const current: AccessState = { ...baseline, policies: [{ policyArn: VIEW, accessScope: ns('a', 'b') }] };
    const p = plan(
      current,
      record(baseline, [
        grant('g1', { status: 'expired', policies: [{ policyArn: VIEW, accessScope: ns('b') }] }),
      ]),
    );
    expect(p.changes).toEqual([
      { op: 'AssociateAccessPolicy', policyArn: VIEW, accessScope: ns('a'), before: ns('a', 'b') },
    ]);
  });

  test('keeps a policy the principal already had when a grant of the same policy ends', () => {
    const baseline: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: [],
      policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
    };
    const p = plan(
      baseline,
      record(baseline, [
        grant('g1', {
          status: 'expired',
          policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
        }),
      ]),
    );
    expect(p.changes).toEqual([]);
  });

  test('treats an expiry time in the past as ended even before the expiry message', () => {
    const baseline: AccessState = { exists: true, type: 'STANDARD', kubernetesGroups: [], policies: [] };
    const current: AccessState = { ...baseline, policies: [{ policyArn: EDIT, accessScope: ns('a') }] };
    const g = grant('g1', {
      expiresAt: '2026-11-21T11:59:59Z',
      policies: [{ policyArn: EDIT, accessScope: ns('a') }],
    });
    expect(plan(current, record(baseline, [g])).changes).toEqual([
      { op: 'DisassociateAccessPolicy', policyArn: EDIT, before: ns('a') },
    ]);
  });

  test('cluster scope dominates namespace scope across overlapping grants', () => {
    const p = plan(
      absent,
      record(absent, [
        grant('g1', { policies: [{ policyArn: VIEW, accessScope: ns('a') }] }),
        grant('g2', { policies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }] }),
      ]),
    );
    expect(p.changes.at(-1)).toEqual({
      op: 'AssociateAccessPolicy',
      policyArn: VIEW,
      accessScope: { type: 'cluster' },
    });
  });

  test('deletes an entry it created once the last grant ends', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['r'],
      policies: [{ policyArn: VIEW, accessScope: ns('a') }],
      tags: { [MANAGED_TAG_KEY]: 'true' },
    };
    const p = plan(
      current,
      record(absent, [
        grant('g1', {
          status: 'revoked',
          kubernetesGroups: ['r'],
          policies: [{ policyArn: VIEW, accessScope: ns('a') }],
        }),
      ]),
    );
    expect(p.changes).toEqual([{ op: 'DeleteAccessEntry', before: current }]);
    expect(p.after.exists).toBe(false);
  });

  test('keeps an entry it created when someone else added access to it, removing only its own', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: [],
      policies: [
        { policyArn: EDIT, accessScope: ns('x') },
        { policyArn: VIEW, accessScope: ns('a') },
      ],
      tags: { [MANAGED_TAG_KEY]: 'true' },
    };
    const p = plan(
      current,
      record(absent, [
        grant('g1', { status: 'revoked', policies: [{ policyArn: VIEW, accessScope: ns('a') }] }),
      ]),
    );
    expect(p.changes).toEqual([{ op: 'DisassociateAccessPolicy', policyArn: VIEW, before: ns('a') }]);
  });

  test('never deletes a pre-existing entry, even when empty after a revoke', () => {
    const baseline: AccessState = { exists: true, type: 'STANDARD', kubernetesGroups: [], policies: [] };
    const current: AccessState = { ...baseline, policies: [{ policyArn: VIEW, accessScope: ns('a') }] };
    const p = plan(
      current,
      record(baseline, [
        grant('g1', { status: 'revoked', policies: [{ policyArn: VIEW, accessScope: ns('a') }] }),
      ]),
    );
    expect(p.changes).toEqual([{ op: 'DisassociateAccessPolicy', policyArn: VIEW, before: ns('a') }]);
  });

  test('leaves policies and groups no grant ever named untouched', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['human-added'],
      policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
    };
    const p = plan(
      current,
      record({ ...current, kubernetesGroups: [], policies: [] }, [
        grant('g1', { status: 'revoked', kubernetesGroups: ['r'] }),
      ]),
    );
    expect(p.changes).toEqual([]);
  });

  test('does not recreate an entry someone deleted when no grant is active', () => {
    const baseline: AccessState = { exists: true, type: 'STANDARD', kubernetesGroups: ['x'], policies: [] };
    const p = plan(absent, record(baseline, [grant('g1', { status: 'expired', kubernetesGroups: ['r'] })]));
    expect(p.changes).toEqual([]);
  });

  test("recreates a recreated role's stale entry with only our active grants, and lists what it dropped", () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['theirs'],
      username: 'u',
      policies: [
        { policyArn: EDIT, accessScope: ns('x') },
        { policyArn: VIEW, accessScope: ns('a') },
      ],
      tags: { owner: 'platform' },
    };
    // The dead role's baseline is void: the service replaces it with an empty one before planning.
    const p = planRecreate(
      current,
      computeDesired(
        record(absent, [grant('g1', { policies: [{ policyArn: VIEW, accessScope: ns('a') }] })]),
        NOW,
      ),
    );
    expect(p.changes).toEqual([
      { op: 'DeleteAccessEntry', before: current },
      {
        op: 'CreateAccessEntry',
        kubernetesGroups: [],
        tags: { owner: 'platform', 'eks-access-grants:managed': 'true' },
      },
      { op: 'AssociateAccessPolicy', policyArn: VIEW, accessScope: ns('a') },
    ]);
    expect(p.dropped).toEqual({
      kubernetesGroups: ['theirs'],
      policies: [{ policyArn: EDIT, accessScope: ns('x') }],
      username: 'u',
    });
  });

  test('never sends an empty tag map when the stale entry had no tags', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['theirs'],
      policies: [],
    };
    const p = planRecreate(
      current,
      computeDesired(record(absent, [grant('g1', { kubernetesGroups: ['r'] })]), NOW),
    );
    const create = p.changes.find((c) => c.op === 'CreateAccessEntry');
    expect(create).toMatchObject({ kubernetesGroups: ['r'], tags: { 'eks-access-grants:managed': 'true' } });
  });

  test('deletes the stale entry and creates nothing when no grant of ours is active', () => {
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['theirs'],
      policies: [],
    };
    const p = planRecreate(current, computeDesired(record(absent, []), NOW));
    expect(p.changes.map((c) => c.op)).toEqual(['DeleteAccessEntry']);
    expect(p.dropped.kubernetesGroups).toEqual(['theirs']);
  });

  test('plans a plain create when a recreated role has no stale entry', () => {
    const p = planRecreate(
      absent,
      computeDesired(record(absent, [grant('g1', { kubernetesGroups: ['r'] })]), NOW),
    );
    expect(p.changes.map((c) => c.op)).toEqual(['CreateAccessEntry']);
  });
});
