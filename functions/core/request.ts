/**
 * AccessRequest v1: raw queue message body → typed request, or the first violation as a
 * coded reason. The field specs below drive both this validator and the JSON Schema
 * published under events/schemas/ (see `npm run schemas`), so the two cannot drift.
 *
 * Check order (first violation wins, deterministic): body size → JSON → object →
 * schemaVersion (before anything else, so a v2 message is reported as unsupported rather
 * than as unknown fields) → unknown fields → missing required fields → each field in the
 * order of the FIELDS table → cross-field and action-specific rules.
 */
import { IDENTITY_CHARSET, IDENTITY_EXPECTED, IDENTITY_PATTERN, identityProblem } from './identity.js';
import {
  type ArraySpec,
  caseInsensitivePrefixPattern,
  compile,
  type FieldDef,
  isPlainObject,
  type ObjectRule,
  type ObjectSpec,
  own,
  type StringSpec,
  schemaDocument,
  show,
  truncate,
  validate,
} from './schema.js';
import {
  ACTIONS,
  type AccessRequest,
  type AccessScope,
  type PolicyAssociation,
  type Reason,
  SOURCES,
} from './types.js';

/** SQS allows 256 KiB; a real request is a few hundred bytes, so anything larger is refused unparsed. */
export const MAX_BODY_BYTES = 16_384;

const DAY_MS = 86_400_000;
/** Hard contract cap; the guardrail policy usually caps much lower per cluster and source. */
export const MAX_DURATION_MS = 90 * DAY_MS;

/** Every code this module can return. Codes are stable API. */
export const REQUEST_REASON_CODES = [
  'BODY_TOO_LARGE',
  'MALFORMED_JSON',
  'NOT_AN_OBJECT',
  'UNKNOWN_FIELD',
  'MISSING_FIELD',
  'INVALID_TYPE',
  'UNSUPPORTED_SCHEMA_VERSION',
  'INVALID_REQUEST_ID',
  'INVALID_ACTION',
  'INVALID_SOURCE',
  'INVALID_CLUSTER_NAME',
  'INVALID_PRINCIPAL_ARN',
  'ASSUMED_ROLE_ARN',
  'SERVICE_LINKED_ROLE',
  'INVALID_GROUP',
  'SYSTEM_GROUP',
  'DUPLICATE_VALUE',
  'INVALID_USERNAME',
  'RESERVED_USERNAME',
  'USERNAME_TEMPLATE_NEEDS_COLON',
  'INVALID_ACCESS_POLICIES',
  'INVALID_POLICY_ARN',
  'INVALID_SCOPE_TYPE',
  'NAMESPACES_REQUIRED',
  'NAMESPACES_NOT_ALLOWED',
  'INVALID_NAMESPACE',
  'INVALID_DURATION',
  'INVALID_EXPIRES_AT',
  'CONFLICTING_FIELDS',
  'INVALID_FIELD',
  'NOTHING_TO_GRANT',
  'INCIDENT_ID_REQUIRED',
  'REASON_REQUIRED',
  'DURATION_REQUIRED',
  'GRANT_ID_REQUIRED',
  'INVALID_IDENTITY',
  'EXTENSION_REQUIRED',
  'EXTEND_CHANGES_ACCESS',
] as const;
export type RequestReasonCode = (typeof REQUEST_REASON_CODES)[number];

export interface PartialIdentifiers {
  requestId?: string;
  clusterName?: string;
  principalArn?: string;
  source?: string;
  action?: string;
}

export type ParseResult =
  | { ok: true; request: AccessRequest }
  | {
      ok: false;
      reason: Reason;
      /** Best-effort identifiers for the audit record even when invalid (strings only, truncated). */
      partial: PartialIdentifiers;
    };

function reason(code: RequestReasonCode, message: string): Reason {
  return { code, message };
}

// ---------------------------------------------------------------------------------------------
// Patterns. ASCII-only character classes (`\d`/`\w` would also be ASCII under `u`, but explicit
// classes read the same in the JSON Schema); anchored `^...$`, never the `m` flag.

const PARTITION = '(?:aws|aws-cn|aws-us-gov)';
const IAM_NAME_CHAR = '[A-Za-z0-9_+=,.@-]';
/** Role/user names are 1–64 characters; the optional path is `/`-separated segments. */
const PRINCIPAL_ARN = `^arn:${PARTITION}:iam::[0-9]{12}:(?:role|user)/(?:${IAM_NAME_CHAR}+/)*${IAM_NAME_CHAR}{1,64}$`;
const ASSUMED_ROLE_PREFIX = `^arn:${PARTITION}:sts::[0-9]{12}:assumed-role/`;
const ASSUMED_ROLE_PARTS = new RegExp(
  `^arn:(aws|aws-cn|aws-us-gov):sts::([0-9]{12}):assumed-role/(${IAM_NAME_CHAR}{1,64})/${IAM_NAME_CHAR}+$`,
  'u',
);
const SERVICE_LINKED_PREFIX = `^arn:${PARTITION}:iam::[0-9]{12}:role/aws-service-role/`;
const POLICY_ARN = `^arn:${PARTITION}:eks::aws:cluster-access-policy/[A-Za-z0-9]+$`;

const ID_CHARSET = '[A-Za-z0-9._:-]';
const REF_CHARSET = '[A-Za-z0-9._:/#-]';
/** Kubernetes groups: our own sane subset (RBAC itself accepts almost anything). */
const GROUP_CHARSET = '[a-zA-Z0-9:._-]';
/**
 * EKS substitutes these in usernames of role entries (EKS user guide, "Create access entries": only
 * {{SessionName}} and {{SessionNameRaw}} are documented for access entries; the aws-auth ConfigMap's
 * {{AccountID}}, {{AccessKeyID}} and {{EC2PrivateDNSName}} are not), so any other `{` is refused.
 */
const USERNAME_PATTERN = String.raw`^(?:[A-Za-z0-9._@:=+,/-]|\{\{SessionName(?:Raw)?\}\})+$`;
const NAMESPACE_PATTERN = String.raw`^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?|[a-z0-9][-a-z0-9]*\*)$`;

/**
 * Free text that ends up in audit records, Slack and SIEM: no C0/C1 controls, no
 * line/paragraph separators, and no zero-width or bidi format characters (which can make
 * an audit line read differently from what it holds).
 */
const INVISIBLE = String.raw`\u007F-\u009F\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF`;
/** The same, but tabs and line breaks are fine in a multi-line reason. */
const TEXT_CHAR = String.raw`[^\u0000-\u0008\u000B\u000C\u000E-\u001F${INVISIBLE}]`;

/** PnDTnHnMnS with integer components; `(?!$)` and `(?=[0-9])` refuse bare `P` and a dangling `T`. */
const DURATION_PATTERN = '^P(?!$)(?:([0-9]+)D)?(?:T(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?$';
const INSTANT_PATTERN =
  '^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$';

/**
 * ISO-8601 duration → milliseconds, for the unambiguous subset PnDTnHnMnS (integers; a day
 * is 24 h). Years, months and weeks are refused: a "month" has no fixed length.
 * Returns undefined when the text is not in that form or the result is not an exact integer.
 */
export function parseIsoDuration(s: string): number | undefined {
  const m = compile(DURATION_PATTERN).exec(s);
  if (!m) return undefined;
  const [, d, h, min, sec] = m;
  const ms =
    Number(d ?? 0) * DAY_MS +
    Number(h ?? 0) * 3_600_000 +
    Number(min ?? 0) * 60_000 +
    Number(sec ?? 0) * 1000;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

// ---------------------------------------------------------------------------------------------
// Field specs.

const reservedGroup = caseInsensitivePrefixPattern(['system:']);
const RESERVED_USERNAME_PREFIXES = ['system:', 'eks:', 'aws:', 'amazon:', 'iam:'] as const;

const principalArn: StringSpec = {
  kind: 'string',
  code: 'INVALID_PRINCIPAL_ARN',
  description: 'IAM role or user ARN of the principal, with its path.',
  expected:
    'an IAM role or user ARN such as arn:aws:iam::123456789012:role/Name or arn:aws:iam::123456789012:user/path/Name ' +
    '(partition aws, aws-cn or aws-us-gov; A-Z a-z 0-9 _ + = , . @ - with / between path segments; name at most 64 characters)',
  maxLength: 2048,
  pattern: PRINCIPAL_ARN,
  forbidden: [
    {
      pattern: ASSUMED_ROLE_PREFIX,
      code: 'ASSUMED_ROLE_ARN',
      message: (path, value) => {
        // An STS session ARN names one session; EKS maps the role. Paths are not in it, so we can only hint.
        const m = ASSUMED_ROLE_PARTS.exec(value);
        const roleArn = m
          ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}`
          : 'arn:<partition>:iam::<account>:role/<path/><name>';
        return (
          `"${path}" ${show(value)} is an STS assumed-role session ARN; EKS access entries need the IAM role ARN. ` +
          `Use ${roleArn} instead, including its path, if any (assumed-role ARNs drop the role path; ` +
          `see the role in IAM or \`aws iam get-role\`).`
        );
      },
    },
    {
      pattern: SERVICE_LINKED_PREFIX,
      code: 'SERVICE_LINKED_ROLE',
      message: (path, value) =>
        `"${path}" ${show(value)} is a service-linked role (path /aws-service-role/); AWS manages its permissions ` +
        'and it cannot be granted cluster access here. Use a regular IAM role or user ARN.',
    },
  ],
};

const groupName: StringSpec = {
  kind: 'string',
  code: 'INVALID_GROUP',
  expected:
    'a Kubernetes group name: 1–63 characters from a-z A-Z 0-9 : . _ -, starting with a letter or digit',
  minLength: 1,
  maxLength: 63,
  pattern: `^[a-zA-Z0-9]${GROUP_CHARSET}*$`,
  charset: GROUP_CHARSET,
  forbidden: [
    {
      pattern: reservedGroup,
      code: 'SYSTEM_GROUP',
      message: (path, value) =>
        `"${path}" ${show(value)} starts with "system:" (in any case), which Kubernetes reserves and EKS refuses. ` +
        'Use a group of your own, e.g. "team-a-admins", and bind it with RBAC.',
    },
  ],
};

const username: StringSpec = {
  kind: 'string',
  code: 'INVALID_USERNAME',
  description: 'Kubernetes username for the entry; omit to let EKS derive it.',
  expected:
    '1–128 characters from A-Z a-z 0-9 . _ @ : = + , / - and the templates {{SessionName}} or {{SessionNameRaw}}',
  minLength: 1,
  maxLength: 128,
  pattern: USERNAME_PATTERN,
  forbidden: [
    {
      pattern: caseInsensitivePrefixPattern(RESERVED_USERNAME_PREFIXES),
      code: 'RESERVED_USERNAME',
      message: (path, value) =>
        `"${path}" ${show(value)} starts with a reserved prefix (${RESERVED_USERNAME_PREFIXES.join(', ')}, ` +
        'in any case), which EKS refuses. Choose another username, e.g. "alice" or "oncall:{{SessionName}}".',
    },
    {
      // EKS user guide, "Create access entries": with {{SessionName}} or {{SessionNameRaw}} in a
      // username, "the username must include a colon before {{SessionName}}"; `john{{SessionName}}`
      // is refused, `:john{{SessionName}}` and `jo:hn{{SessionName}}` are fine. EKS only says so at
      // CreateAccessEntry time, so catch it here, before anything is queued.
      pattern: String.raw`^[^:]*\{\{SessionName`,
      code: 'USERNAME_TEMPLATE_NEEDS_COLON',
      message: (path, value) =>
        `"${path}" ${show(value)} uses {{SessionName}} or {{SessionNameRaw}} without a colon before it, which EKS ` +
        'refuses. Put a colon somewhere before the template, e.g. "oncall:{{SessionName}}".',
    },
  ],
};

const namespace: StringSpec = {
  kind: 'string',
  code: 'INVALID_NAMESPACE',
  expected:
    'a namespace: a DNS-1123 label (a-z 0-9 -, starting and ending with a letter or digit, at most 63 characters) ' +
    'or a prefix ending in *, such as team-*',
  minLength: 1,
  maxLength: 63,
  pattern: NAMESPACE_PATTERN,
  charset: '[-a-z0-9*]',
};

const hasNamespaces = (o: Readonly<Record<string, unknown>>) => Object.hasOwn(o, 'namespaces');

const accessScope: ObjectSpec = {
  kind: 'object',
  code: 'INVALID_ACCESS_POLICIES',
  expected: 'an object {type: "cluster"} or {type: "namespace", namespaces: [...]}',
  fields: [
    {
      name: 'type',
      required: true,
      spec: {
        kind: 'string',
        code: 'INVALID_SCOPE_TYPE',
        expected: 'one of: cluster, namespace',
        enum: ['cluster', 'namespace'],
      },
    },
    {
      name: 'namespaces',
      required: false,
      spec: {
        kind: 'array',
        code: 'INVALID_NAMESPACE',
        expected: 'an array of 1–50 distinct namespaces (only with type "namespace")',
        maxItems: 50,
        unique: true,
        items: namespace,
      },
    },
  ],
  // Run right after `type`, so a misplaced `namespaces` is reported as such before its items are.
  rules: [
    {
      after: 'type',
      check: (o, path) => {
        if (own(o, 'type') !== 'namespace') return undefined;
        const ns = own(o, 'namespaces');
        if (hasNamespaces(o) && !(Array.isArray(ns) && ns.length === 0)) return undefined;
        return reason(
          'NAMESPACES_REQUIRED',
          `"${path}" has type "namespace" but ${hasNamespaces(o) ? 'an empty' : 'no'} "namespaces" list. ` +
            'List 1–50 namespaces (e.g. ["team-a", "team-b-*"]), or use type "cluster" for the whole cluster.',
        );
      },
      schema: {
        if: { properties: { type: { const: 'namespace' } }, required: ['type'] },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
        then: { required: ['namespaces'], properties: { namespaces: { minItems: 1 } } },
      },
    },
    {
      after: 'type',
      check: (o, path) =>
        own(o, 'type') === 'cluster' && hasNamespaces(o)
          ? reason(
              'NAMESPACES_NOT_ALLOWED',
              `"${path}" has type "cluster" and a "namespaces" list; a cluster scope covers every namespace. ` +
                'Remove "namespaces", or use type "namespace" to limit the policy to them.',
            )
          : undefined,
      schema: {
        if: { properties: { type: { const: 'cluster' } }, required: ['type'] },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
        then: { not: { required: ['namespaces'] } },
      },
    },
  ],
};

const policyAssociation: ObjectSpec = {
  kind: 'object',
  code: 'INVALID_ACCESS_POLICIES',
  expected: 'an object {policyArn, accessScope}',
  fields: [
    {
      name: 'policyArn',
      required: true,
      spec: {
        kind: 'string',
        code: 'INVALID_POLICY_ARN',
        expected:
          'an EKS access policy ARN such as arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
        maxLength: 256,
        pattern: POLICY_ARN,
      },
    },
    { name: 'accessScope', required: true, spec: accessScope },
  ],
};

const identifier = (code: 'INVALID_REQUEST_ID' | 'INVALID_FIELD', description: string): StringSpec => ({
  kind: 'string',
  code,
  description,
  expected: '1–128 characters from A-Z a-z 0-9 . _ : -',
  minLength: 1,
  maxLength: 128,
  pattern: `^${ID_CHARSET}+$`,
  charset: ID_CHARSET,
});

const reference = (description: string): StringSpec => ({
  kind: 'string',
  code: 'INVALID_FIELD',
  description,
  expected: '1–128 characters from A-Z a-z 0-9 . _ : / # -',
  minLength: 1,
  maxLength: 128,
  pattern: `^${REF_CHARSET}+$`,
  charset: REF_CHARSET,
});

/**
 * requestedBy and approvedBy: one canonical identity per person (functions/core/identity.ts), so aliases
 * cannot count twice and self-approval compares like with like.
 */
const person: StringSpec = {
  kind: 'string',
  code: 'INVALID_IDENTITY',
  expected: IDENTITY_EXPECTED,
  minLength: 1,
  maxLength: 1100,
  pattern: IDENTITY_PATTERN,
  charset: IDENTITY_CHARSET,
  forbidden: [
    {
      // What identityProblem can name precisely: case or space to fix, a +tag alias, a bare name.
      pattern: String.raw`^(?:\s.*|.*\s|(?=[^:]*@)[^:]*[A-Z][^:]*|[^@:]*\+[^@:]*@.*|[^@:]+|[Jj][Ii][Rr][Aa]:.*[A-Z].*|(?!jira:)[Jj][Ii][Rr][Aa]:.*)$`,
      code: 'INVALID_IDENTITY',
      message: (path, value) =>
        `"${path}" ${show(value)} ${identityProblem(value)}. Expected ${IDENTITY_EXPECTED}.`,
    },
  ],
};

const duration: StringSpec = {
  kind: 'string',
  code: 'INVALID_DURATION',
  description: 'How long the grant lasts, from when it is applied. Mutually exclusive with expiresAt.',
  expected:
    'an ISO-8601 duration PnDTnHnMnS longer than zero and at most 90 days, such as PT15M, PT1H, P1D or P1DT2H ' +
    '(years, months, weeks and fractions are not accepted)',
  format: 'duration',
  minLength: 2,
  maxLength: 32,
  pattern: DURATION_PATTERN,
  check: (value, path) => {
    const ms = parseIsoDuration(value);
    if (ms !== undefined && ms > 0 && ms <= MAX_DURATION_MS) return undefined;
    const problem =
      ms === undefined ? 'is too large to represent' : ms === 0 ? 'is zero' : 'is longer than 90 days';
    return reason(
      'INVALID_DURATION',
      `"${path}" ${problem}; got ${show(value)}. Expected a duration longer than zero and at most P90D, such as PT1H.`,
    );
  },
};

const expiresAt: StringSpec = {
  kind: 'string',
  code: 'INVALID_EXPIRES_AT',
  description: 'When the grant ends. Mutually exclusive with duration.',
  expected:
    'an ISO-8601 instant with Z or an offset, such as 2026-11-21T20:00:00Z or 2026-11-21T21:00:00+01:00',
  format: 'date-time',
  maxLength: 40,
  pattern: INSTANT_PATTERN,
  check: (value, path) => {
    const m = compile(INSTANT_PATTERN).exec(value);
    const [year, month, day] = [Number(m?.[1]), Number(m?.[2]), Number(m?.[3])];
    // The pattern bounds each part; only "30 February"-style dates are left to refuse.
    if (day <= daysInMonth(year, month)) return undefined;
    return reason(
      'INVALID_EXPIRES_AT',
      `"${path}" ${show(value)} is not a real calendar date (month ${month} has ${daysInMonth(year, month)} days). ` +
        'Expected an instant such as 2026-11-21T20:00:00Z.',
    );
  },
};

const groups: ArraySpec = {
  kind: 'array',
  code: 'INVALID_GROUP',
  description: 'Kubernetes groups for the access entry, bound with your own RBAC.',
  expected: 'an array of at most 100 distinct Kubernetes group names',
  maxItems: 100,
  unique: true,
  items: groupName,
};

/** Table order of DESIGN.md section 2; it is also the order fields are checked and output. */
const FIELDS = [
  {
    name: 'schemaVersion',
    required: true,
    checkFirst: true,
    spec: {
      kind: 'integer',
      code: 'UNSUPPORTED_SCHEMA_VERSION',
      description: 'Contract version; this consumer reads version 1 only.',
      expected: 'the number 1 (this consumer reads AccessRequest v1 only)',
      const: 1,
    },
  },
  {
    name: 'requestId',
    required: true,
    spec: identifier('INVALID_REQUEST_ID', 'Idempotency key of the request.'),
  },
  {
    name: 'action',
    required: true,
    spec: {
      kind: 'string',
      code: 'INVALID_ACTION',
      expected: `one of: ${ACTIONS.join(', ')}`,
      enum: ACTIONS,
    },
  },
  {
    name: 'source',
    required: true,
    spec: {
      kind: 'string',
      code: 'INVALID_SOURCE',
      expected: `one of: ${SOURCES.join(', ')}`,
      enum: SOURCES,
    },
  },
  {
    name: 'clusterName',
    required: true,
    spec: {
      kind: 'string',
      code: 'INVALID_CLUSTER_NAME',
      expected: 'an EKS cluster name: 1–100 characters from A-Z a-z 0-9 _ -, starting with a letter or digit',
      minLength: 1,
      maxLength: 100,
      pattern: '^[0-9A-Za-z][A-Za-z0-9_-]*$',
      charset: '[A-Za-z0-9_-]',
    },
  },
  { name: 'principalArn', required: true, spec: principalArn },
  { name: 'kubernetesGroups', required: false, spec: groups },
  { name: 'username', required: false, spec: username },
  {
    name: 'accessPolicies',
    required: false,
    spec: {
      kind: 'array',
      code: 'INVALID_ACCESS_POLICIES',
      description: 'EKS access policies to associate, each with its scope.',
      expected: 'an array of 1–20 {policyArn, accessScope} objects with distinct policyArn values',
      minItems: 1,
      maxItems: 20,
      // EKS holds one scope per policy per entry; two scopes for one policy would silently replace each other.
      unique: 'policyArn',
      items: policyAssociation,
    },
  },
  { name: 'duration', required: false, spec: duration },
  { name: 'expiresAt', required: false, spec: expiresAt },
  {
    name: 'requestedBy',
    required: false,
    spec: { ...person, description: 'Who asked for the access, as a canonical identity.' },
  },
  {
    name: 'approvedBy',
    required: false,
    spec: {
      kind: 'array',
      code: 'INVALID_FIELD',
      description:
        'Who approved the request, as canonical identities; self-approval rules come from the guardrail policy.',
      expected: 'an array of at most 10 distinct approvers, each a canonical identity',
      maxItems: 10,
      unique: true,
      items: person,
    },
  },
  {
    name: 'reason',
    required: false,
    spec: {
      kind: 'string',
      code: 'INVALID_FIELD',
      description: 'Why the access is needed; carried into the audit record.',
      expected: '1–1024 printable characters (tabs and line breaks allowed)',
      minLength: 1,
      maxLength: 1024,
      pattern: `^${TEXT_CHAR}+$`,
      charset: TEXT_CHAR,
    },
  },
  { name: 'ticket', required: false, spec: reference('Change ticket reference, e.g. OPS-101.') },
  {
    name: 'incidentId',
    required: false,
    spec: reference('Incident reference for break-glass, e.g. INC-4242.'),
  },
  {
    name: 'grantId',
    required: false,
    spec: identifier(
      'INVALID_FIELD',
      'For revoke, expiry and extend: the requestId of the grant to end or extend.',
    ),
  },
  {
    name: 'extendBy',
    required: false,
    spec: {
      ...duration,
      description:
        'Only on an extend: how much later than its current end the grant ends. Mutually exclusive with expiresAt ' +
        '(the new end as an instant); the guardrail rule that made the grant caps the total from its start.',
    },
  },
  {
    name: 'principalRecreated',
    required: false,
    spec: {
      kind: 'boolean',
      code: 'INVALID_TYPE',
      description:
        'Only on an iam-role-created grant: the role was (re)created, so an existing access entry for this ARN ' +
        'is stale (it belongs to an earlier role with the same ARN) and must be deleted and recreated.',
      expected: 'true or false',
    },
  },
] as const satisfies readonly FieldDef[];

const has = (o: Readonly<Record<string, unknown>>, key: string) => Object.hasOwn(o, key);

const RULES: readonly ObjectRule[] = [
  {
    after: 'expiresAt',
    check: (o) =>
      has(o, 'duration') && has(o, 'expiresAt')
        ? reason(
            'CONFLICTING_FIELDS',
            '"duration" and "expiresAt" are both set; send exactly one: a relative "duration" (e.g. PT1H) ' +
              'or an absolute "expiresAt" (e.g. 2026-11-21T20:00:00Z).',
          )
        : undefined,
    schema: {
      $comment: 'duration and expiresAt are mutually exclusive',
      not: { required: ['duration', 'expiresAt'] },
    },
  },
  {
    // Only the role-lifecycle intake knows a role was recreated; from any other source the flag would let a
    // caller force a delete-and-recreate of someone's entry, so it is refused rather than ignored.
    check: (o) => {
      if (!has(o, 'principalRecreated')) return undefined;
      if (own(o, 'source') === 'iam-role-created' && own(o, 'action') === 'grant') return undefined;
      return reason(
        'CONFLICTING_FIELDS',
        `"principalRecreated" is only accepted on a grant with source "iam-role-created"; got action ` +
          `${show(own(o, 'action'))} and source ${show(own(o, 'source'))}. Remove "principalRecreated".`,
      );
    },
    schema: {
      $comment: 'principalRecreated only on an iam-role-created grant',
      if: { required: ['principalRecreated'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
      then: { properties: { source: { const: 'iam-role-created' }, action: { const: 'grant' } } },
    },
  },
  {
    // Checked before NOTHING_TO_GRANT so an expiry sent as a grant is told what is really wrong.
    check: (o) => {
      if (own(o, 'source') !== 'expiry') return undefined;
      if (!has(o, 'grantId')) {
        return reason(
          'GRANT_ID_REQUIRED',
          'Source "expiry" needs "grantId": the requestId of the grant that has expired.',
        );
      }
      if (own(o, 'action') !== 'revoke') {
        return reason(
          'INVALID_ACTION',
          `Source "expiry" only ends grants; got action ${show(own(o, 'action'))}. Expected action "revoke".`,
        );
      }
      return undefined;
    },
    schema: {
      $comment: 'an expiry message revokes one grant',
      if: { properties: { source: { const: 'expiry' } }, required: ['source'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
      then: { required: ['grantId'], properties: { action: { const: 'revoke' } } },
    },
  },
  {
    // An extend moves the end of one grant and nothing else: what it gives was decided when it was granted,
    // so access fields are refused rather than ignored (an operator must not believe they changed it).
    check: (o) => {
      if (own(o, 'action') !== 'extend') {
        return has(o, 'extendBy')
          ? reason(
              'CONFLICTING_FIELDS',
              `"extendBy" is only accepted on action "extend"; got action ${show(own(o, 'action'))}. ` +
                'Remove "extendBy", or use "duration" / "expiresAt" on a grant.',
            )
          : undefined;
      }
      if (!has(o, 'grantId')) {
        return reason(
          'GRANT_ID_REQUIRED',
          'Action "extend" needs "grantId": the requestId of the grant to extend (see `eks-access-grants grants`).',
        );
      }
      const access = ['accessPolicies', 'kubernetesGroups', 'username'].filter((k) => has(o, k));
      if (access.length > 0) {
        return reason(
          'EXTEND_CHANGES_ACCESS',
          `Action "extend" only moves a grant's end; it cannot carry ${access.map((k) => `"${k}"`).join(', ')}. ` +
            'Remove them, or request the different access as a new grant.',
        );
      }
      if (has(o, 'duration')) {
        return reason(
          'CONFLICTING_FIELDS',
          'Action "extend" takes "extendBy" (e.g. PT1H, added to the current end) or "expiresAt" (the new end), ' +
            'not "duration".',
        );
      }
      if (has(o, 'extendBy') && has(o, 'expiresAt')) {
        return reason(
          'CONFLICTING_FIELDS',
          '"extendBy" and "expiresAt" are both set; send exactly one: "extendBy" (e.g. PT1H, added to the ' +
            'current end) or "expiresAt" (the new end, e.g. 2026-11-21T20:00:00Z).',
        );
      }
      if (!has(o, 'extendBy') && !has(o, 'expiresAt')) {
        return reason(
          'EXTENSION_REQUIRED',
          'Action "extend" needs "extendBy" (e.g. PT1H, added to the current end) or "expiresAt" (the new end).',
        );
      }
      return undefined;
    },
    schema: {
      $comment: 'extendBy only on an extend; an extend names its grant, one new end, and no access',
      if: { properties: { action: { const: 'extend' } }, required: ['action'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
      then: {
        required: ['grantId'],
        not: {
          anyOf: [
            { required: ['accessPolicies'] },
            { required: ['kubernetesGroups'] },
            { required: ['username'] },
            { required: ['duration'] },
            { required: ['extendBy', 'expiresAt'] },
          ],
        },
        anyOf: [{ required: ['extendBy'] }, { required: ['expiresAt'] }],
      },
      else: { not: { required: ['extendBy'] } },
    },
  },
  {
    check: (o) => {
      if (own(o, 'action') !== 'grant' || has(o, 'accessPolicies')) return undefined;
      const g = own(o, 'kubernetesGroups');
      if (Array.isArray(g) && g.length > 0) return undefined;
      return reason(
        'NOTHING_TO_GRANT',
        'Action "grant" needs at least one of "accessPolicies" (non-empty) or "kubernetesGroups" (non-empty); ' +
          'the request grants nothing.',
      );
    },
    schema: {
      $comment: 'a grant must grant something',
      if: { properties: { action: { const: 'grant' } }, required: ['action'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
      then: {
        anyOf: [
          { required: ['accessPolicies'] },
          { required: ['kubernetesGroups'], properties: { kubernetesGroups: { minItems: 1 } } },
        ],
      },
    },
  },
  {
    check: (o) => {
      if (own(o, 'source') !== 'break-glass' || own(o, 'action') !== 'grant') return undefined;
      if (!has(o, 'incidentId')) {
        return reason('INCIDENT_ID_REQUIRED', 'A break-glass grant needs "incidentId", e.g. "INC-4242".');
      }
      if (!has(o, 'reason')) {
        return reason(
          'REASON_REQUIRED',
          'A break-glass grant needs "reason": why emergency access is needed.',
        );
      }
      if (!has(o, 'duration') && !has(o, 'expiresAt')) {
        return reason(
          'DURATION_REQUIRED',
          'A break-glass grant must end: set "duration" (e.g. PT1H) or "expiresAt" (e.g. 2026-11-21T20:00:00Z).',
        );
      }
      return undefined;
    },
    schema: {
      $comment: 'a break-glass grant names its incident, says why, and ends',
      if: {
        properties: { source: { const: 'break-glass' }, action: { const: 'grant' } },
        required: ['source', 'action'],
      },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
      then: {
        required: ['incidentId', 'reason'],
        anyOf: [{ required: ['duration'] }, { required: ['expiresAt'] }],
      },
    },
  },
];

export const ACCESS_REQUEST_SPEC: ObjectSpec = {
  kind: 'object',
  code: 'NOT_AN_OBJECT',
  description: 'AccessRequest v1: the body of every message on the requests queue.',
  expected: 'a JSON object (an AccessRequest v1)',
  fields: FIELDS,
  rules: RULES,
};

// Compile-time guard: the spec and the AccessRequest type list the same fields, and agree on which are required.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type Field = (typeof FIELDS)[number];
const _specMatchesTypes: Equal<Field['name'], keyof AccessRequest> &
  Equal<Extract<Field, { required: true }>['name'], RequiredKeys<AccessRequest>> &
  Equal<'policyArn' | 'accessScope', keyof PolicyAssociation> &
  Equal<'type' | 'namespaces', keyof AccessScope> = true;

// ---------------------------------------------------------------------------------------------

/** UTF-8 length without Buffer/TextEncoder (core stays runtime-neutral); lone surrogates count as U+FFFD. */
export function utf8ByteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

const PARTIAL_KEYS = ['requestId', 'clusterName', 'principalArn', 'source', 'action'] as const;

function partialOf(value: unknown): PartialIdentifiers {
  const partial: PartialIdentifiers = {};
  if (!isPlainObject(value)) return partial;
  for (const key of PARTIAL_KEYS) {
    const v = own(value, key);
    // Untrusted, possibly invalid: kept only to correlate the rejection, and bounded.
    if (typeof v === 'string') partial[key] = truncate(v, 2048);
  }
  return partial;
}

/** Validates an already-parsed JSON value. Returns a new object holding known fields only. */
export function validateAccessRequest(value: unknown): ParseResult {
  if (!isPlainObject(value)) {
    return {
      ok: false,
      reason: reason(
        'NOT_AN_OBJECT',
        `The message body must be a JSON object (an AccessRequest v1); got ${show(value)}.`,
      ),
      partial: {},
    };
  }
  const r = validate(ACCESS_REQUEST_SPEC, value, '');
  if (!r.ok) return { ok: false, reason: r.reason, partial: partialOf(value) };
  return { ok: true, request: r.value as AccessRequest };
}

/** Parses a raw queue message body. */
export function parseAccessRequest(body: string): ParseResult {
  const bytes = utf8ByteLength(body);
  if (bytes > MAX_BODY_BYTES) {
    return {
      ok: false,
      reason: reason(
        'BODY_TOO_LARGE',
        `The message body is ${bytes} bytes; at most ${MAX_BODY_BYTES} bytes (UTF-8) are accepted. ` +
          'A valid AccessRequest is far smaller: check what the producer is sending.',
      ),
      partial: {},
    };
  }
  let value: unknown;
  try {
    // Duplicate keys are not detectable here: JSON.parse keeps the last one.
    value = JSON.parse(body);
  } catch (err) {
    const detail = err instanceof Error ? truncate(err.message, 120) : 'parse error';
    return {
      ok: false,
      reason: reason(
        'MALFORMED_JSON',
        `The message body is not valid JSON (${detail}). Send one JSON object.`,
      ),
      partial: {},
    };
  }
  return validateAccessRequest(value);
}

/** JSON Schema (draft 2020-12) of AccessRequest v1, generated from the same specs as the validator. */
export function accessRequestJsonSchema(): Record<string, unknown> {
  return schemaDocument(ACCESS_REQUEST_SPEC, {
    id: 'urn:eks-access-grants:schema:access-request:v1',
    title: 'AccessRequest v1',
    comment:
      'Generated from functions/core/request.ts by `npm run schemas`; do not edit. The validator also enforces ' +
      'what a schema cannot: real calendar dates in expiresAt, 0 < duration <= P90D, distinct policyArn values ' +
      'within accessPolicies, and it reports the first violation with a reason code.',
  });
}
