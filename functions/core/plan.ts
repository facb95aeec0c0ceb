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
import {
  type AccessScope,
  type AccessState,
  EMPTY_STATE,
  MANAGED_TAG_KEY,
  type PolicyAssociation,
} from './types.js';

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

/** What a recreate did not carry over from the stale entry: access this system never granted. */
export interface DroppedAccess {
  kubernetesGroups: string[];
  policies: PolicyAssociation[];
  username?: string;
}

/**
 * A role deleted and recreated with the same ARN gets a new role id; its old access entry silently stops
 * working. Its baseline is void (it was the dead role's access, granted by someone else to someone else),
 * so delete the entry and create it again with only what our active grants hold, tagged as ours, since
 * this system now created it. `dropped` lists what the stale entry had that the new one does not.
 */
export function planRecreate(
  current: AccessState,
  desired: DesiredAccess,
): Plan & { dropped: DroppedAccess } {
  if (!current.exists || (current.type ?? 'STANDARD') !== 'STANDARD') {
    return { ...planChanges(current, desired), dropped: { kubernetesGroups: [], policies: [] } };
  }
  const after = desiredState(EMPTY_STATE, desired);
  const changes: EksChange[] = [{ op: 'DeleteAccessEntry', before: current }];
  if (after.exists) {
    changes.push({
      op: 'CreateAccessEntry',
      kubernetesGroups: after.kubernetesGroups,
      ...(after.username !== undefined && { username: after.username }),
      // EKS refuses an empty tag map (DESIGN §3): the managed tag is always there.
      tags: { ...current.tags, [MANAGED_TAG_KEY]: 'true' },
    });
    for (const p of after.policies) {
      changes.push({ op: 'AssociateAccessPolicy', policyArn: p.policyArn, accessScope: p.accessScope });
    }
  }
  const dropped: DroppedAccess = {
    kubernetesGroups: current.kubernetesGroups.filter((g) => !after.kubernetesGroups.includes(g)).sort(),
    policies: current.policies
      .flatMap((p) =>
        droppedScope(
          p,
          after.policies.find((q) => q.policyArn === p.policyArn),
        ),
      )
      .sort((a, b) => a.policyArn.localeCompare(b.policyArn)),
    ...(current.username !== undefined &&
      current.username !== after.username && { username: current.username }),
  };
  return { changes, after, dropped };
}

export function droppedNothing(d: DroppedAccess): boolean {
  return d.kubernetesGroups.length === 0 && d.policies.length === 0 && d.username === undefined;
}

/** What of `before` the association `after` (of the same policy) no longer covers. */
function droppedScope(before: PolicyAssociation, after: PolicyAssociation | undefined): PolicyAssociation[] {
  if (!after) return [before];
  if (sameScope(before.accessScope, after.accessScope) || after.accessScope.type === 'cluster') return [];
  if (before.accessScope.type === 'cluster') return [before];
  const left = (before.accessScope.namespaces ?? []).filter(
    (n) => !after.accessScope.namespaces?.includes(n),
  );
  return left.length === 0
    ? []
    : [{ policyArn: before.policyArn, accessScope: { type: 'namespace', namespaces: left } }];
}
