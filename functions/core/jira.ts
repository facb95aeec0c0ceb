/**
 * Jira webhook → AccessRequest v1 candidate, through a configurable field mapping (Jira sites name their
 * custom fields `customfield_<n>`, so nothing here can be hard-wired). The candidate is then validated like
 * any other request; this module only reads the webhook.
 *
 * Only the delivery of a status transition is an approval: its changelog moves `status` into one of
 * `approvedStatuses`, and the approver is the user who made that transition (the webhook's `user`), as
 * `jira:<accountId>` (core/identity.ts). Approvers never come from an issue field, which the requester
 * can edit; a mapping with `fields.approvedBy` is refused at cold start. The request id is derived from
 * the issue key and the changelog id, so a redelivery is a replay, and a later edit of the issue (a new
 * changelog without a status move) is not an approval: editing fields after approval grants nothing.
 * Any other delivery (no changelog, an update that does not move the status into an approved one) is
 * JIRA_NOT_APPROVED. The requester is the user in `fields.requestedBy` (default: the reporter), also as
 * `jira:<accountId>`, so self-approval compares account ids.
 *
 * Mapping (JSON, from JIRA_FIELD_MAPPING):
 *   {
 *     "approvedStatuses": ["Approved"],
 *     "fields": {                               Jira field ids or dotted paths under issue.fields
 *       "clusterName": "customfield_10201",     required
 *       "principalArn": "customfield_10202",    required
 *       "accessLevel": "customfield_10203",     required; its value is looked up in accessLevels
 *       "namespaces": "customfield_10204",      optional; absent or empty → cluster scope
 *       "kubernetesGroups": "labels",           optional
 *       "duration": "customfield_10205",        optional, ISO-8601 (PT8H)
 *       "requestedBy": "reporter",              optional, default "reporter"; must hold a Jira user
 *       "reason": "summary"                     optional, default "summary"
 *     },
 *     "accessLevels": { "View": "AmazonEKSViewPolicy", "Edit": "AmazonEKSEditPolicy" }
 *   }
 */

import { ACCESS_POLICY_NAMES } from './access-policies.js';
import { ConfigError } from './errors.js';
import { jiraIdentity } from './identity.js';
import { isPlainObject, own, truncate } from './schema.js';
import type { Reason } from './types.js';

export const JIRA_REASON_CODES = [
  'INVALID_JIRA_PAYLOAD',
  'JIRA_NOT_APPROVED',
  /** A field the mapping names is absent, null or empty in the issue. */
  'JIRA_FIELD_MISSING',
  /** A field holds a value the mapping cannot translate (an access level it does not list, an object it cannot read). */
  'JIRA_FIELD_UNMAPPED',
] as const;
export type JiraReasonCode = (typeof JIRA_REASON_CODES)[number];

const REQUIRED_FIELDS = ['clusterName', 'principalArn', 'accessLevel'] as const;
const OPTIONAL_FIELDS = ['namespaces', 'kubernetesGroups', 'duration', 'requestedBy', 'reason'] as const;
type MappedField = (typeof REQUIRED_FIELDS)[number] | (typeof OPTIONAL_FIELDS)[number];

export interface JiraFieldMapping {
  /** Lower-cased status names. */
  readonly approvedStatuses: readonly string[];
  /** AccessRequest-side name → Jira field id or dotted path under `issue.fields`. */
  readonly fields: Readonly<Partial<Record<MappedField, string>>> &
    Readonly<Record<(typeof REQUIRED_FIELDS)[number], string>>;
  /** Lower-cased access level → policy ARN. */
  readonly accessLevels: Readonly<Record<string, string>>;
}

export type JiraResult =
  | { ok: true; candidate: Record<string, unknown> }
  | { ok: false; reason: Reason & { code: JiraReasonCode } };

const FIELD_REF = /^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$/;
const ISSUE_KEY = /^[A-Z][A-Z0-9_]*-[0-9]+$/;
const ID = /^[A-Za-z0-9._:-]+$/;
/** Atlassian account ids: 24 hex digits, or `<n>:<uuid>`. */
const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9:-]{0,127}$/;

// ---------------------------------------------------------------------------------------------------------
// mapping

/**
 * Validates the mapping once at cold start, failing it with every problem listed (each prefixed with
 * `origin`, e.g. the variable it came from). Status and level names are lower-cased for lookups.
 */
export function validateJiraMapping(raw: unknown, origin = 'JIRA_FIELD_MAPPING'): JiraFieldMapping {
  const problems: string[] = [];
  if (!isPlainObject(raw)) {
    throw new ConfigError(`${origin}: must be a JSON object { approvedStatuses, fields, accessLevels }`);
  }
  for (const key of Object.keys(raw)) {
    if (!['approvedStatuses', 'fields', 'accessLevels'].includes(key)) problems.push(`${key}: unknown key`);
  }
  const statuses = own(raw, 'approvedStatuses') ?? ['Approved'];
  if (
    !Array.isArray(statuses) ||
    statuses.length === 0 ||
    !statuses.every((s) => typeof s === 'string' && s.trim())
  ) {
    problems.push('approvedStatuses: must be a non-empty list of Jira status names');
  }
  const fields: Record<string, string> = { requestedBy: 'reporter', reason: 'summary' };
  const rawFields = own(raw, 'fields');
  if (!isPlainObject(rawFields)) {
    problems.push(
      `fields: must map ${REQUIRED_FIELDS.join(', ')} (and optionally ${OPTIONAL_FIELDS.join(', ')}) to Jira field ids`,
    );
  } else {
    for (const [name, ref] of Object.entries(rawFields)) {
      if (name === 'approvedBy') {
        problems.push(
          'fields.approvedBy: approvers come only from the user who moved the issue into an approved status ' +
            "(the webhook's user); an issue field can be edited by the requester, so it cannot name approvers. " +
            'Remove fields.approvedBy.',
        );
      } else if (
        !(REQUIRED_FIELDS as readonly string[]).includes(name) &&
        !(OPTIONAL_FIELDS as readonly string[]).includes(name)
      ) {
        problems.push(
          `fields.${name}: unknown; mappable: ${[...REQUIRED_FIELDS, ...OPTIONAL_FIELDS].join(', ')}`,
        );
      } else if (typeof ref !== 'string' || !FIELD_REF.test(ref)) {
        problems.push(
          `fields.${name}: must be a Jira field id such as customfield_10201 or a path such as reporter.emailAddress`,
        );
      } else {
        fields[name] = ref;
      }
    }
    for (const name of REQUIRED_FIELDS) {
      if (!Object.hasOwn(rawFields, name)) problems.push(`fields.${name}: is required`);
    }
  }
  const accessLevels: Record<string, string> = Object.create(null);
  const rawLevels = own(raw, 'accessLevels');
  if (!isPlainObject(rawLevels) || Object.keys(rawLevels).length === 0) {
    problems.push(
      'accessLevels: must map each access-level value of the Jira field to a policy, e.g. {"View": "AmazonEKSViewPolicy"}',
    );
  } else {
    for (const [level, policy] of Object.entries(rawLevels)) {
      const arn = typeof policy === 'string' ? policyArnOf(policy) : undefined;
      if (arn === undefined) {
        problems.push(
          `accessLevels.${level}: ${JSON.stringify(policy)} is not one of ${ACCESS_POLICY_NAMES.join(', ')}`,
        );
      } else {
        accessLevels[level.trim().toLowerCase()] = arn;
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${origin}: ${p}`).join('\n'));
  return {
    approvedStatuses: (statuses as string[]).map((s) => s.trim().toLowerCase()),
    fields: fields as JiraFieldMapping['fields'],
    accessLevels,
  };
}

function policyArnOf(value: string): string | undefined {
  const name = value.startsWith('arn:') ? value.slice(value.lastIndexOf('/') + 1) : value;
  if (!(ACCESS_POLICY_NAMES as readonly string[]).includes(name)) return undefined;
  return value.startsWith('arn:') ? value : `arn:aws:eks::aws:cluster-access-policy/${name}`;
}

// ---------------------------------------------------------------------------------------------------------
// webhook → candidate

export function jiraToAccessRequest(payload: unknown, mapping: JiraFieldMapping): JiraResult {
  if (!isPlainObject(payload)) return invalid('the body is not a JSON object');
  const issue = own(payload, 'issue');
  if (!isPlainObject(issue)) return invalid('it has no "issue" object; is this a Jira issue webhook?');
  const key = own(issue, 'key');
  if (typeof key !== 'string' || !ISSUE_KEY.test(key))
    return invalid('"issue.key" is missing or not an issue key such as OPS-101');
  const fields = own(issue, 'fields');
  if (!isPlainObject(fields)) return invalid(`issue ${key} has no "fields" object`);

  const approval = approvalOf(payload, mapping);
  if (!approval.ok) return approval;
  const requestId = requestIdOf(payload, key);
  if (requestId === undefined) {
    return invalid(
      'its changelog has no usable "id" (1–80 of A-Z a-z 0-9 . _ : -), so a redelivery could not be told from a new approval',
    );
  }
  const approver = accountOf(own(payload, 'user'));
  if (approver === undefined) {
    return invalid('it names no "user" with an accountId, so nobody can be said to have approved it');
  }

  const candidate: Record<string, unknown> = {
    schemaVersion: 1,
    requestId,
    action: 'grant',
    source: 'ticket',
  };
  for (const name of ['clusterName', 'principalArn'] as const) {
    const value = scalar(fields, mapping, name, key);
    if (!value.ok) return value;
    candidate[name] = value.value;
  }
  const level = scalar(fields, mapping, 'accessLevel', key);
  if (!level.ok) return level;
  const policyArn = mapping.accessLevels[level.value.toLowerCase()];
  if (policyArn === undefined) {
    return unmapped(
      `${key}: access level ${JSON.stringify(truncate(level.value))} in Jira field ${mapping.fields.accessLevel} ` +
        `has no entry in the mapping's accessLevels (known: ${Object.keys(mapping.accessLevels).join(', ')})`,
    );
  }
  const namespaces = list(fields, mapping, 'namespaces', key);
  if (!namespaces.ok) return namespaces;
  candidate.accessPolicies = [
    {
      policyArn,
      accessScope:
        namespaces.value.length > 0
          ? { type: 'namespace', namespaces: namespaces.value }
          : { type: 'cluster' },
    },
  ];
  const groups = list(fields, mapping, 'kubernetesGroups', key);
  if (!groups.ok) return groups;
  if (groups.value.length > 0) candidate.kubernetesGroups = groups.value;

  for (const name of ['duration', 'reason'] as const) {
    if (mapping.fields[name] === undefined) continue;
    const value = scalar(fields, mapping, name, key, true);
    if (!value.ok) return value;
    if (value.value !== '') candidate[name] = name === 'reason' ? truncate(value.value, 1000) : value.value;
  }
  const requesterRef = mapping.fields.requestedBy ?? 'reporter';
  const requesterValue = read(fields, requesterRef);
  if (requesterValue !== undefined && requesterValue !== null) {
    const requester = accountOf(requesterValue);
    if (requester === undefined) {
      return unmapped(
        `${key}: Jira field ${requesterRef} (requestedBy) holds no Jira user with an accountId; map requestedBy to a ` +
          'user field (reporter, creator or a user picker), so self-approval compares Jira account ids',
      );
    }
    candidate.requestedBy = requester;
  }
  // Whoever moved the issue into an approved status approved it; nothing else can say so.
  candidate.approvedBy = [approver];
  candidate.ticket = key;
  return { ok: true, candidate };
}

/** Names the Jira field behind a request field that failed validation, so the ticket's author can fix it. */
export function explainForJira(reason: Reason, mapping: JiraFieldMapping): Reason {
  for (const [name, ref] of Object.entries(mapping.fields)) {
    const requestField = name === 'accessLevel' || name === 'namespaces' ? 'accessPolicies' : name;
    if (reason.message.startsWith(`"${requestField}`)) {
      return { ...reason, message: `${reason.message} (from Jira field ${ref})` };
    }
  }
  return reason;
}

function approvalOf(payload: Record<string, unknown>, mapping: JiraFieldMapping): { ok: true } | JiraResult {
  const approved = (v: unknown) =>
    typeof v === 'string' && mapping.approvedStatuses.includes(v.trim().toLowerCase());
  const changelog = own(payload, 'changelog');
  const items = isPlainObject(changelog) ? own(changelog, 'items') : undefined;
  if (!Array.isArray(items)) {
    // A Jira Automation web request, or a webhook for another event: it says what the issue is, not that
    // someone approved it now, so it could repeat an old approval for an issue edited since.
    return notApproved(
      `the delivery has no changelog; only the webhook of a status transition into ${mapping.approvedStatuses.join(' or ')} is an approval`,
    );
  }
  const status = items.find(
    (i) => isPlainObject(i) && String(own(i, 'fieldId') ?? own(i, 'field') ?? '').toLowerCase() === 'status',
  ) as Record<string, unknown> | undefined;
  if (status && approved(own(status, 'toString')) && !approved(own(status, 'fromString')))
    return { ok: true };
  return notApproved(
    status
      ? `the status changed from ${JSON.stringify(own(status, 'fromString') ?? null)} to ${JSON.stringify(own(status, 'toString') ?? null)}, not into ${mapping.approvedStatuses.join(' or ')}`
      : 'the update did not change the status (editing an approved issue approves nothing)',
  );
}

/** One id per transition: a redelivered webhook is a replay, a later re-approval a new request. */
function requestIdOf(payload: Record<string, unknown>, key: string): string | undefined {
  const changelog = own(payload, 'changelog');
  const changeId = isPlainObject(changelog) ? own(changelog, 'id') : undefined;
  const suffix = typeof changeId === 'string' || typeof changeId === 'number' ? String(changeId) : undefined;
  if (suffix === undefined || suffix.length > 80 || !ID.test(suffix)) return undefined;
  return `jira-${key}-${suffix}`;
}

/** A Jira user object's canonical identity, `jira:<accountId>`. */
function accountOf(value: unknown): string | undefined {
  if (!isPlainObject(value)) return undefined;
  const id = own(value, 'accountId');
  if (typeof id !== 'string' || !ACCOUNT_ID.test(id.trim())) return undefined;
  return jiraIdentity(id);
}

type Got<T> = { ok: true; value: T } | { ok: false; reason: Reason & { code: JiraReasonCode } };

function read(fields: Record<string, unknown>, ref: string): unknown {
  let node: unknown = fields;
  for (const part of ref.split('.')) node = isPlainObject(node) ? own(node, part) : undefined;
  return node;
}

/** A Jira value as text: strings as they are; options, users, statuses and versions by their readable key. */
function text(value: unknown): Got<string> {
  if (value === undefined || value === null) return { ok: true, value: '' };
  if (typeof value === 'string') return { ok: true, value: value.trim() };
  if (typeof value === 'number') return { ok: true, value: String(value) };
  if (isPlainObject(value)) {
    for (const k of ['value', 'emailAddress', 'name', 'accountId', 'key']) {
      const v = own(value, k);
      if (typeof v === 'string' && v.trim() !== '') return { ok: true, value: v.trim() };
    }
  }
  return { ok: false, reason: { code: 'JIRA_FIELD_UNMAPPED', message: '' } };
}

function scalar(
  fields: Record<string, unknown>,
  mapping: JiraFieldMapping,
  name: MappedField,
  key: string,
  optional = false,
): Got<string> {
  const ref = mapping.fields[name] as string;
  let raw = read(fields, ref);
  if (Array.isArray(raw)) {
    if (raw.length > 1)
      return unmapped(`${key}: Jira field ${ref} (${name}) holds ${raw.length} values; expected one`);
    raw = raw[0];
  }
  const value = text(raw);
  if (!value.ok)
    return unmapped(`${key}: Jira field ${ref} (${name}) holds a value this mapping cannot read as text`);
  if (value.value === '' && !optional) {
    return {
      ok: false,
      reason: {
        code: 'JIRA_FIELD_MISSING',
        message: `${key}: Jira field ${ref}, mapped to ${name}, is missing or empty; fill it in and approve again`,
      },
    };
  }
  return value;
}

/** Multi-value fields (labels, multi-selects) or text separated by commas or whitespace. */
function list(
  fields: Record<string, unknown>,
  mapping: JiraFieldMapping,
  name: MappedField,
  key: string,
): Got<string[]> {
  const ref = mapping.fields[name];
  if (ref === undefined) return { ok: true, value: [] };
  const raw = read(fields, ref);
  const items = Array.isArray(raw) ? raw : [raw];
  const out: string[] = [];
  for (const item of items) {
    const value = text(item);
    if (!value.ok)
      return unmapped(`${key}: Jira field ${ref} (${name}) holds a value this mapping cannot read as text`);
    const parts = Array.isArray(raw) ? [value.value] : value.value.split(/[\s,]+/);
    for (const p of parts) if (p !== '' && !out.includes(p)) out.push(p);
  }
  return { ok: true, value: out };
}

function invalid(why: string): JiraResult {
  return {
    ok: false,
    reason: { code: 'INVALID_JIRA_PAYLOAD', message: `Not a usable Jira webhook: ${why}.` },
  };
}

function notApproved(why: string): { ok: false; reason: Reason & { code: JiraReasonCode } } {
  return {
    ok: false,
    reason: { code: 'JIRA_NOT_APPROVED', message: `Not an approval: ${why}; nothing to do.` },
  };
}

function unmapped(message: string): { ok: false; reason: Reason & { code: JiraReasonCode } } {
  return { ok: false, reason: { code: 'JIRA_FIELD_UNMAPPED', message } };
}
