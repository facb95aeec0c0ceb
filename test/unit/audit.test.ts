import { describe, expect, test } from 'vitest';
import {
  auditHash,
  buildAuditRecord,
  describeChange,
  isRecordOfMessage,
  messageAttemptKey,
} from '../../functions/core/audit.js';
import { auditRecordJsonSchema, validateAuditRecord } from '../../functions/core/audit-schema.js';
import { accepts } from '../helpers/ajv.js';
import { fixture, ns, VIEW } from '../helpers/fixtures.js';

const hash = (s: string) => Buffer.from(s).toString('hex').padEnd(32, '0').slice(0, 32);
const at = new Date('2026-11-21T12:00:00Z');

describe('AuditRecord v1', () => {
  const schema = auditRecordJsonSchema();

  test('a granted record with changes conforms to the published schema', () => {
    const record = buildAuditRecord(
      {
        requestId: 'r1',
        outcome: 'granted',
        attempt: 1,
        at,
        attemptKey: 'm1:1',
        request: fixture('dev-view-grant'),
        grantId: 'r1',
        expiresAt: '2026-11-21T20:00:00.000Z',
        changes: [
          describeChange({ op: 'CreateAccessEntry', kubernetesGroups: ['g'], tags: {} }, 'applied'),
          describeChange({ op: 'AssociateAccessPolicy', policyArn: VIEW, accessScope: ns('a') }, 'applied'),
        ],
      },
      hash,
    );
    expect(accepts(schema, record)).toBe(true);
  });

  test('a rejected record of an unparseable body conforms and carries its reason', () => {
    const record = buildAuditRecord(
      {
        requestId: 'invalid:m2',
        outcome: 'rejected',
        attempt: 1,
        at,
        attemptKey: 'm2:1',
        reason: { code: 'MALFORMED_JSON', message: 'not JSON' },
      },
      hash,
    );
    expect(accepts(schema, record)).toBe(true);
    expect(record.reason?.code).toBe('MALFORMED_JSON');
  });

  test('marks break-glass records high severity so a bus rule can page', () => {
    const record = buildAuditRecord(
      {
        requestId: 'bg',
        outcome: 'granted',
        attempt: 1,
        at,
        attemptKey: 'k',
        request: fixture('prod-break-glass'),
      },
      hash,
    );
    expect(record.severity).toBe('high');
    expect(record.incidentId).toBe('INC-4242');
  });

  test('the schema refuses an unknown outcome and an unknown field', () => {
    const ok = buildAuditRecord(
      { requestId: 'r', outcome: 'unchanged', attempt: 1, at, attemptKey: 'k' },
      hash,
    );
    expect(accepts(schema, { ...ok, outcome: 'maybe' })).toBe(false);
    expect(accepts(schema, { ...ok, extra: 1 })).toBe(false);
  });

  test('gives the same auditId to the same request attempt and a new one to the next attempt', () => {
    const a = buildAuditRecord(
      { requestId: 'r', outcome: 'failed', attempt: 1, at, attemptKey: 'm:1' },
      hash,
    );
    const b = buildAuditRecord(
      { requestId: 'r', outcome: 'failed', attempt: 1, at, attemptKey: 'm:1' },
      hash,
    );
    const c = buildAuditRecord(
      { requestId: 'r', outcome: 'failed', attempt: 2, at, attemptKey: 'm:2' },
      hash,
    );
    expect(a.auditId).toBe(b.auditId);
    expect(a.auditId).not.toBe(c.auditId);
  });

  test('the validator from the same specs agrees with the schema, and names the field that is wrong', () => {
    const ok = buildAuditRecord(
      {
        requestId: 'r',
        outcome: 'granted',
        attempt: 2,
        at,
        attemptKey: 'k',
        request: fixture('dev-view-grant'),
        changes: [
          describeChange({ op: 'DeleteAccessEntry', before: { kubernetesGroups: [] } } as never, 'applied'),
        ],
      },
      hash,
    );
    expect(validateAuditRecord(ok)).toMatchObject({ ok: true });
    expect(accepts(schema, ok)).toBe(true);
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ ...ok, attempt: 0 }, '"attempt"'],
      [{ ...ok, at: 'yesterday' }, '"at"'],
      [{ ...ok, severity: 'urgent' }, '"severity"'],
      [{ ...ok, changes: [{ ...ok.changes[0], before: 'gone' }] }, '"changes[0].before"'],
      [{ ...ok, reason: { code: 'lower_case', message: 'm' } }, '"reason.code"'],
    ];
    for (const [record, field] of bad) {
      const checked = validateAuditRecord(record);
      expect(checked.ok, field).toBe(false);
      expect(checked.ok ? '' : checked.reason.message, field).toContain(field);
      expect(accepts(schema, record), field).toBe(false);
    }
  });
});

describe('isRecordOfMessage: which SQS message a worker record was produced for', () => {
  const record = (messageId: string, attempt: number) =>
    buildAuditRecord(
      {
        requestId: 'operator-revoke-1',
        outcome: 'revoked',
        attempt,
        at,
        attemptKey: messageAttemptKey(messageId, attempt),
        request: fixture('dev-view-revoke', { requestId: 'operator-revoke-1', source: 'operator' }),
      },
      auditHash,
    );

  test('matches the record of its own message, on any attempt', () => {
    expect(isRecordOfMessage(record('msg-ours', 1), 'msg-ours')).toBe(true);
    expect(isRecordOfMessage(record('msg-ours', 3), 'msg-ours')).toBe(true);
  });

  test('a record of another message with the same request id does not match, nor one edited after the fact', () => {
    expect(isRecordOfMessage(record('msg-twin', 1), 'msg-ours')).toBe(false);
    const ours = record('msg-ours', 1);
    expect(isRecordOfMessage({ ...ours, outcome: 'rejected' }, 'msg-ours')).toBe(false);
    expect(isRecordOfMessage({ ...ours, attempt: 2 }, 'msg-ours')).toBe(false);
  });
});
