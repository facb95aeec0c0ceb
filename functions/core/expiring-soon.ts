/**
 * ExpiringSoon v1: the `expiring-soon` event on the audit bus (source `eks-access-grants`, detail-type
 * `Access Grant Expiring Soon`), a configurable lead time before a time-boxed grant ends, so a bus rule can
 * remind the requester (Slack, email) to finish up or ask for an extension.
 *
 * Who publishes it: EventBridge Scheduler itself. The worker that records a time-boxed grant creates, next
 * to its expiry schedule, a second one-time schedule at `expiresAt - lead` whose target is the audit bus
 * (Scheduler's templated EventBridge PutEvents target), with this detail as its Input. So nothing runs
 * just to send a reminder, and revoke/extend move or delete it with the expiry schedule. The detail is
 * fixed when the schedule is written (grant, extension): it says what the grant gave and when it ends as
 * of then. Declared once as field specs (like audit-schema.ts), which give the published JSON Schema and
 * the validator tests run on every event.
 */
import type { Grant } from './ledger.js';
import { type Checked, type ObjectSpec, schemaDocument, specBuilders, validate } from './schema.js';
import { type PolicyAssociation, SOURCES, type Source } from './types.js';

export const EXPIRING_SOON_DETAIL_TYPE = 'Access Grant Expiring Soon';

export interface ExpiringSoonEvent {
  schemaVersion: 1;
  grantId: string;
  clusterName: string;
  principalArn: string;
  /** The route the grant came by. */
  source: Source;
  /** When the grant ends (as of when the reminder was scheduled). */
  expiresAt: string;
  /** How long before `expiresAt` the reminder fires, ISO-8601 (e.g. PT15M). */
  leadTime: string;
  /** `high` for break-glass, as on its audit records. */
  severity: 'normal' | 'high';
  requestedBy?: string;
  approvedBy?: string[];
  ticket?: string;
  incidentId?: string;
  accessPolicies: PolicyAssociation[];
  kubernetesGroups: string[];
}

export function expiringSoonEvent(
  target: { clusterName: string; principalArn: string },
  grant: Grant,
  leadTime: string,
): ExpiringSoonEvent {
  return {
    schemaVersion: 1,
    grantId: grant.grantId,
    clusterName: target.clusterName,
    principalArn: target.principalArn,
    source: grant.source,
    expiresAt: grant.expiresAt ?? '',
    leadTime,
    severity: grant.source === 'break-glass' ? 'high' : 'normal',
    ...(grant.requestedBy !== undefined && { requestedBy: grant.requestedBy }),
    ...(grant.approvedBy !== undefined && { approvedBy: grant.approvedBy }),
    ...(grant.ticket !== undefined && { ticket: grant.ticket }),
    ...(grant.incidentId !== undefined && { incidentId: grant.incidentId }),
    accessPolicies: grant.policies,
    kubernetesGroups: grant.kubernetesGroups,
  };
}

// ---------------------------------------------------------------------------------------------------------

const CODE = 'INVALID_EXPIRING_SOON_EVENT';
const { text, required, optional, object, strings, instant } = specBuilders(CODE);
const scope = object([
  required('type', text(undefined, { expected: 'cluster, namespace', enum: ['cluster', 'namespace'] })),
  optional('namespaces', strings),
]);

export const EXPIRING_SOON_SPEC: ObjectSpec = object(
  [
    required('schemaVersion', { kind: 'integer', code: CODE, expected: '1', const: 1 }),
    required('grantId', text('The grant that is about to end (its requestId).', { minLength: 1 })),
    required('clusterName', text()),
    required('principalArn', text()),
    required('source', text('The route the grant came by.', { expected: SOURCES.join(', '), enum: SOURCES })),
    required('expiresAt', instant('When the grant ends, as of when this reminder was scheduled.')),
    required(
      'leadTime',
      text('How long before expiresAt this fires (ISO-8601 duration).', { pattern: '^P[0-9DTHMS]+$' }),
    ),
    required(
      'severity',
      text('`high` for break-glass.', { expected: 'normal, high', enum: ['normal', 'high'] }),
    ),
    optional('requestedBy', text('Who asked for the grant: the person to remind.')),
    optional('approvedBy', strings),
    optional('ticket', text()),
    optional('incidentId', text()),
    required('accessPolicies', {
      kind: 'array',
      code: CODE,
      expected: 'a list of policy associations',
      items: object([required('policyArn', text()), required('accessScope', scope)]),
    }),
    required('kubernetesGroups', strings),
  ],
  'A reminder a lead time (deploy parameter expiringSoonLead, default PT15M) before a time-boxed grant ends, published to the audit EventBridge bus by EventBridge Scheduler (source "eks-access-grants", detail-type "Access Grant Expiring Soon"). Not an audit record: nothing changed.',
);

export function expiringSoonJsonSchema(): Record<string, unknown> {
  return schemaDocument(EXPIRING_SOON_SPEC, {
    id: 'https://eks-access-grants.dev/schemas/expiring-soon.v1.schema.json',
    title: 'ExpiringSoon v1',
    comment: 'Generated from functions/core/expiring-soon.ts by `npm run schemas`; do not edit.',
  });
}

export function validateExpiringSoonEvent(event: unknown): Checked {
  return validate(EXPIRING_SOON_SPEC, event, '');
}
