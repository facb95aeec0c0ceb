/**
 * JSON Schema (draft 2020-12) of AuditRecord v1, published in events/schemas/ for
 * consumers (bus rules, SIEM parsers). Kept beside the type; a unit test checks the
 * records the builder produces against it, so the two cannot drift apart silently.
 */
import { AUDIT_OUTCOMES } from './audit.js';
import { SOURCES } from './types.js';

const scope = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: ['cluster', 'namespace'] },
    namespaces: { type: 'array', items: { type: 'string' } },
  },
};

export const AUDIT_OPERATIONS = [
  'CreateAccessEntry',
  'UpdateAccessEntry',
  'AssociateAccessPolicy',
  'DisassociateAccessPolicy',
  'DeleteAccessEntry',
] as const;

export function auditRecordJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://eks-access-grants.dev/schemas/audit-record.v1.schema.json',
    title: 'AuditRecord v1',
    description:
      'One terminal record per request per attempt cycle, published to the audit EventBridge bus (source "eks-access-grants", detail-type "Access Grant Outcome") and written to the log.',
    type: 'object',
    additionalProperties: false,
    required: ['schemaVersion', 'auditId', 'requestId', 'outcome', 'severity', 'changes', 'attempt', 'at'],
    properties: {
      schemaVersion: { const: 1 },
      auditId: {
        type: 'string',
        pattern: '^[0-9a-f]{32}$',
        description: 'Deterministic per request and attempt.',
      },
      requestId: { type: 'string', minLength: 1 },
      grantId: { type: 'string' },
      outcome: { enum: [...AUDIT_OUTCOMES] },
      severity: { enum: ['normal', 'high'], description: '`high` for break-glass: route it to a pager.' },
      reason: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'message'],
        properties: { code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]*$' }, message: { type: 'string' } },
        description: 'Present for rejected, failed and drift.',
      },
      clusterName: { type: 'string' },
      principalArn: { type: 'string' },
      source: { enum: [...SOURCES] },
      action: { enum: ['grant', 'revoke'] },
      requestedBy: { type: 'string' },
      approvedBy: { type: 'array', items: { type: 'string' } },
      ticket: { type: 'string' },
      incidentId: { type: 'string' },
      changes: {
        type: 'array',
        description: 'Every EKS call made (or, for drift, planned), with the state before and after.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['operation', 'before', 'after', 'status'],
          properties: {
            operation: { enum: [...AUDIT_OPERATIONS] },
            policyArn: { type: 'string' },
            before: { anyOf: [{ type: 'null' }, { type: 'object' }] },
            after: { anyOf: [{ type: 'null' }, scope, { type: 'object' }] },
            status: { enum: ['applied', 'failed', 'planned'] },
          },
        },
      },
      expiresAt: { type: 'string', format: 'date-time' },
      endedBy: {
        type: 'object',
        additionalProperties: false,
        required: ['source', 'requestId'],
        description:
          'On revoked and expired: who ended the grant(s): the route, its request, and who it says asked.',
        properties: {
          source: { enum: [...SOURCES] },
          requestId: { type: 'string' },
          requestedBy: { type: 'string' },
        },
      },
      dropped: {
        type: 'object',
        additionalProperties: false,
        required: ['kubernetesGroups', 'policies'],
        description:
          "On the grant that recreated a recreated role's stale entry (severity high): what the old entry held that this system never granted, so did not carry over.",
        properties: {
          kubernetesGroups: { type: 'array', items: { type: 'string' } },
          policies: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['policyArn', 'accessScope'],
              properties: { policyArn: { type: 'string' }, accessScope: scope },
            },
          },
          username: { type: 'string' },
        },
      },
      attempt: { type: 'integer', minimum: 1 },
      at: { type: 'string', format: 'date-time' },
    },
  };
}
