/**
 * AuditRecord v1, declared once as field specs (functions/core/schema.ts): `auditRecordJsonSchema` is
 * published in events/schemas/ for consumers (bus rules, SIEM parsers), and `validateAuditRecord` checks
 * a record against the same specs (tests run it on every record the builder and the workers produce).
 * New fields are additive and optional (contract C7).
 */
import { AUDIT_OUTCOMES } from './audit.js';
import {
  type AnySpec,
  type Checked,
  type IntegerSpec,
  type ObjectSpec,
  schemaDocument,
  specBuilders,
  validate,
} from './schema.js';
import { ACTIONS, SOURCES } from './types.js';

export const AUDIT_OPERATIONS = [
  'CreateAccessEntry',
  'UpdateAccessEntry',
  'AssociateAccessPolicy',
  'DisassociateAccessPolicy',
  'DeleteAccessEntry',
] as const;

/** Code of a record that does not match its contract: a bug in this system, not a bad input. */
const CODE = 'INVALID_AUDIT_RECORD';

const { text, oneOf, optional, required, object, instant, strings } = specBuilders(CODE);

const state = (description: string): AnySpec => ({
  kind: 'any',
  code: CODE,
  expected: 'null or an object',
  types: ['null', 'object'],
  description,
});

const change = object([
  required('operation', oneOf(AUDIT_OPERATIONS)),
  optional('policyArn', text()),
  required('before', state('The entry or association before the call; null if there was none.')),
  required(
    'after',
    state('What the call set (groups and username, or an access scope); null if it removed it.'),
  ),
  required('status', oneOf(['applied', 'failed', 'planned'])),
]);

const scope = object([required('type', oneOf(['cluster', 'namespace'])), optional('namespaces', strings)]);

const endedBy = object(
  [required('source', oneOf(SOURCES)), required('requestId', text()), optional('requestedBy', text())],
  'On revoked and expired: who ended the grant(s): the route, its request, and who it says asked.',
);

const dropped = object(
  [
    required('kubernetesGroups', strings),
    required('policies', {
      kind: 'array',
      code: CODE,
      expected: 'a list of policy associations',
      items: object([required('policyArn', text()), required('accessScope', scope)]),
    }),
    optional('username', text()),
  ],
  "On the grant that recreated a recreated role's stale entry (severity high): what the old entry held that this system never granted, so did not carry over.",
);

const attempt: IntegerSpec = { kind: 'integer', code: CODE, expected: 'a whole number ≥ 1', minimum: 1 };

export const AUDIT_RECORD_SPEC: ObjectSpec = {
  ...object(
    [
      required('schemaVersion', { kind: 'integer', code: CODE, expected: '1', const: 1 }),
      required('auditId', text('Deterministic per request and attempt.', { pattern: '^[0-9a-f]{32}$' })),
      required('requestId', text(undefined, { minLength: 1 })),
      optional('grantId', text()),
      required('outcome', oneOf(AUDIT_OUTCOMES)),
      required('severity', oneOf(['normal', 'high'], '`high` for break-glass: route it to a pager.')),
      optional(
        'reason',
        object(
          [required('code', text(undefined, { pattern: '^[A-Z][A-Z0-9_]*$' })), required('message', text())],
          'Present for rejected, failed and drift.',
        ),
      ),
      optional('clusterName', text('The cluster alias the request named (the guardrail policy key).')),
      optional(
        'clusterArn',
        text(
          'The EKS cluster the alias resolved to, in its account and region (absent when it resolved to none, e.g. a cluster the policy does not name).',
          { pattern: '^arn:aws[a-z-]*:eks:[a-z0-9-]+:[0-9]{12}:cluster/[0-9A-Za-z][A-Za-z0-9_-]*$' },
        ),
      ),
      optional('principalArn', text()),
      optional('source', oneOf(SOURCES)),
      optional('action', oneOf(ACTIONS)),
      optional('requestedBy', text()),
      optional('approvedBy', strings),
      optional('ticket', text()),
      optional('incidentId', text()),
      required('changes', {
        kind: 'array',
        code: CODE,
        expected: 'a list of changes',
        description: 'Every EKS call made (or, for drift, planned), with the state before and after.',
        items: change,
      }),
      optional('expiresAt', instant()),
      optional('previousExpiresAt', instant('On extended: when the grant was to end before this extension.')),
      optional('endedBy', endedBy),
      optional('dropped', dropped),
      optional(
        'senderId',
        text(
          'The SenderId SQS stamped on the message (`<role id>:<session>` for a role): who really sent it. On UNTRUSTED_SENDER rejections, the sender that was refused.',
        ),
      ),
      required('attempt', attempt),
      required('at', instant()),
    ],
    'One terminal record per request per attempt cycle, published to the audit EventBridge bus (source "eks-access-grants", detail-type "Access Grant Outcome") and written to the log.',
  ),
};

export function auditRecordJsonSchema(): Record<string, unknown> {
  return schemaDocument(AUDIT_RECORD_SPEC, {
    id: 'https://eks-access-grants.dev/schemas/audit-record.v1.schema.json',
    title: 'AuditRecord v1',
    comment: 'Generated from functions/core/audit-schema.ts by `npm run schemas`; do not edit.',
  });
}

/** Checks a record against AuditRecord v1: the first violation, with its path. */
export function validateAuditRecord(record: unknown): Checked {
  return validate(AUDIT_RECORD_SPEC, record, '');
}
