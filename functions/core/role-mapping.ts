/**
 * CloudTrail IAM role events → AccessRequests, through the role mappings of the guardrail policy.
 *
 * Only CreateRole carries the role's ARN (with its path) and its tags. TagRole, UntagRole and DeleteRole
 * name the role and, for tagging, only the tags that changed: UntagRole does not even say what the removed
 * tag's value was. So the intake keeps a small record per role (RoleRecord: ARN, tags, and the grant that
 * carries the role's mapped access on each cluster), and every event is planned against it:
 *
 *   desired = mapping(path, tags after the event)      per cluster
 *   changed → grant(desired) then revoke(previous grant) in the same FIFO group, so access never dips
 *
 * Request ids derive from the CloudTrail eventID and the cluster, so a redelivered event produces the same
 * messages (deduplicated by SQS, and by the worker's ledger after that).
 *
 * Trusted creators: a tag or a path grants on a cluster only when the IAM identity that set it (the
 * CloudTrail caller of the CreateRole or TagRole) matches that cluster's `roleMappings.trustedCreators`.
 * The record remembers who set each tag and who created the role, so access an untrusted caller put on a
 * role is never granted later under someone else's event. An event whose own tags or path would grant
 * from an untrusted caller yields a rejection (UNTRUSTED_ACTOR, audited by the intake); a tag value naming
 * a wildcard namespace the mapping does not allow yields WILDCARD_NAMESPACE. Revocations (UntagRole,
 * DeleteRole, and the revoke of a grant whose mapping no longer matches) are honoured whoever made them.
 * Pure: no AWS imports; node:crypto only to shorten over-long ids.
 */
import { createHash } from 'node:crypto';
import { type GuardrailPolicy, globMatches, type RoleTagMapping } from './policy.js';
import { validateAccessRequest } from './request.js';
import { isPlainObject, own, truncate } from './schema.js';
import type { AccessRequest, PolicyAssociation } from './types.js';

export const ROLE_EVENT_NAMES = ['CreateRole', 'TagRole', 'UntagRole', 'DeleteRole'] as const;

/** Codes of the rejections a role event can produce (stable API, in audit records). */
export const ROLE_REASON_CODES = ['UNTRUSTED_ACTOR', 'WILDCARD_NAMESPACE'] as const;
export type RoleReasonCode = (typeof ROLE_REASON_CODES)[number];

/**
 * CloudTrail `userIdentity.type` values whose identity we can match (CloudTrail user guide, "CloudTrail
 * userIdentity element"): IAM users and the root user by `arn`; sessions of a role (AssumedRole) and of a
 * federated user (FederatedUser, from GetFederationToken) by `sessionContext.sessionIssuer.arn`, the IAM
 * role or user behind the session (the session ARN itself names a session, not who may be trusted). Any
 * other type (AWSService, AWSAccount, IdentityCenterUser, SAMLUser, WebIdentityUser, Directory, Unknown)
 * has no IAM identity to vouch for, so it is never a trusted creator.
 */
const ISSUER_TYPES = ['AssumedRole', 'FederatedUser'];
const DIRECT_TYPES = ['IAMUser', 'Root'];
export type RoleEventName = (typeof ROLE_EVENT_NAMES)[number];

interface RoleEventBase {
  eventName: RoleEventName;
  eventId: string;
  eventTime: string;
  account: string;
  partition: string;
  roleName: string;
  /** Who made the call (userIdentity.arn, a session ARN for roles), carried into requestedBy. */
  actor?: string;
  /** `userIdentity.type`, for messages. */
  actorType?: string;
  /**
   * The IAM identity trusted creators are matched against: the user or root ARN, or the ARN of the role or
   * user that issued the session. Absent when CloudTrail names none (an AWS service, another account).
   */
  caller?: string;
}

export type RoleEvent =
  | { kind: 'ignored'; why: string; eventName?: string; eventId?: string; roleName?: string }
  | (RoleEventBase & {
      kind: 'created';
      arn: string;
      path: string;
      roleId?: string;
      tags: Record<string, string>;
    })
  | (RoleEventBase & { kind: 'tagged'; tags: Record<string, string> })
  | (RoleEventBase & { kind: 'untagged'; tagKeys: string[] })
  | (RoleEventBase & { kind: 'deleted' });

/** What the intake remembers about one role (stored by adapters/role-directory.ts). */
export interface RoleRecord {
  account: string;
  roleName: string;
  arn: string;
  path: string;
  roleId?: string;
  /** Every tag the role has, as far as the events we saw tell. */
  tags: Record<string, string>;
  /** Lower-cased tag key → the caller that set it ('' when CloudTrail named none). */
  tagSetBy?: Record<string, string>;
  /** The caller of the CreateRole ('' when CloudTrail named none); its path grants only if it is trusted. */
  createdBy?: string;
  /** Per cluster: the grant that carries the role's mapped access now. */
  grants: Record<string, { grantId: string; accessPolicies: PolicyAssociation[] }>;
  /** The role ARN was guessed (no CreateRole seen): path `/` assumed. */
  guessed?: boolean;
  deleted?: boolean;
  /**
   * Outbox: the requests of the last event, stored with the record before they are sent and cleared after.
   * Whoever reads a record with pending requests sends them first (they are idempotent), so a crash between
   * saving and sending loses nothing, and a lost race never leaves a sent grant the record does not know.
   */
  pending?: AccessRequest[];
  lastEventId: string;
  lastEventTime: string;
}

export interface PlanNote {
  level: 'info' | 'warn';
  message: string;
  data?: Record<string, unknown>;
}

/** A grant the event would have made but may not: the intake audits it as `rejected`. */
export interface RoleRejection {
  requestId: string;
  clusterName: string;
  principalArn: string;
  code: RoleReasonCode;
  message: string;
  /** The caller, as requestedBy. */
  requestedBy?: string;
}

export interface RolePlan {
  /** In send order. */
  requests: AccessRequest[];
  /** Grants refused (untrusted caller, wildcard namespaces); audited by the intake, never sent. */
  rejections: RoleRejection[];
  /** The record to store; undefined leaves the stored one as it is. */
  record?: RoleRecord;
  notes: PlanNote[];
}

/** A role's mapped access on one cluster. */
export interface MappedAccess {
  accessPolicies: PolicyAssociation[];
  /** Which mappings matched, e.g. `tag eks-access/dev=view:team-a`, for the grant's reason and logs. */
  matchedBy: string[];
}

const NAMESPACE = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?|[a-z0-9][-a-z0-9]{0,61}\*)$/;
const ID_SAFE = /^[A-Za-z0-9._:-]+$/;
const ROLE_NAME = /^[A-Za-z0-9_+=,.@-]{1,64}$/;
const ACCOUNT = /^[0-9]{12}$/;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):role(\/(?:.*\/)?)([^/]+)$/;

// ---------------------------------------------------------------------------------------------------------
// parse

/** The EventBridge envelope of a CloudTrail IAM call → a typed event, or why it is ignored. */
export function parseRoleEvent(event: unknown): RoleEvent {
  if (!isPlainObject(event)) return { kind: 'ignored', why: 'the event is not an object' };
  const detail = own(event, 'detail');
  if (!isPlainObject(detail)) return { kind: 'ignored', why: 'the event has no detail' };
  const eventName = str(own(detail, 'eventName'));
  const eventId = str(own(detail, 'eventID'));
  const params = isPlainObject(own(detail, 'requestParameters'))
    ? (own(detail, 'requestParameters') as Record<string, unknown>)
    : {};
  const roleName = str(own(params, 'roleName'));
  const ids = {
    ...(eventName && { eventName }),
    ...(eventId && { eventId }),
    ...(roleName && { roleName }),
  };
  if (!eventName || !(ROLE_EVENT_NAMES as readonly string[]).includes(eventName)) {
    return {
      kind: 'ignored',
      why: `event ${JSON.stringify(eventName ?? null)} is not a role lifecycle call`,
      ...ids,
    };
  }
  const errorCode = str(own(detail, 'errorCode'));
  if (errorCode) {
    // A failed call changed nothing in IAM (and carries no role), so there is nothing to map.
    const errorMessage = str(own(detail, 'errorMessage'));
    return {
      kind: 'ignored',
      why: `${eventName} failed with ${errorCode}${errorMessage ? ` (${truncate(errorMessage, 200)})` : ''}; IAM did not change`,
      ...ids,
    };
  }
  if (!eventId)
    return { kind: 'ignored', why: `${eventName} has no eventID to derive request ids from`, ...ids };
  if (!roleName || !ROLE_NAME.test(roleName)) {
    return {
      kind: 'ignored',
      why: `${eventName} names no valid role (roleName ${JSON.stringify(roleName ?? null)})`,
      ...ids,
    };
  }
  const identity = isPlainObject(own(detail, 'userIdentity'))
    ? (own(detail, 'userIdentity') as Record<string, unknown>)
    : {};
  const actor = str(own(identity, 'arn'));
  const actorType = str(own(identity, 'type'));
  const context = own(identity, 'sessionContext');
  const issuer = isPlainObject(context) ? own(context, 'sessionIssuer') : undefined;
  const caller = DIRECT_TYPES.includes(actorType ?? '')
    ? actor
    : ISSUER_TYPES.includes(actorType ?? '') && isPlainObject(issuer)
      ? str(own(issuer, 'arn'))
      : undefined;
  const account =
    [
      str(own(detail, 'recipientAccountId')),
      str(own(identity, 'accountId')),
      str(own(event, 'account')),
    ].find((a) => a !== undefined && ACCOUNT.test(a)) ?? '';
  const partition = /^arn:(aws|aws-cn|aws-us-gov):/.exec(actor ?? '')?.[1] ?? 'aws';
  const base: RoleEventBase = {
    eventName: eventName as RoleEventName,
    eventId,
    eventTime: str(own(detail, 'eventTime')) ?? str(own(event, 'time')) ?? '',
    account,
    partition,
    roleName,
    ...(actor && { actor }),
    ...(actorType && { actorType }),
    ...(caller && { caller }),
  };

  switch (base.eventName) {
    case 'CreateRole': {
      const response = own(detail, 'responseElements');
      const role = isPlainObject(response) ? own(response, 'role') : undefined;
      const arn = isPlainObject(role) ? str(own(role, 'arn')) : undefined;
      const parts = arn ? ROLE_ARN.exec(arn) : null;
      if (!arn || !parts) {
        return { kind: 'ignored', why: 'CreateRole has no responseElements.role.arn to grant to', ...ids };
      }
      const roleId = isPlainObject(role) ? str(own(role, 'roleId')) : undefined;
      return {
        ...base,
        // The ARN is the truth for account, partition and path; the request could omit the path.
        account: parts[2] as string,
        partition: parts[1] as string,
        kind: 'created',
        arn,
        path: parts[3] as string,
        ...(roleId && { roleId }),
        tags: readTags(own(params, 'tags')),
      };
    }
    case 'TagRole':
      return { ...base, kind: 'tagged', tags: readTags(own(params, 'tags')) };
    case 'UntagRole': {
      const keys = own(params, 'tagKeys');
      return {
        ...base,
        kind: 'untagged',
        tagKeys: Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [],
      };
    }
    case 'DeleteRole':
      return { ...base, kind: 'deleted' };
  }
}

/** CloudTrail lower-cases the first letter of API parameters (`tags: [{key, value}]`); accept either. */
function readTags(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(raw)) return out;
  for (const t of raw) {
    if (!isPlainObject(t)) continue;
    const key = str(own(t, 'key')) ?? str(own(t, 'Key'));
    const value = own(t, 'value') ?? own(t, 'Value');
    if (key !== undefined) setTag(out, key, typeof value === 'string' ? value : '');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// mapping

/** What mapping reads of a role: its path and tags, and (when known) who created it and set each tag. */
export interface MappableRole {
  roleName: string;
  path: string;
  tags: Record<string, string>;
  /** Absent: the path is judged as trusted (callers that track no creators, such as tests of the mapping). */
  createdBy?: string;
  /** Absent: every tag is judged as trusted; present: a key missing from it was set by nobody we trust. */
  tagSetBy?: Record<string, string>;
}

/** Whether `caller` is a trusted creator on `clusterName`. */
export type TrustCheck = (clusterName: string, caller: string | undefined) => boolean;

/** The role's mapped access per cluster (clusters with nothing mapped are absent), and notes on bad tags. */
export function mapRole(
  policy: GuardrailPolicy,
  role: MappableRole,
  trusts: TrustCheck = () => true,
): {
  access: Map<string, MappedAccess>;
  notes: PlanNote[];
  /** Tags whose value names a wildcard namespace their mapping does not allow, per cluster. */
  wildcards: Map<string, string[]>;
} {
  const access = new Map<string, MappedAccess>();
  const notes: PlanNote[] = [];
  const wildcards = new Map<string, string[]>();
  for (const clusterName of Object.keys(policy.clusters).sort()) {
    const mappings = policy.clusters[clusterName]?.roleMappings;
    if (!mappings) continue;
    const grants: PolicyAssociation[] = [];
    const matchedBy: string[] = [];
    const pathTrusted = !('createdBy' in role) || trusts(clusterName, role.createdBy);
    for (const m of pathTrusted ? mappings.paths : []) {
      if (!role.path.startsWith(m.prefix)) continue;
      grants.push(association(m.policyArn, m.namespaces));
      matchedBy.push(`path ${m.prefix}`);
    }
    for (const m of mappings.tags) {
      const value = getTag(role.tags, m.key);
      if (value === undefined) continue;
      if (role.tagSetBy && !trusts(clusterName, setterOf(role.tagSetBy, m.key))) continue;
      const parsed = parseTagValue(value, m);
      if ('problem' in parsed) {
        if (parsed.code === 'WILDCARD_NAMESPACE') {
          wildcards.set(clusterName, [
            ...(wildcards.get(clusterName) ?? []),
            `${m.key}=${truncate(value, 120)}`,
          ]);
        }
        notes.push({
          level: 'warn',
          message: `role ${role.roleName} tag ${m.key}=${JSON.stringify(truncate(value, 120))} ${parsed.problem}; ignored`,
          data: { clusterName, tagKey: m.key },
        });
        continue;
      }
      grants.push(association(parsed.policyArn, parsed.namespaces));
      matchedBy.push(`tag ${m.key}=${value}`);
    }
    if (grants.length > 0) access.set(clusterName, { accessPolicies: mergePolicies(grants), matchedBy });
  }
  return { access, notes, wildcards };
}

/** The trust check of a policy: the caller matches one of the cluster's trustedCreators globs. */
export function trustedCreatorCheck(policy: GuardrailPolicy): TrustCheck {
  return (clusterName, caller) => {
    if (!caller) return false;
    const patterns = policy.clusters[clusterName]?.roleMappings?.trustedCreators ?? [];
    return patterns.some((p) => globMatches(p, caller));
  };
}

/**
 * `<level>` (cluster scope) or `<level>:<ns> <ns>...`. IAM tag values allow letters, digits, spaces and
 * `_ . : / = + - @` but no commas, so namespaces are separated by spaces, `/` or `+` (commas are accepted
 * too, for tags that come from elsewhere). A namespace prefix (`team-*`) names every namespace created
 * later with that prefix, so it is refused unless the mapping says `allowWildcardNamespaces: true`.
 */
export function parseTagValue(
  value: string,
  mapping: RoleTagMapping,
): { policyArn: string; namespaces?: string[] } | { problem: string; code?: 'WILDCARD_NAMESPACE' } {
  const colon = value.indexOf(':');
  const level = (colon === -1 ? value : value.slice(0, colon)).trim().toLowerCase();
  const policyArn = Object.hasOwn(mapping.levels, level) ? mapping.levels[level] : undefined;
  if (policyArn === undefined) {
    return {
      problem: `names level ${JSON.stringify(level)}, which the mapping does not know (known: ${Object.keys(mapping.levels).join(', ')})`,
    };
  }
  if (colon === -1) return { policyArn };
  const namespaces = [
    ...new Set(
      value
        .slice(colon + 1)
        .split(/[\s/+,]+/)
        .filter((n) => n !== ''),
    ),
  ];
  if (namespaces.length === 0)
    return { problem: `has nothing after "${level}:"; name namespaces or drop the colon` };
  if (namespaces.length > 50) return { problem: `names ${namespaces.length} namespaces; at most 50` };
  const bad = namespaces.find((n) => !NAMESPACE.test(n));
  if (bad !== undefined) return { problem: `names ${JSON.stringify(bad)}, which is not a namespace` };
  const wildcard = namespaces.find((n) => n.endsWith('*'));
  if (wildcard !== undefined && !mapping.allowWildcardNamespaces) {
    return {
      code: 'WILDCARD_NAMESPACE',
      problem:
        `names the namespace prefix ${JSON.stringify(wildcard)}, which would cover every namespace created later ` +
        `with that prefix; mapping ${mapping.key} allows only exact namespaces (set allowWildcardNamespaces: true on it to allow prefixes)`,
    };
  }
  return { policyArn, namespaces };
}

function association(policyArn: string, namespaces: readonly string[] | undefined): PolicyAssociation {
  return namespaces === undefined
    ? { policyArn, accessScope: { type: 'cluster' } }
    : { policyArn, accessScope: { type: 'namespace', namespaces: [...namespaces] } };
}

/** One association per policy (EKS holds one scope per policy): cluster scope wins, namespaces union. */
function mergePolicies(list: PolicyAssociation[]): PolicyAssociation[] {
  const byArn = new Map<string, Set<string> | 'cluster'>();
  for (const p of list) {
    const prev = byArn.get(p.policyArn);
    if (prev === 'cluster' || p.accessScope.type === 'cluster') {
      byArn.set(p.policyArn, 'cluster');
      continue;
    }
    const set = prev ?? new Set<string>();
    for (const ns of p.accessScope.namespaces ?? []) set.add(ns);
    byArn.set(p.policyArn, set);
  }
  return [...byArn.keys()].sort().map((policyArn) => {
    const scope = byArn.get(policyArn);
    return scope === 'cluster' || scope === undefined
      ? { policyArn, accessScope: { type: 'cluster' } }
      : { policyArn, accessScope: { type: 'namespace', namespaces: [...scope].sort() } };
  });
}

// ---------------------------------------------------------------------------------------------------------
// plan

/**
 * What to enqueue for one event, given what we remember of the role. Requests are validated here, at the
 * edge: one that would not pass (say, a role ARN the contract refuses) becomes a warning, not a message.
 */
export function planRoleEvent(
  policy: GuardrailPolicy,
  event: Exclude<RoleEvent, { kind: 'ignored' }>,
  stored: RoleRecord | undefined,
): RolePlan {
  const notes: PlanNote[] = [];
  if (stored?.lastEventId === event.eventId) {
    // The record is written only after the messages are enqueued, so this event has been applied in full.
    notes.push({
      level: 'info',
      message: `role ${event.roleName}: ${event.eventName} ${event.eventId} was already applied`,
    });
    return { requests: [], rejections: [], notes };
  }
  const live = stored && !stored.deleted ? stored : undefined;
  const stamp = { lastEventId: event.eventId, lastEventTime: event.eventTime };

  if (event.kind === 'deleted') {
    const record = live ?? guessRecord(event, notes, 'revoke');
    // Everything, on every cluster: the role is gone, so no grant of ours for its ARN can still be wanted.
    const requests = Object.keys(policy.clusters)
      .sort()
      .map((clusterName) =>
        request(event, record.arn, clusterName, {
          requestId: requestId(event.eventId, clusterName),
          action: 'revoke',
          reason: `IAM role ${event.roleName} was deleted (DeleteRole ${event.eventId}); ending every grant of ours`,
        }),
      );
    const { pending: _sent, ...rest } = record;
    return finish(
      requests,
      [],
      { ...rest, tags: {}, tagSetBy: {}, grants: {}, deleted: true, ...stamp },
      notes,
    );
  }

  if (event.kind === 'untagged' && !live) {
    notes.push({
      level: 'info',
      message: `role ${event.roleName}: no record of it, so no mapped access of ours to revoke; nothing to do`,
    });
    return { requests: [], rejections: [], notes };
  }

  let base: RoleRecord;
  let tags: Record<string, string>;
  const caller = event.caller ?? '';
  let tagSetBy: Record<string, string> = Object.create(null);
  if (event.kind === 'created') {
    // A successful CreateRole means any earlier role with this name is gone: start from a clean slate, but
    // keep the previous grants so they are revoked (they were made for the old role id).
    base = {
      account: event.account,
      roleName: event.roleName,
      arn: event.arn,
      path: event.path,
      ...(event.roleId && { roleId: event.roleId }),
      tags: {},
      grants: stored?.grants ?? {},
      createdBy: caller,
      ...stamp,
    };
    tags = { ...event.tags };
    for (const k of Object.keys(event.tags)) tagSetBy[k.toLowerCase()] = caller;
    if (live?.guessed && live.lastEventTime > event.eventTime) {
      // EventBridge does not promise order: a TagRole seen before its CreateRole left a guessed record
      // whose tags are newer than the ones CreateRole set.
      for (const [k, v] of Object.entries(live.tags)) {
        setTag(tags, k, v);
        tagSetBy[k.toLowerCase()] = setterOf(live.tagSetBy ?? {}, k) ?? '';
      }
    }
  } else {
    base = live ?? guessRecord(event, notes, 'grant');
    tags = { ...base.tags };
    tagSetBy = Object.assign(Object.create(null), base.tagSetBy);
    if (event.kind === 'tagged') {
      for (const [k, v] of Object.entries(event.tags)) {
        setTag(tags, k, v);
        tagSetBy[k.toLowerCase()] = caller;
      }
    } else {
      for (const k of event.tagKeys) {
        deleteTag(tags, k);
        delete tagSetBy[k.toLowerCase()];
      }
    }
  }

  const trusts = trustedCreatorCheck(policy);
  const role: MappableRole = {
    roleName: event.roleName,
    path: base.path,
    tags,
    tagSetBy,
    ...(base.createdBy !== undefined && { createdBy: base.createdBy }),
  };
  const mapped = mapRole(policy, role, trusts);
  notes.push(...mapped.notes);
  const rejections = event.kind === 'untagged' ? [] : refused(policy, event, base.arn, role, trusts, mapped);
  const recreated = event.kind === 'created';
  const requests: AccessRequest[] = [];
  const grants: RoleRecord['grants'] = Object.create(null);
  const clusters = [...new Set([...Object.keys(base.grants), ...mapped.access.keys()])].sort();
  for (const clusterName of clusters) {
    // Own properties only: a cluster may be called `constructor`.
    const before = Object.hasOwn(base.grants, clusterName) ? base.grants[clusterName] : undefined;
    const after = mapped.access.get(clusterName);
    if (before && after && !recreated && sameAccess(before.accessPolicies, after.accessPolicies)) {
      grants[clusterName] = before;
      continue;
    }
    if (after) {
      const grant = request(event, base.arn, clusterName, {
        requestId: requestId(event.eventId, clusterName),
        action: 'grant',
        accessPolicies: after.accessPolicies,
        reason: `IAM ${event.eventName} of role ${event.roleName} (${event.eventId}): ${after.matchedBy.join('; ')}`,
        ...(recreated && { principalRecreated: true }),
      });
      requests.push(grant);
      grants[clusterName] = { grantId: grant.requestId, accessPolicies: after.accessPolicies };
    }
    if (before) {
      // After the new grant, in the same FIFO group: the principal never drops to less than both.
      requests.push(
        request(event, base.arn, clusterName, {
          requestId: requestId(event.eventId, clusterName, 'r'),
          action: 'revoke',
          grantId: before.grantId,
          reason: after
            ? `IAM ${event.eventName} of role ${event.roleName} (${event.eventId}) changed its mapped access; replaced by the grant above`
            : `IAM ${event.eventName} of role ${event.roleName} (${event.eventId}): no mapping matches any more`,
        }),
      );
    }
  }

  if (requests.length === 0) {
    notes.push({
      level: 'info',
      message:
        mapped.access.size === 0
          ? `role ${event.roleName} matched no mapping; nothing to grant`
          : `role ${event.roleName}: ${event.eventName} left its mapped access unchanged; nothing to do`,
      data: { eventName: event.eventName, path: base.path, tagKeys: Object.keys(tags) },
    });
  }
  const { pending: _sent, ...rest } = base;
  return finish(requests, rejections, { ...rest, tags, tagSetBy, grants, ...stamp }, notes);
}

/**
 * What this event would have granted but may not: on each cluster where trusting the event's caller would
 * map more (or other) access than the trusted creators vouch for, UNTRUSTED_ACTOR; else, where a tag names
 * a wildcard namespace its mapping does not allow, WILDCARD_NAMESPACE.
 */
function refused(
  policy: GuardrailPolicy,
  event: Exclude<RoleEvent, { kind: 'ignored' }>,
  principalArn: string,
  role: MappableRole,
  trusts: TrustCheck,
  mapped: ReturnType<typeof mapRole>,
): RoleRejection[] {
  const caller = event.caller ?? '';
  const ifTrusted = mapRole(policy, role, (c, who) => trusts(c, who) || who === caller);
  const out: RoleRejection[] = [];
  const clusters = new Set([...ifTrusted.access.keys(), ...ifTrusted.wildcards.keys()]);
  for (const clusterName of [...clusters].sort()) {
    const base = {
      requestId: requestId(event.eventId, clusterName),
      clusterName,
      principalArn,
      ...(event.actor && { requestedBy: truncate(event.actor, 255) }),
    };
    const wanted = ifTrusted.access.get(clusterName);
    const got = mapped.access.get(clusterName);
    // Only tags this event set: an old tag's problem was reported by the event that set it.
    const fresh =
      event.kind === 'tagged' || event.kind === 'created'
        ? (ifTrusted.wildcards.get(clusterName) ?? []).filter(
            (t) => getTag(event.tags, t.slice(0, t.indexOf('='))) !== undefined,
          )
        : [];
    if (
      !trusts(clusterName, event.caller) &&
      (JSON.stringify(wanted) !== JSON.stringify(got) || fresh.length > 0)
    ) {
      const who = event.caller
        ? `${event.caller}${event.actor && event.actor !== event.caller ? ` (as ${event.actor})` : ''}`
        : `a ${event.actorType ?? 'unknown'} identity with no IAM ARN${event.actor ? ` (${event.actor})` : ''}`;
      const patterns = policy.clusters[clusterName]?.roleMappings?.trustedCreators ?? [];
      out.push({
        ...base,
        code: 'UNTRUSTED_ACTOR',
        message:
          `IAM ${event.eventName} of role ${event.roleName} (${event.eventId}) by ${who} would grant ` +
          `${[...(wanted?.matchedBy ?? []), ...fresh.map((t) => `tag ${t}`)].join('; ') || 'access'} on cluster ${clusterName}, but the caller is not a trusted creator ` +
          `(clusters.${clusterName}.roleMappings.trustedCreators: ${patterns.length > 0 ? patterns.join(', ') : 'none, so nobody is trusted'}); nothing was granted`,
      });
      continue;
    }
    if (fresh.length > 0) {
      out.push({
        ...base,
        code: 'WILDCARD_NAMESPACE',
        message:
          `IAM ${event.eventName} of role ${event.roleName} (${event.eventId}): tag ${fresh.join(', ')} names a namespace ` +
          `prefix, which would cover namespaces created later; the mapping on cluster ${clusterName} allows exact ` +
          'namespaces only (allowWildcardNamespaces: true allows prefixes); nothing was granted for it',
      });
    }
  }
  return out;
}

/** Drops (with a warning) any request the contract would refuse, and keeps the record consistent with that. */
function finish(
  requests: AccessRequest[],
  rejections: RoleRejection[],
  record: RoleRecord,
  notes: PlanNote[],
): RolePlan {
  const valid: AccessRequest[] = [];
  for (const r of requests) {
    const checked = validateAccessRequest(r);
    if (checked.ok) {
      valid.push(checked.request);
      continue;
    }
    notes.push({
      level: 'warn',
      message: `not enqueuing ${r.action} for ${r.principalArn} on ${r.clusterName}: ${checked.reason.message}`,
      data: { code: checked.reason.code, requestId: r.requestId },
    });
    if (r.action === 'grant') delete record.grants[r.clusterName];
  }
  return { requests: valid, rejections, record, notes };
}

function guessRecord(
  event: Exclude<RoleEvent, { kind: 'ignored' | 'created' }>,
  notes: PlanNote[],
  what: string,
): RoleRecord {
  const arn = `arn:${event.partition}:iam::${event.account}:role/${event.roleName}`;
  notes.push({
    level: 'warn',
    message:
      `role ${event.roleName}: no CreateRole seen for it (created before this intake was deployed?), and ` +
      `${event.eventName} does not carry the role's path; assuming ${arn}. If the role has a path, the ` +
      `${what} will name the wrong ARN`,
    data: { arn },
  });
  return {
    account: event.account,
    roleName: event.roleName,
    arn,
    path: '/',
    tags: {},
    grants: {},
    guessed: true,
    lastEventId: event.eventId,
    lastEventTime: event.eventTime,
  };
}

function request(
  event: RoleEventBase,
  principalArn: string,
  clusterName: string,
  fields: Pick<AccessRequest, 'requestId' | 'action' | 'reason'> &
    Partial<Pick<AccessRequest, 'accessPolicies' | 'grantId' | 'principalRecreated'>>,
): AccessRequest {
  return {
    schemaVersion: 1,
    requestId: fields.requestId,
    action: fields.action,
    source: 'iam-role-created',
    clusterName,
    principalArn,
    ...(fields.accessPolicies && { accessPolicies: fields.accessPolicies }),
    ...(event.actor && { requestedBy: truncate(event.actor, 255) }),
    ...(fields.reason && { reason: truncate(fields.reason, 1000) }),
    ...(fields.grantId && { grantId: fields.grantId }),
    ...(fields.principalRecreated && { principalRecreated: true }),
  };
}

/** `iam-<eventID>-<cluster>[-suffix]`, hashed down when a long cluster name would pass 128 characters. */
export function requestId(eventId: string, clusterName: string, suffix?: string): string {
  const event = ID_SAFE.test(eventId) ? eventId : digest(eventId);
  const id = `iam-${event}-${clusterName}${suffix ? `-${suffix}` : ''}`;
  return id.length <= 128 ? id : `iam-${event.slice(0, 64)}-${digest(`${clusterName}\n${suffix ?? ''}`)}`;
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

function sameAccess(a: PolicyAssociation[], b: PolicyAssociation[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** IAM tag keys are case-insensitive: a new `Eks-Access/dev` replaces `eks-access/dev`. */
function setTag(tags: Record<string, string>, key: string, value: string): void {
  deleteTag(tags, key);
  // defineProperty: `__proto__` is a valid IAM tag key, and plain assignment would set the prototype.
  Object.defineProperty(tags, key, { value, enumerable: true, writable: true, configurable: true });
}

function deleteTag(tags: Record<string, string>, key: string): void {
  for (const k of Object.keys(tags)) if (k.toLowerCase() === key.toLowerCase()) delete tags[k];
}

function setterOf(setBy: Record<string, string>, key: string): string | undefined {
  const k = key.toLowerCase();
  return Object.hasOwn(setBy, k) ? setBy[k] : undefined;
}

function getTag(tags: Record<string, string>, key: string): string | undefined {
  for (const [k, v] of Object.entries(tags)) if (k.toLowerCase() === key.toLowerCase()) return v;
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
