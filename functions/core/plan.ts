/**
 * Desired vs current → the minimal ordered list of EKS calls. Pure.
 *
 * EKS surprises encoded here (DESIGN.md §3):
 * - UpdateAccessEntry replaces kubernetesGroups AND username; an omitted field is reset,
 *   so we always send the full merged group set and the current username.
 * - AssociateAccessPolicy on an associated policy replaces its scope: no disassociate gap.
 * - DeleteAccessEntry drops every associated policy, so it is only planned for an entry we
 *   created and that holds nothing but what we granted.
 */
import { type DesiredAccess, desiredState, sameScope } from './desired.js';
import { type AccessScope, type AccessState, MANAGED_TAG_KEY } from './types.js';

export type EksChange =
  | { op: 'CreateAccessEntry'; kubernetesGroups: string[]; username?: string; tags: Record<string, string> }
  | { op: 'UpdateAccessEntry'; kubernetesGroups: string[]; username?: string; before: string[] }
  | { op: 'AssociateAccessPolicy'; policyArn: string; accessScope: AccessScope; before?: AccessScope }
  | { op: 'DisassociateAccessPolicy'; policyArn: string; before: AccessScope }
  | { op: 'DeleteAccessEntry'; before: AccessState };

export interface Plan {
  changes: EksChange[];
  /** The state EKS will be in once every change is applied. */
  after: AccessState;
}

export function planChanges(current: AccessState, desired: DesiredAccess): Plan {
  const after = desiredState(current, desired);
  const changes: EksChange[] = [];

  if (!after.exists) {
    if (current.exists) changes.push({ op: 'DeleteAccessEntry', before: current });
    return { changes, after };
  }

  if (!current.exists) {
    changes.push({
      op: 'CreateAccessEntry',
      kubernetesGroups: after.kubernetesGroups,
      ...(after.username !== undefined && { username: after.username }),
      tags: { [MANAGED_TAG_KEY]: 'true' },
    });
  } else if (!sameSet(current.kubernetesGroups, after.kubernetesGroups)) {
    const standard = (current.type ?? 'STANDARD') === 'STANDARD';
    changes.push({
      op: 'UpdateAccessEntry',
      kubernetesGroups: after.kubernetesGroups,
      // Never send a username for non-STANDARD entries: EKS rejects it.
      ...(standard && current.username !== undefined && { username: current.username }),
      before: current.kubernetesGroups,
    });
  }

  for (const [policyArn, scope] of desired.policies) {
    const before = current.policies.find((p) => p.policyArn === policyArn)?.accessScope;
    if (scope && !sameScope(before, scope)) {
      changes.push({ op: 'AssociateAccessPolicy', policyArn, accessScope: scope, ...(before && { before }) });
    } else if (!scope && before) {
      changes.push({ op: 'DisassociateAccessPolicy', policyArn, before });
    }
  }
  return { changes, after };
}

function sameSet(a: string[], b: string[]): boolean {
  const x = new Set(a);
  return x.size === new Set(b).size && b.every((v) => x.has(v));
}

/**
 * A role deleted and recreated with the same ARN gets a new role id; its old access
 * entry silently stops working. Delete it and create it again with the same access
 * (plus whatever the ledger now wants), keeping its tags, so ownership is unchanged.
 */
export function planRecreate(current: AccessState, desired: DesiredAccess): Plan {
  if (!current.exists || (current.type ?? 'STANDARD') !== 'STANDARD') return planChanges(current, desired);
  const after = desiredState(current, desired);
  const changes: EksChange[] = [{ op: 'DeleteAccessEntry', before: current }];
  if (!after.exists) return { changes, after };
  changes.push({
    op: 'CreateAccessEntry',
    kubernetesGroups: after.kubernetesGroups,
    ...(current.username !== undefined && { username: current.username }),
    tags: current.tags ?? {},
  });
  for (const p of after.policies) {
    changes.push({ op: 'AssociateAccessPolicy', policyArn: p.policyArn, accessScope: p.accessScope });
  }
  return { changes, after };
}
