import { describe, expect, test } from 'vitest';
import { computeDesired } from '../../functions/core/desired.js';
import { type Grant, narrowGrants } from '../../functions/core/ledger.js';
import { planChanges } from '../../functions/core/plan.js';
import { type AccessRequest, type AccessState, MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { EDIT, ns, VIEW } from '../helpers/fixtures.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const PRINCIPAL = 'arn:aws:iam::111122223333:role/a';

function grant(over: Partial<Grant> = {}): Grant {
  return {
    grantId: 'g1',
    requestId: 'g1',
    source: 'ticket',
    policies: [
      { policyArn: VIEW, accessScope: ns('a', 'b') },
      { policyArn: EDIT, accessScope: ns('a') },
    ],
    kubernetesGroups: ['team-a-readers', 'team-b-readers'],
    status: 'active',
    createdAt: '2026-11-21T10:00:00Z',
    version: 1,
    ...over,
  };
}

function revoke(over: Partial<AccessRequest>): AccessRequest {
  return {
    schemaVersion: 1,
    requestId: 'r1',
    action: 'revoke',
    source: 'ticket',
    clusterName: 'dev',
    principalArn: PRINCIPAL,
    ...over,
  };
}

describe('narrowGrants (revoke by name)', () => {
  test('removes only the named namespaces from a namespace-scoped policy', () => {
    const [g] = narrowGrants(
      [grant()],
      revoke({ accessPolicies: [{ policyArn: VIEW, accessScope: ns('b') }] }),
      NOW,
    );
    expect(g?.policies).toEqual([
      { policyArn: VIEW, accessScope: ns('a') },
      { policyArn: EDIT, accessScope: ns('a') },
    ]);
    expect(g?.status).toBe('active');
    expect(g?.version).toBe(2);
  });

  test('keeps a cluster-wide grant when the revoke names only some namespaces', () => {
    const clusterWide = grant({
      policies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }],
      kubernetesGroups: [],
    });
    expect(
      narrowGrants(
        [clusterWide],
        revoke({ accessPolicies: [{ policyArn: VIEW, accessScope: ns('a') }] }),
        NOW,
      ),
    ).toEqual([]);
  });

  test('ends a grant when nothing is left of it', () => {
    const [g] = narrowGrants(
      [grant({ policies: [], kubernetesGroups: ['team-a-readers'] })],
      revoke({ kubernetesGroups: ['team-a-readers'] }),
      NOW,
    );
    expect(g?.status).toBe('revoked');
    expect(g?.endedAt).toBe(NOW.toISOString());
  });

  test('a revoke naming nothing ends every active grant and leaves ended ones alone', () => {
    const changed = narrowGrants([grant(), grant({ grantId: 'g2', status: 'expired' })], revoke({}), NOW);
    expect(changed.map((g) => [g.grantId, g.status])).toEqual([['g1', 'revoked']]);
  });

  test('access narrowed away stays ours, so it leaves EKS instead of turning foreign', () => {
    const [narrowed] = narrowGrants(
      [grant()],
      revoke({
        kubernetesGroups: ['team-b-readers'],
        accessPolicies: [{ policyArn: EDIT, accessScope: ns('a') }],
      }),
      NOW,
    );
    const current: AccessState = {
      exists: true,
      type: 'STANDARD',
      kubernetesGroups: ['team-a-readers', 'team-b-readers'],
      policies: [
        { policyArn: EDIT, accessScope: ns('a') },
        { policyArn: VIEW, accessScope: ns('a', 'b') },
      ],
      tags: { [MANAGED_TAG_KEY]: 'true' },
    };
    const desired = computeDesired({ clusterName: 'dev', principalArn: PRINCIPAL, grants: [narrowed!] }, NOW);
    expect(planChanges(current, desired).changes).toEqual([
      {
        op: 'UpdateAccessEntry',
        kubernetesGroups: ['team-a-readers'],
        before: ['team-a-readers', 'team-b-readers'],
      },
      { op: 'DisassociateAccessPolicy', policyArn: EDIT, before: ns('a') },
    ]);
  });
});
