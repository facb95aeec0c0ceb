import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  accessRequestJsonSchema,
  MAX_BODY_BYTES,
  type ParseResult,
  parseAccessRequest,
  parseIsoDuration,
  REQUEST_REASON_CODES,
  type RequestReasonCode,
  utf8ByteLength,
  validateAccessRequest,
} from '../../functions/core/request.js';
import { renderSchemaFiles, SCHEMAS_DIR, schemas } from '../../infra/scripts/schemas.js';
import { accepts } from '../helpers/ajv.js';

type Json = Record<string, unknown>;

const REQUESTS_DIR = new URL('../../events/requests/', import.meta.url);
const readFixture = (name: string): string => readFileSync(new URL(name, REQUESTS_DIR), 'utf8');
const fixture = (name: string): Json => JSON.parse(readFixture(name)) as Json;

const VIEW = fixture('dev-view-grant.json');
const BREAK_GLASS = fixture('prod-break-glass.json');
const REVOKE = fixture('dev-view-revoke.json');

const DROP = Symbol('drop');
/** A deep copy of `base` with top-level fields replaced, or removed with DROP. */
function patch(base: Json, changes: Record<string, unknown>): Json {
  const out = structuredClone(base);
  for (const [k, v] of Object.entries(changes)) {
    if (v === DROP) delete out[k];
    else out[k] = v;
  }
  return out;
}
/** An operator's extension of the dev-view grant by an hour. */
const EXTEND = patch(REVOKE, {
  requestId: 'operator-extend-1',
  action: 'extend',
  source: 'operator',
  extendBy: 'PT1H',
  requestedBy: 'arn:aws:sts::111122223333:assumed-role/OperatorRole/alice',
  ticket: DROP,
});
const VIEW_POLICY = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
const policy = (accessScope: unknown, policyArn: unknown = VIEW_POLICY) => ({ policyArn, accessScope });
const withScope = (accessScope: unknown) => patch(VIEW, { accessPolicies: [policy(accessScope)] });
const withNamespaces = (namespaces: unknown) => withScope({ type: 'namespace', namespaces });
const arn = (principalArn: string) => patch(VIEW, { principalArn });
const range = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));

function rejected(r: ParseResult) {
  if (r.ok) throw new Error(`expected a rejection, got ok: ${JSON.stringify(r.request)}`);
  return r;
}

interface Case {
  name: string;
  code: RequestReasonCode;
  input?: unknown;
  /** Raw body instead of an object (size and JSON checks). */
  body?: string;
  /** The rule is one a JSON Schema cannot express: the published schema accepts this input. */
  validatorOnly?: true;
}

const padTo = (bytes: number) => {
  const body = JSON.stringify(VIEW);
  return body + ' '.repeat(bytes - utf8ByteLength(body));
};

/** Cases that set one field of the dev-view grant to a value, each refused with the same code. */
const fieldCases = (field: string, code: RequestReasonCode, values: Array<[name: string, value: unknown]>) =>
  values.map(([name, value]): Case => ({ name, input: patch(VIEW, { [field]: value }), code }));

let deep = '';
for (let i = 0; i < 5000; i++) deep = `[${deep}]`;

/** Every reason code, with at least one input producing it. */
const CASES: Case[] = [
  { name: 'a body of MAX_BODY_BYTES + 1 bytes', body: padTo(MAX_BODY_BYTES + 1), code: 'BODY_TOO_LARGE' },
  {
    name: 'a body over the limit in UTF-8 bytes but not in characters',
    body: JSON.stringify(patch(VIEW, { reason: 'é'.repeat(1000) })).padEnd(MAX_BODY_BYTES - 500, ' '),
    code: 'BODY_TOO_LARGE',
  },
  { name: 'truncated JSON', body: '{"schemaVersion": 1,', code: 'MALFORMED_JSON' },
  { name: 'an empty body', body: '', code: 'MALFORMED_JSON' },
  { name: 'single-quoted keys', body: "{'schemaVersion': 1}", code: 'MALFORMED_JSON' },
  { name: 'a byte-order mark', body: `\uFEFF${JSON.stringify(VIEW)}`, code: 'MALFORMED_JSON' },
  { name: 'an array', input: [VIEW], code: 'NOT_AN_OBJECT' },
  { name: 'null', input: null, code: 'NOT_AN_OBJECT' },
  { name: 'a string', input: JSON.stringify(VIEW), code: 'NOT_AN_OBJECT' },
  { name: 'a number', input: 1, code: 'NOT_AN_OBJECT' },
  { name: 'deeply nested arrays', body: deep, code: 'NOT_AN_OBJECT' },
  { name: 'an unknown top-level field', input: patch(VIEW, { priority: 'high' }), code: 'UNKNOWN_FIELD' },
  { name: 'a field in the wrong case', input: patch(VIEW, { ClusterName: 'dev' }), code: 'UNKNOWN_FIELD' },
  { name: 'a "constructor" key', input: patch(VIEW, { constructor: {} }), code: 'UNKNOWN_FIELD' },
  { name: 'a "prototype" key', input: patch(VIEW, { prototype: {} }), code: 'UNKNOWN_FIELD' },
  {
    name: 'an unknown field in an access policy',
    input: patch(VIEW, { accessPolicies: [{ ...policy({ type: 'cluster' }), scope: 'cluster' }] }),
    code: 'UNKNOWN_FIELD',
  },
  {
    name: 'an unknown field in an access scope',
    input: withScope({ type: 'cluster', cluster: 'dev' }),
    code: 'UNKNOWN_FIELD',
  },
  {
    name: 'deeply nested garbage under an unknown key',
    body: JSON.stringify(VIEW).replace(/}$/, `,"x":${deep}}`),
    code: 'UNKNOWN_FIELD',
  },
  ...['schemaVersion', 'requestId', 'action', 'source', 'clusterName', 'principalArn'].map(
    (f): Case => ({ name: `no ${f}`, input: patch(VIEW, { [f]: DROP }), code: 'MISSING_FIELD' }),
  ),
  {
    name: 'no policyArn',
    input: patch(VIEW, { accessPolicies: [{ accessScope: { type: 'cluster' } }] }),
    code: 'MISSING_FIELD',
  },
  {
    name: 'no accessScope',
    input: patch(VIEW, { accessPolicies: [{ policyArn: VIEW_POLICY }] }),
    code: 'MISSING_FIELD',
  },
  { name: 'no scope type', input: withScope({ namespaces: ['a'] }), code: 'MISSING_FIELD' },
  { name: 'a numeric requestId', input: patch(VIEW, { requestId: 42 }), code: 'INVALID_TYPE' },
  { name: 'schemaVersion as a string', input: patch(VIEW, { schemaVersion: '1' }), code: 'INVALID_TYPE' },
  { name: 'a fractional schemaVersion', input: patch(VIEW, { schemaVersion: 1.5 }), code: 'INVALID_TYPE' },
  { name: 'a null optional field', input: patch(VIEW, { username: null }), code: 'INVALID_TYPE' },
  { name: 'a null required field', input: patch(VIEW, { clusterName: null }), code: 'INVALID_TYPE' },
  { name: 'groups as a string', input: patch(VIEW, { kubernetesGroups: 'team-a' }), code: 'INVALID_TYPE' },
  { name: 'accessPolicies as an object', input: patch(VIEW, { accessPolicies: {} }), code: 'INVALID_TYPE' },
  { name: 'an access scope as a string', input: withScope('cluster'), code: 'INVALID_TYPE' },
  { name: 'namespaces as a string', input: withNamespaces('team-a'), code: 'INVALID_TYPE' },
  { name: 'a numeric approver', input: patch(VIEW, { approvedBy: [7] }), code: 'INVALID_TYPE' },
  { name: 'a boolean action', input: patch(VIEW, { action: true }), code: 'INVALID_TYPE' },
  { name: 'schemaVersion 2', input: patch(VIEW, { schemaVersion: 2 }), code: 'UNSUPPORTED_SCHEMA_VERSION' },
  {
    name: 'schemaVersion 2 with fields v1 does not know',
    input: patch(VIEW, { schemaVersion: 2, newV2Field: true, requestId: DROP }),
    code: 'UNSUPPORTED_SCHEMA_VERSION',
  },
  ...fieldCases('requestId', 'INVALID_REQUEST_ID', [
    ['an empty requestId', ''],
    ['a 129-character requestId', 'r'.repeat(129)],
    ['a requestId with a space', 'req 1'],
    ['a requestId with a slash', 'req/1'],
  ]),
  { name: 'an action in another case', input: patch(VIEW, { action: 'Grant' }), code: 'INVALID_ACTION' },
  { name: 'an unknown action', input: patch(VIEW, { action: 'delete' }), code: 'INVALID_ACTION' },
  {
    name: 'an expiry that grants',
    input: patch(REVOKE, { source: 'expiry', action: 'grant', kubernetesGroups: ['g'] }),
    code: 'INVALID_ACTION',
  },
  { name: 'an unknown source', input: patch(VIEW, { source: 'jira' }), code: 'INVALID_SOURCE' },
  ...fieldCases('clusterName', 'INVALID_CLUSTER_NAME', [
    ['a cluster name starting with -', '-dev'],
    ['a dotted cluster name', 'dev.eu'],
    ['an empty cluster name', ''],
    ['a 101-character cluster name', 'c'.repeat(101)],
  ]),
  ...fieldCases('principalArn', 'INVALID_PRINCIPAL_ARN', [
    // Cyrillic 'а' (U+0430) in place of the Latin one.
    ['a Cyrillic lookalike in the ARN', 'аrn:aws:iam::111122223333:role/team-a-dev'],
    ['a Cyrillic lookalike in the role name', 'arn:aws:iam::111122223333:role/teаm'],
    ['a trailing newline in the ARN', 'arn:aws:iam::111122223333:role/team-a-dev\n'],
    ['a leading space in the ARN', ' arn:aws:iam::111122223333:role/team-a-dev'],
    ['a NUL in the ARN', 'arn:aws:iam::111122223333:role/team\u0000'],
    ['a fullwidth colon in the ARN', 'arn:aws:iam::111122223333：role/x'],
    ['the account root', 'arn:aws:iam::111122223333:root'],
    ['an IAM group ARN', 'arn:aws:iam::111122223333:group/admins'],
    ['an 11-digit account', 'arn:aws:iam::11112222333:role/x'],
    ['an unknown partition', 'arn:aws-iso:iam::111122223333:role/x'],
    ['a role with no name', 'arn:aws:iam::111122223333:role/'],
    ['an empty path segment', 'arn:aws:iam::111122223333:role//x'],
    ['a 65-character role name', `arn:aws:iam::111122223333:role/${'n'.repeat(65)}`],
    ['a 2049-character ARN', `arn:aws:iam::111122223333:role/${'p/'.repeat(1000)}${'n'.repeat(18)}`],
    ['a federated-user STS ARN', 'arn:aws:sts::111122223333:federated-user/bob'],
  ]),
  { name: 'the assumed-role fixture', input: fixture('invalid-assumed-role.json'), code: 'ASSUMED_ROLE_ARN' },
  {
    name: 'an aws-cn assumed-role ARN',
    input: arn('arn:aws-cn:sts::111122223333:assumed-role/Admin/bob@example.com'),
    code: 'ASSUMED_ROLE_ARN',
  },
  {
    name: 'a service-linked role',
    input: arn(
      'arn:aws:iam::111122223333:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS',
    ),
    code: 'SERVICE_LINKED_ROLE',
  },
  ...fieldCases('kubernetesGroups', 'INVALID_GROUP', [
    ['an empty group', ['']],
    ['a 64-character group', ['g'.repeat(64)]],
    ['a group starting with -', ['-g']],
    ['a group with a space', ['team a']],
    ['101 groups', range(101, (i) => `g${i}`)],
  ]),
  { name: 'the system-group fixture', input: fixture('invalid-system-group.json'), code: 'SYSTEM_GROUP' },
  {
    name: 'an upper-case SYSTEM: group',
    input: patch(VIEW, { kubernetesGroups: ['SYSTEM:nodes'] }),
    code: 'SYSTEM_GROUP',
  },
  {
    name: 'a duplicate group',
    input: patch(VIEW, { kubernetesGroups: ['a', 'b', 'a'] }),
    code: 'DUPLICATE_VALUE',
  },
  { name: 'a duplicate namespace', input: withNamespaces(['team-a', 'team-a']), code: 'DUPLICATE_VALUE' },
  {
    name: 'a duplicate approver',
    input: patch(VIEW, { approvedBy: ['bob@example.com', 'bob@example.com'] }),
    code: 'DUPLICATE_VALUE',
  },
  {
    name: 'an approver alias in another case (it would count twice)',
    input: patch(VIEW, { approvedBy: ['bob@example.com', 'Bob@Example.com'] }),
    code: 'INVALID_IDENTITY',
  },
  {
    name: 'a bare-name approver (bob is not bob@example.com)',
    input: patch(VIEW, { approvedBy: ['bob'] }),
    code: 'INVALID_IDENTITY',
  },
  {
    name: 'a bare-name requester (alice cannot be told from alice@example.com)',
    input: patch(VIEW, { requestedBy: 'alice' }),
    code: 'INVALID_IDENTITY',
  },
  {
    name: 'a +tag sub-address approver',
    input: patch(VIEW, { approvedBy: ['alice+approve@example.com'] }),
    code: 'INVALID_IDENTITY',
  },
  {
    name: 'a Jira identity not in lower case',
    input: patch(VIEW, { requestedBy: 'JIRA:5B10AC8D' }),
    code: 'INVALID_IDENTITY',
  },
  {
    name: 'a policy given twice with the same scope',
    input: patch(VIEW, { accessPolicies: [policy({ type: 'cluster' }), policy({ type: 'cluster' })] }),
    code: 'DUPLICATE_VALUE',
  },
  {
    name: 'a policy given twice with different scopes',
    input: patch(VIEW, {
      accessPolicies: [policy({ type: 'cluster' }), policy({ type: 'namespace', namespaces: ['a'] })],
    }),
    code: 'DUPLICATE_VALUE',
    validatorOnly: true,
  },
  ...fieldCases('username', 'INVALID_USERNAME', [
    ['an empty username', ''],
    ['a 129-character username', 'u'.repeat(129)],
    ['an unknown username template', 'a-{{AccountID}}'],
    ['a username with a space', 'alice smith'],
  ]),
  // EKS user guide, "Create access entries": "you can't have a username of john{{SessionName}}".
  ...['john{{SessionName}}', 'u-{{SessionNameRaw}}', 'a{{SessionName}}:b'].map(
    (username): Case => ({
      name: `username ${username} (no colon before the template)`,
      input: patch(VIEW, { username }),
      code: 'USERNAME_TEMPLATE_NEEDS_COLON',
    }),
  ),
  ...['system:admin', 'EKS:x', 'aws:x', 'Amazon:x', 'iam:x'].map(
    (username): Case => ({
      name: `username ${username}`,
      input: patch(VIEW, { username }),
      code: 'RESERVED_USERNAME',
    }),
  ),
  {
    name: 'an empty accessPolicies list',
    input: patch(VIEW, { accessPolicies: [] }),
    code: 'INVALID_ACCESS_POLICIES',
  },
  {
    name: '21 access policies',
    input: patch(VIEW, {
      accessPolicies: range(21, (i) => `P${i}`).map((n) =>
        policy({ type: 'cluster' }, `arn:aws:eks::aws:cluster-access-policy/${n}`),
      ),
    }),
    code: 'INVALID_ACCESS_POLICIES',
  },
  {
    name: 'a policy ARN with an account id',
    input: patch(VIEW, {
      accessPolicies: [
        policy({ type: 'cluster' }, 'arn:aws:eks::111122223333:cluster-access-policy/AmazonEKSViewPolicy'),
      ],
    }),
    code: 'INVALID_POLICY_ARN',
  },
  {
    name: 'an IAM policy ARN',
    input: patch(VIEW, {
      accessPolicies: [policy({ type: 'cluster' }, 'arn:aws:iam::aws:policy/AdministratorAccess')],
    }),
    code: 'INVALID_POLICY_ARN',
  },
  {
    name: 'a policy name with a dash',
    input: patch(VIEW, {
      accessPolicies: [policy({ type: 'cluster' }, 'arn:aws:eks::aws:cluster-access-policy/Amazon-EKS')],
    }),
    code: 'INVALID_POLICY_ARN',
  },
  { name: 'a scope type in another case', input: withScope({ type: 'Cluster' }), code: 'INVALID_SCOPE_TYPE' },
  {
    name: 'scope type "namespaces"',
    input: withScope({ type: 'namespaces', namespaces: ['a'] }),
    code: 'INVALID_SCOPE_TYPE',
  },
  {
    name: 'the namespace-missing fixture',
    input: fixture('invalid-namespace-missing.json'),
    code: 'NAMESPACES_REQUIRED',
  },
  { name: 'an empty namespaces list', input: withNamespaces([]), code: 'NAMESPACES_REQUIRED' },
  {
    name: 'a cluster scope with namespaces',
    input: withScope({ type: 'cluster', namespaces: ['a'] }),
    code: 'NAMESPACES_NOT_ALLOWED',
  },
  {
    name: 'a cluster scope with invalid namespaces',
    input: withScope({ type: 'cluster', namespaces: ['NOT valid'] }),
    code: 'NAMESPACES_NOT_ALLOWED',
  },
  {
    name: 'a cluster scope with an empty list',
    input: withScope({ type: 'cluster', namespaces: [] }),
    code: 'NAMESPACES_NOT_ALLOWED',
  },
  ...[
    'Team-A',
    'team-',
    '-team',
    '*',
    'team*x',
    'te_am',
    'team.a',
    '',
    'n'.repeat(64),
    `${'p'.repeat(63)}*`,
  ].map(
    (ns): Case => ({
      name: `namespace ${JSON.stringify(ns)}`,
      input: withNamespaces([ns]),
      code: 'INVALID_NAMESPACE',
    }),
  ),
  { name: '51 namespaces', input: withNamespaces(range(51, (i) => `ns-${i}`)), code: 'INVALID_NAMESPACE' },
  ...['P1M', 'P1Y', 'P1W', 'P', 'PT', 'P1DT', 'PT1.5H', '1h', 'pt1h', 'PT1H ', '-PT1H', 'PT1H1D'].map(
    (d): Case => ({
      name: `duration ${JSON.stringify(d)}`,
      input: patch(VIEW, { duration: d }),
      code: 'INVALID_DURATION',
    }),
  ),
  ...['PT0S', 'P0D', 'P91D', 'P90DT1S', 'PT2160H1S'].map(
    (d): Case => ({
      name: `duration ${d} (out of range)`,
      input: patch(VIEW, { duration: d }),
      code: 'INVALID_DURATION',
      validatorOnly: true,
    }),
  ),
  ...[
    '2026-11-21',
    '2026-11-21T20:00:00',
    '2026-11-21 20:00:00Z',
    '2026-11-21T20:00:00z',
    '2026-13-01T00:00:00Z',
    '2026-11-21T24:00:00Z',
    '2026-11-21T20:00:00+2:00',
    '2026-11-21T20:00Z',
    '20261121T200000Z',
  ].map(
    (t): Case => ({
      name: `expiresAt ${JSON.stringify(t)}`,
      input: patch(VIEW, { expiresAt: t }),
      code: 'INVALID_EXPIRES_AT',
    }),
  ),
  ...['2026-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2100-02-29T00:00:00Z'].map(
    (t): Case => ({
      name: `expiresAt ${t} (no such day)`,
      input: patch(VIEW, { expiresAt: t }),
      code: 'INVALID_EXPIRES_AT',
      // Not validatorOnly: the schema's `format: date-time` refuses it where format is asserted (ajv-formats).
    }),
  ),
  {
    name: 'both duration and expiresAt',
    input: patch(VIEW, { duration: 'PT1H', expiresAt: '2026-11-21T20:00:00Z' }),
    code: 'CONFLICTING_FIELDS',
  },
  ...fieldCases('requestedBy', 'INVALID_IDENTITY', [
    ['an empty requestedBy', ''],
    ['a 1101-character requestedBy', `${'a'.repeat(1089)}@example.com`],
    ['a newline in requestedBy', 'alice@example.com\nbob@example.com'],
    ['a bidi override in requestedBy', 'alice\u202Emoc.evil@example.com'],
  ]),
  {
    name: 'a zero-width space in an approver',
    input: patch(VIEW, { approvedBy: ['bo\u200Bb@example.com'] }),
    code: 'INVALID_IDENTITY',
  },
  {
    name: '11 approvers',
    input: patch(VIEW, { approvedBy: range(11, (i) => `a${i}`) }),
    code: 'INVALID_FIELD',
  },
  ...fieldCases('reason', 'INVALID_FIELD', [
    ['an empty reason', ''],
    ['a 1025-character reason', 'r'.repeat(1025)],
    ['an escape character in reason', 'see \u001b[31mred'],
  ]),
  { name: 'a ticket with a space', input: patch(VIEW, { ticket: 'OPS 101' }), code: 'INVALID_FIELD' },
  {
    name: 'a 129-character incidentId',
    input: patch(BREAK_GLASS, { incidentId: 'I'.repeat(129) }),
    code: 'INVALID_FIELD',
  },
  { name: 'a grantId with a slash', input: patch(REVOKE, { grantId: 'req/1' }), code: 'INVALID_FIELD' },
  {
    name: 'a grant with neither policies nor groups',
    input: patch(VIEW, { accessPolicies: DROP, kubernetesGroups: DROP }),
    code: 'NOTHING_TO_GRANT',
  },
  {
    name: 'a grant with an empty group list only',
    input: patch(VIEW, { accessPolicies: DROP, kubernetesGroups: [] }),
    code: 'NOTHING_TO_GRANT',
  },
  {
    name: 'a break-glass grant without incidentId',
    input: patch(BREAK_GLASS, { incidentId: DROP }),
    code: 'INCIDENT_ID_REQUIRED',
  },
  {
    name: 'a break-glass grant without reason',
    input: patch(BREAK_GLASS, { reason: DROP }),
    code: 'REASON_REQUIRED',
  },
  {
    name: 'a break-glass grant without an end',
    input: patch(BREAK_GLASS, { duration: DROP }),
    code: 'DURATION_REQUIRED',
  },
  {
    name: 'an expiry without grantId',
    input: patch(REVOKE, { source: 'expiry', grantId: DROP }),
    code: 'GRANT_ID_REQUIRED',
  },
  {
    name: 'an extend without grantId',
    input: patch(EXTEND, { grantId: DROP }),
    code: 'GRANT_ID_REQUIRED',
  },
  {
    name: 'an extend with neither extendBy nor expiresAt',
    input: patch(EXTEND, { extendBy: DROP }),
    code: 'EXTENSION_REQUIRED',
  },
  {
    name: 'an extend with both extendBy and expiresAt',
    input: patch(EXTEND, { expiresAt: '2026-11-21T20:00:00Z' }),
    code: 'CONFLICTING_FIELDS',
  },
  {
    name: 'an extend with a duration',
    input: patch(EXTEND, { extendBy: DROP, duration: 'PT1H' }),
    code: 'CONFLICTING_FIELDS',
  },
  {
    name: 'an extend that names access',
    input: patch(EXTEND, { kubernetesGroups: ['team-a-readers'] }),
    code: 'EXTEND_CHANGES_ACCESS',
  },
  {
    name: 'an extend by zero',
    input: patch(EXTEND, { extendBy: 'PT0S' }),
    code: 'INVALID_DURATION',
    validatorOnly: true,
  },
  {
    name: 'extendBy on a grant',
    input: patch(VIEW, { extendBy: 'PT1H' }),
    code: 'CONFLICTING_FIELDS',
  },
];

function run(c: Case): ParseResult {
  return c.body !== undefined ? parseAccessRequest(c.body) : validateAccessRequest(c.input);
}

/** Inputs that must pass, mostly at a boundary. */
const VALID: Array<[string, Json]> = [
  ['an operator extend by a duration', EXTEND],
  ['an operator extend to a new end', patch(EXTEND, { extendBy: DROP, expiresAt: '2026-11-21T20:00:00Z' })],
  ['a 1-character requestId', patch(VIEW, { requestId: 'r' })],
  ['a 128-character requestId', patch(VIEW, { requestId: `${'r'.repeat(120)}.:_-0009` })],
  ['a 1-character cluster name', patch(VIEW, { clusterName: 'd' })],
  ['a 100-character cluster name', patch(VIEW, { clusterName: `0${'c_-'.repeat(33)}` })],
  ['a role ARN with a path', arn('arn:aws:iam::111122223333:role/a/b.c/d@e/team+a=b,c')],
  ['a user ARN', arn('arn:aws:iam::111122223333:user/alice')],
  ['an aws-cn ARN', arn('arn:aws-cn:iam::111122223333:role/x')],
  ['an aws-us-gov ARN', arn('arn:aws-us-gov:iam::111122223333:user/ops/x')],
  ['a 64-character role name', arn(`arn:aws:iam::111122223333:role/${'n'.repeat(64)}`)],
  ['a 2048-character ARN', arn(`arn:aws:iam::111122223333:role/${'p/'.repeat(1000)}${'n'.repeat(17)}`)],
  ['a role merely named like a service role', arn('arn:aws:iam::111122223333:role/aws-service-role')],
  ['a 63-character group', patch(VIEW, { kubernetesGroups: [`g${':._-'.repeat(15)}ab`] })],
  [
    'a group that contains but does not start with system:',
    patch(VIEW, { kubernetesGroups: ['team:system:x'] }),
  ],
  ['100 groups', patch(VIEW, { kubernetesGroups: range(100, (i) => `g${i}`) })],
  ['a username with {{SessionName}}', patch(VIEW, { username: 'oncall:{{SessionName}}' })],
  ['a username with {{SessionNameRaw}}', patch(VIEW, { username: 'u:{{SessionNameRaw}}@x' })],
  // EKS user guide, "Create access entries": the colon only has to come somewhere before the template.
  [
    'a username with a leading colon before {{SessionName}}',
    patch(VIEW, { username: ':john{{SessionName}}' }),
  ],
  [
    'a username with a colon inside before {{SessionName}}',
    patch(VIEW, { username: 'jo:hn{{SessionName}}' }),
  ],
  ['a 128-character username', patch(VIEW, { username: 'u'.repeat(128) })],
  ['a username that contains but does not start with aws:', patch(VIEW, { username: 'x-aws:y' })],
  ['a 63-character namespace', withNamespaces([`n${'-'.repeat(61)}n`])],
  ['a 62-character prefix with *', withNamespaces([`${'p'.repeat(62)}*`])],
  ['a single-character namespace and prefix', withNamespaces(['a', 'b*', 'c-*'])],
  ['50 namespaces', withNamespaces(range(50, (i) => `ns-${i}`))],
  [
    '20 access policies',
    patch(VIEW, {
      accessPolicies: range(20, (i) => `P${i}`).map((n) =>
        policy({ type: 'cluster' }, `arn:aws:eks::aws:cluster-access-policy/${n}`),
      ),
    }),
  ],
  [
    'a policy ARN in aws-us-gov',
    patch(VIEW, {
      accessPolicies: [
        policy({ type: 'cluster' }, 'arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy'),
      ],
    }),
  ],
  ['duration P90D', patch(VIEW, { duration: 'P90D' })],
  ['duration PT1S', patch(VIEW, { duration: 'PT1S' })],
  ['duration P1DT2H', patch(VIEW, { duration: 'P1DT2H' })],
  ['duration PT2160H', patch(VIEW, { duration: 'PT2160H' })],
  [
    'expiresAt with an offset and fraction',
    patch(VIEW, { expiresAt: '2026-11-21T21:00:00.123456789+01:00' }),
  ],
  ['expiresAt on a leap day', patch(VIEW, { expiresAt: '2028-02-29T23:59:59Z' })],
  [
    'a Jira account requestedBy',
    patch(VIEW, { requestedBy: 'jira:557058:f58131cb-b67d-43c7-b30d-6b58d40bd077' }),
  ],
  [
    'an IAM session ARN requestedBy',
    patch(VIEW, { requestedBy: 'arn:aws:sts::111122223333:assumed-role/Admin/Ivan' }),
  ],
  ['a 1100-character requestedBy', patch(VIEW, { requestedBy: `${'a'.repeat(1088)}@example.com` })],
  ['10 approvers', patch(VIEW, { approvedBy: range(10, (i) => `a${i}@example.com`) })],
  ['an empty approver list', patch(VIEW, { approvedBy: [] })],
  [
    'a multi-line 1024-character reason',
    patch(VIEW, { reason: `line one\n\tline two\r\n${'r'.repeat(1003)}` }),
  ],
  ['a ticket URL-ish reference', patch(VIEW, { ticket: 'JIRA:OPS/101#c2' })],
  ['a grant with groups only', patch(VIEW, { accessPolicies: DROP })],
  ['a grant with policies only', patch(VIEW, { kubernetesGroups: DROP })],
  [
    'a revoke with nothing else',
    patch(REVOKE, { grantId: DROP, reason: DROP, requestedBy: DROP, ticket: DROP }),
  ],
  [
    'a break-glass grant ending at an instant',
    patch(BREAK_GLASS, { duration: DROP, expiresAt: '2026-11-21T20:00:00Z' }),
  ],
  [
    'a break-glass revoke without incident',
    patch(BREAK_GLASS, { action: 'revoke', incidentId: DROP, duration: DROP }),
  ],
  ['an expiry', patch(REVOKE, { source: 'expiry' })],
  ['a null-prototype object', Object.assign(Object.create(null) as Json, VIEW)],
];

describe('fixtures in events/requests', () => {
  const EXPECTED_FAILURE: Record<string, RequestReasonCode> = {
    'invalid-assumed-role.json': 'ASSUMED_ROLE_ARN',
    'invalid-system-group.json': 'SYSTEM_GROUP',
    'invalid-namespace-missing.json': 'NAMESPACES_REQUIRED',
    'invalid-unknown-field.json': 'UNKNOWN_FIELD',
  };
  const files = readdirSync(REQUESTS_DIR).filter((f) => f.endsWith('.json'));

  test('include the documented samples', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'dev-view-grant.json',
        'dev-edit-grant.json',
        'prod-break-glass.json',
        'prod-view-grant.json',
        'dev-view-revoke.json',
        ...Object.keys(EXPECTED_FAILURE),
      ]),
    );
  });

  test.each(files)('%s parses as expected', (file) => {
    const r = parseAccessRequest(readFixture(file));
    const expected = file.startsWith('invalid-') ? EXPECTED_FAILURE[file] : undefined;
    if (file.startsWith('invalid-')) expect(expected, `add ${file} to EXPECTED_FAILURE`).toBeDefined();
    if (expected) {
      expect(rejected(r).reason.code).toBe(expected);
    } else {
      expect(r).toEqual({ ok: true, request: JSON.parse(readFixture(file)) });
    }
  });

  test('the revoke ends the dev view grant', () => {
    expect(REVOKE.grantId).toBe(VIEW.requestId);
    expect(REVOKE.principalArn).toBe(VIEW.principalArn);
    expect(REVOKE.clusterName).toBe(VIEW.clusterName);
  });
});

describe('rejections', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('rejects %s', (_name, c) => {
    const r = rejected(run(c));
    expect(r.reason.code).toBe(c.code);
    expect(r.reason.message.length).toBeGreaterThan(20);
  });

  test('every reason code is produced by at least one case, and no other code exists', () => {
    const produced = new Set(CASES.map((c) => c.code));
    expect([...produced].sort()).toEqual([...REQUEST_REASON_CODES].sort());
  });
});

describe('accepted boundaries', () => {
  test.each(VALID)('accepts %s', (_name, input) => {
    const r = validateAccessRequest(input);
    expect(r.ok ? 'ok' : r.reason).toBe('ok');
  });

  test('accepted instants are parsed by Date.parse', () => {
    for (const t of [
      '2026-11-21T21:00:00.123456789+01:00',
      '2026-11-21T20:00:00Z',
      '2026-11-21T20:00:00-00:00',
    ]) {
      expect(validateAccessRequest(patch(VIEW, { expiresAt: t })).ok).toBe(true);
      expect(Number.isFinite(Date.parse(t))).toBe(true);
    }
  });

  test('a body of exactly MAX_BODY_BYTES is accepted', () => {
    const body = padTo(MAX_BODY_BYTES);
    expect(utf8ByteLength(body)).toBe(MAX_BODY_BYTES);
    expect(parseAccessRequest(body).ok).toBe(true);
  });
});

describe('messages', () => {
  const message = (input: unknown) => rejected(validateAccessRequest(input)).reason.message;

  test('name the field path and quote the offending value', () => {
    const m = message(withNamespaces(['team-a', 'Team_B']));
    expect(m).toContain('"accessPolicies[0].accessScope.namespaces[1]"');
    expect(m).toContain('"Team_B"');
    expect(m).toContain('DNS-1123');
  });

  test('truncate long values to about 80 characters', () => {
    const m = message(patch(VIEW, { requestId: `${'x'.repeat(100)} tail` }));
    expect(m).toContain(`"${'x'.repeat(80)}…"`);
    expect(m).not.toContain('tail');
    expect(m.length).toBeLessThan(300);
  });

  test('point at a unicode lookalike or a control character', () => {
    expect(message(arn('arn:aws:iam::111122223333:role/teаm'))).toContain('U+0430, non-ASCII) at index 33');
    expect(message(arn('arn:aws:iam::111122223333:role/team\n'))).toContain(
      'control character U+000A at index 35',
    );
    expect(message(arn('arn:aws:iam::111122223333:role/team\n'))).toContain(
      '"arn:aws:iam::111122223333:role/team\\n"',
    );
  });

  test('give the role ARN to use instead of an assumed-role ARN', () => {
    const m = message(arn('arn:aws-cn:sts::111122223333:assumed-role/Admin/bob'));
    expect(m).toContain('arn:aws-cn:iam::111122223333:role/Admin');
    expect(m).toContain('including its path, if any');
  });

  test('suggest the right case for a misspelled field', () => {
    expect(message(patch(VIEW, { ClusterName: 'dev' }))).toContain('Did you mean "clusterName"?');
  });

  test('say what would be accepted', () => {
    expect(message(patch(VIEW, { source: 'jira' }))).toContain(
      'ticket, iam-role-created, break-glass, expiry, reconcile, operator',
    );
    expect(message(patch(VIEW, { duration: 'P1M' }))).toContain('PT15M, PT1H, P1D or P1DT2H');
    expect(message(patch(VIEW, { username: null }))).toContain('Omit an optional field');
  });
});

describe('first violation wins, in a fixed order', () => {
  const code = (input: unknown) => rejected(validateAccessRequest(input)).reason.code;

  test.each<[string, Json, RequestReasonCode]>([
    [
      'schemaVersion before unknown fields',
      patch(VIEW, { schemaVersion: 2, extra: 1 }),
      'UNSUPPORTED_SCHEMA_VERSION',
    ],
    ['unknown fields before missing ones', patch(VIEW, { extra: 1, requestId: DROP }), 'UNKNOWN_FIELD'],
    [
      'missing fields before invalid values',
      patch(VIEW, { requestId: '', clusterName: DROP }),
      'MISSING_FIELD',
    ],
    [
      'fields in table order: requestId before clusterName',
      patch(VIEW, { clusterName: '-', requestId: '' }),
      'INVALID_REQUEST_ID',
    ],
    [
      'fields in table order: principalArn before ticket',
      patch(VIEW, { ticket: ' ', principalArn: 'x' }),
      'INVALID_PRINCIPAL_ARN',
    ],
    [
      'field values before action rules',
      patch(BREAK_GLASS, { incidentId: DROP, duration: 'P1M' }),
      'INVALID_DURATION',
    ],
  ])('%s', (_name, input, expected) => {
    expect(code(input)).toBe(expected);
  });
  test('the first invalid item of a list', () => {
    const r = rejected(
      validateAccessRequest(patch(VIEW, { kubernetesGroups: ['ok', 'bad one', 'system:x'] })),
    );
    expect(r.reason.code).toBe('INVALID_GROUP');
    expect(r.reason.message).toContain('kubernetesGroups[1]');
  });
  test('the same input always gives the same reason', () => {
    const input = patch(VIEW, { extra: 1, other: 2, requestId: '' });
    expect(validateAccessRequest(input)).toEqual(validateAccessRequest(structuredClone(input)));
  });
});

describe('hostile input', () => {
  test('an own __proto__ key is an unknown field and pollutes nothing', () => {
    const body = JSON.stringify(VIEW).replace(/^\{/, '{"__proto__":{"polluted":true,"isAdmin":true},');
    const r = rejected(parseAccessRequest(body));
    expect(r.reason.code).toBe('UNKNOWN_FIELD');
    expect(r.reason.message).toContain('"__proto__"');
    expect(({} as Json).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  test('the request is a new object holding known fields only', () => {
    const input = structuredClone(VIEW);
    const r = validateAccessRequest(input);
    if (!r.ok) throw new Error(r.reason.message);
    expect(r.request).not.toBe(input);
    expect(r.request.accessPolicies).not.toBe(input.accessPolicies);
    expect(r.request.accessPolicies?.[0]?.accessScope).not.toBe(
      (input.accessPolicies as Json[])[0]?.accessScope,
    );
    // Mutating the input afterwards cannot change the validated request.
    (input.kubernetesGroups as string[]).push('system:masters');
    expect(r.request.kubernetesGroups).toEqual(['team-a-readers']);
    expect(Object.getPrototypeOf(r.request)).toBe(Object.prototype);
  });

  test('a huge array is refused by its size without visiting items', () => {
    const groups = new Array<unknown>(1_000_000).fill({ nested: 'garbage' });
    const started = performance.now();
    expect(rejected(validateAccessRequest(patch(VIEW, { kubernetesGroups: groups }))).reason.code).toBe(
      'INVALID_GROUP',
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  // Not in CASES: none of these is a JSON value the published schema could be asked about.
  const NOT_JSON: Case[] = [
    {
      name: 'a nested __proto__ key is an unknown field',
      body: JSON.stringify(withScope({ type: 'cluster' })).replace(
        '"type":',
        '"__proto__":{"type":"namespace"},"type":',
      ),
      code: 'UNKNOWN_FIELD',
    },
    {
      name: 'a sparse array has holes of the wrong type',
      // [<2 empty items>, 'g']
      input: patch(VIEW, { kubernetesGroups: Object.assign(new Array<string>(3), { 2: 'g' }) }),
      code: 'INVALID_TYPE',
    },
    {
      name: 'non-plain objects are not requests: a Map',
      input: new Map(Object.entries(VIEW)),
      code: 'NOT_AN_OBJECT',
    },
    {
      name: 'non-plain objects are not requests: a Date as an access policy',
      input: patch(VIEW, { accessPolicies: [new Date()] }),
      code: 'INVALID_TYPE',
    },
    {
      name: 'a deeply nested value in a known field is a type error',
      body: JSON.stringify(VIEW).replace('"req-dev-view-0001"', deep),
      code: 'INVALID_TYPE',
    },
  ];
  test.each(NOT_JSON.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(rejected(run(c)).reason.code).toBe(c.code);
  });
});

describe('partial identifiers of a rejected request', () => {
  test('are kept for the audit record, even when invalid', () => {
    const r = rejected(parseAccessRequest(readFixture('invalid-assumed-role.json')));
    expect(r.partial).toEqual({
      requestId: 'req-invalid-assumed-role-0001',
      clusterName: 'dev',
      principalArn: 'arn:aws:sts::111122223333:assumed-role/team-a-dev/alice',
      source: 'ticket',
      action: 'grant',
    });
  });

  test('hold strings only, bounded in length', () => {
    const r = rejected(validateAccessRequest(patch(VIEW, { requestId: 7, clusterName: 'c'.repeat(5000) })));
    expect(r.partial.requestId).toBeUndefined();
    expect(r.partial.clusterName?.length).toBeLessThanOrEqual(2049);
  });

  test('are empty when the body is not an object', () => {
    expect(rejected(parseAccessRequest('[1]')).partial).toEqual({});
    expect(rejected(parseAccessRequest('{')).partial).toEqual({});
    expect(rejected(parseAccessRequest(padTo(MAX_BODY_BYTES + 1))).partial).toEqual({});
  });
});

describe('parseIsoDuration', () => {
  test.each([
    ['PT15M', 15 * 60_000],
    ['PT1H', 3_600_000],
    ['P1D', 86_400_000],
    ['P1DT2H', 26 * 3_600_000],
    ['P1DT2H3M4S', 93_784_000],
    ['PT90S', 90_000],
    ['PT0S', 0],
    ['P90D', 90 * 86_400_000],
  ])('%s is %d ms', (s, ms) => {
    expect(parseIsoDuration(s)).toBe(ms);
  });

  test.each([
    'P1Y',
    'P1M',
    'P1W',
    'P',
    'PT',
    'P1DT',
    'PT1.5S',
    '',
    'PT1H\n',
    ' PT1H',
    'P1H',
    'PT1D',
    `P${'9'.repeat(30)}D`,
  ])('refuses %j', (s) => {
    expect(parseIsoDuration(s)).toBeUndefined();
  });
});

test('utf8ByteLength agrees with Buffer.byteLength', () => {
  for (const s of ['', 'abc', 'é', '山田', '😀', 'a\uD800b', '\uDC00', `x${'é'.repeat(100)}😀\u0000`]) {
    expect(utf8ByteLength(s)).toBe(Buffer.byteLength(s, 'utf8'));
  }
});

// ---------------------------------------------------------------------------------------------
// The JSON Schema, evaluated by ajv (draft 2020-12, strict, with formats): the schema and the
// validator must accept and refuse the same inputs.

const schema = accessRequestJsonSchema() as Json;
const prop = (node: unknown, name: string) =>
  ((node as Json).properties as Record<string, Json>)[name] as Json;
const scopeSchema = prop(prop(schema, 'accessPolicies').items, 'accessScope');

function walk(node: unknown, visit: (n: Json, path: string) => void, path = '#'): void {
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) walk(n, visit, `${path}/${i}`);
  } else if (typeof node === 'object' && node !== null) {
    visit(node as Json, path);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${path}/${k}`);
  }
}

describe('JSON Schema', () => {
  test('is draft 2020-12 and survives a JSON round trip', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  test('sets additionalProperties: false at every object level', () => {
    let objects = 0;
    walk(schema, (n, path) => {
      if (n.type === 'object') {
        objects++;
        expect(n.additionalProperties, path).toBe(false);
      }
    });
    expect(objects).toBe(3); // request, policy association, access scope
  });

  test('has anchored patterns that compile as unicode regexes', () => {
    walk(schema, (n, path) => {
      if (typeof n.pattern !== 'string') return;
      expect(n.pattern.startsWith('^'), path).toBe(true);
      expect(() => new RegExp(n.pattern as string, 'u'), path).not.toThrow();
    });
  });

  test('its required list is exactly the fields whose absence is MISSING_FIELD', () => {
    const full = patch(VIEW, {
      username: 'alice',
      duration: 'PT1H',
      expiresAt: '2026-11-21T20:00:00Z',
      incidentId: 'INC-1',
      grantId: 'g',
      extendBy: 'PT1H',
      principalRecreated: true,
    });
    const properties = Object.keys(schema.properties as Json);
    expect([...properties].sort()).toEqual(Object.keys(full).sort());
    const missing = properties.filter((f) => {
      const r = validateAccessRequest(patch(full, { [f]: DROP }));
      return !r.ok && r.reason.code === 'MISSING_FIELD';
    });
    expect(schema.required).toEqual(missing);
  });

  test('its properties are exactly the fields the validator accepts', () => {
    expect(rejected(validateAccessRequest(patch(VIEW, { notInSchema: 1 }))).reason.code).toBe(
      'UNKNOWN_FIELD',
    );
    expect(Object.keys(scopeSchema.properties as Json)).toEqual(['type', 'namespaces']);
    expect(scopeSchema.required).toEqual(['type']);
  });

  test('its enums are exactly what the validator accepts', () => {
    const props = schema.properties as Record<string, Json>;
    const enums: Array<[string, unknown[]]> = [
      ['action', props.action?.enum as unknown[]],
      ['source', props.source?.enum as unknown[]],
    ];
    for (const [field, values] of enums) {
      for (const value of values) {
        const base =
          value === 'expiry'
            ? REVOKE
            : value === 'break-glass'
              ? BREAK_GLASS
              : value === 'extend'
                ? EXTEND
                : VIEW;
        expect(validateAccessRequest(patch(base, { [field]: value })).ok, `${field}=${value}`).toBe(true);
      }
      expect(validateAccessRequest(patch(VIEW, { [field]: 'other' })).ok).toBe(false);
    }
    const scopeTypes = prop(scopeSchema, 'type').enum as string[];
    expect(scopeTypes).toEqual(['cluster', 'namespace']);
    for (const type of scopeTypes) {
      const namespaces = type === 'namespace' ? ['a'] : undefined;
      expect(validateAccessRequest(withScope(namespaces ? { type, namespaces } : { type })).ok, type).toBe(
        true,
      );
    }
    expect(validateAccessRequest(withScope({ type: 'account' })).ok).toBe(false);
  });

  test.each(CASES.filter((c) => c.input !== undefined).map((c) => [c.name, c] as const))(
    'agrees with the validator on %s',
    (_name, c) => {
      expect(accepts(schema, c.input)).toBe(c.validatorOnly === true);
    },
  );

  test.each(VALID)('accepts %s like the validator', (_name, input) => {
    expect(accepts(schema, input)).toBe(true);
  });

  test('agrees with the validator on random field values', () => {
    const fields = [...Object.keys(schema.properties as Json), 'unknownField'];
    fc.assert(
      fc.property(
        fc.constantFrom(VIEW, BREAK_GLASS, REVOKE),
        fc.constantFrom(...fields),
        fc.jsonValue({ maxDepth: 3 }),
        (base, field, value) => {
          const input = patch(base, { [field]: value });
          expect(accepts(schema, input)).toBe(validateAccessRequest(input).ok);
        },
      ),
      { seed: 20_261_121, numRuns: 400 },
    );
  });
});

describe('published schema files', () => {
  test('on disk equal what the generator produces (run `npm run schemas`)', () => {
    const files = renderSchemaFiles();
    expect(files.size).toBe(Object.keys(schemas).length);
    for (const [file, content] of files) {
      expect(readFileSync(join(SCHEMAS_DIR, file), 'utf8'), file).toBe(content);
    }
  });

  test('include the AccessRequest v1 schema', () => {
    expect(schemas['access-request.v1']).toEqual(schema);
  });
});
