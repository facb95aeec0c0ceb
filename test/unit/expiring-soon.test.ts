import { describe, expect, test } from 'vitest';
import { expiringSoonScheduleName, scheduleName } from '../../functions/adapters/scheduler.js';
import { auditBusArn, expiringSoonOf } from '../../functions/config.js';
import { ConfigError } from '../../functions/core/errors.js';
import { expiringSoonEvent, validateExpiringSoonEvent } from '../../functions/core/expiring-soon.js';
import type { Grant } from '../../functions/core/ledger.js';
import { ADMIN } from '../helpers/fixtures.js';

const ENV = {
  AWS_REGION: 'eu-west-1',
  REQUEST_QUEUE_ARN: 'arn:aws:sqs:eu-west-1:111122223333:eks-access-grants-prod-requests.fifo',
  AUDIT_BUS_NAME: 'eks-access-grants-prod-audit',
};

describe('EXPIRING_SOON_LEAD', () => {
  test('defaults to PT15M, on the audit bus of the deployment', () => {
    expect(expiringSoonOf(ENV)).toEqual({ expiringSoon: { leadTime: 'PT15M', leadMs: 900_000 } });
    expect(
      auditBusArn({ auditBusName: ENV.AUDIT_BUS_NAME }, { account: '111122223333', region: 'eu-west-1' }),
    ).toBe('arn:aws:events:eu-west-1:111122223333:event-bus/eks-access-grants-prod-audit');
  });

  test('PT0S turns the reminders off', () => {
    expect(expiringSoonOf({ ...ENV, EXPIRING_SOON_LEAD: 'PT0S' })).toEqual({});
  });

  test.each(['15m', 'P1M', 'PT25H', '-PT1H', 'PT1.5H'])(
    'refuses %s at cold start, naming the variable',
    (v) => {
      expect(() => expiringSoonOf({ ...ENV, EXPIRING_SOON_LEAD: v })).toThrow(ConfigError);
      expect(() => expiringSoonOf({ ...ENV, EXPIRING_SOON_LEAD: v })).toThrow(/EXPIRING_SOON_LEAD=/);
    },
  );
});

describe('the expiring-soon event', () => {
  const grant: Grant = {
    grantId: 'req-bg-1',
    requestId: 'req-bg-1',
    source: 'break-glass',
    policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
    kubernetesGroups: [],
    status: 'active',
    expiresAt: '2026-12-02T15:00:00.000Z',
    requestedBy: 'carol@example.com',
    incidentId: 'INC-9',
    reason: 'not in the reminder',
    createdAt: '2026-12-02T14:00:00.000Z',
    version: 1,
  };

  test('names the grant, its holder and its end, pages as loudly as break-glass does, and matches its schema', () => {
    const event = expiringSoonEvent(
      { clusterName: 'prod', principalArn: 'arn:aws:iam::111122223333:role/oncall' },
      grant,
      'PT15M',
    );
    expect(event).toEqual({
      schemaVersion: 1,
      grantId: 'req-bg-1',
      clusterName: 'prod',
      principalArn: 'arn:aws:iam::111122223333:role/oncall',
      source: 'break-glass',
      expiresAt: '2026-12-02T15:00:00.000Z',
      leadTime: 'PT15M',
      severity: 'high',
      requestedBy: 'carol@example.com',
      incidentId: 'INC-9',
      accessPolicies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
      kubernetesGroups: [],
    });
    expect(validateExpiringSoonEvent(event).ok).toBe(true);
    expect(validateExpiringSoonEvent({ ...event, extra: 1 }).ok).toBe(false);
  });

  test('its schedule is named like the expiry schedule, within the 64 characters Scheduler allows', () => {
    const name = expiringSoonScheduleName('req-bg-1');
    expect(name).toBe(`soon-${scheduleName('req-bg-1').slice('expiry-'.length)}`);
    expect(name).toMatch(/^[0-9a-zA-Z\-_.]{1,64}$/);
    expect(expiringSoonScheduleName('g', '444455556666:us-west-2:c')).not.toBe(expiringSoonScheduleName('g'));
  });
});
