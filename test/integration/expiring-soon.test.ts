/**
 * expiring-soon reminders, through the real worker and the emulators over HTTP: the worker writes a second
 * one-time schedule per time-boxed grant at expiresAt - lead, whose target is the audit bus; the Scheduler
 * emulator really fires it (Scheduler's EventBridge target) and the event lands on the bus. Revokes delete
 * it, extensions move it. Lead times are long (PT1H) and grants a few seconds longer, so a reminder fires
 * within seconds while the grant itself stays active; nothing asserts how long anything took.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { expiringSoonScheduleName, scheduleName } from '../../functions/adapters/scheduler.js';
import { validateExpiringSoonEvent } from '../../functions/core/expiring-soon.js';
import type { AccessRequest } from '../../functions/core/types.js';
import { auditsOnceThere, ledgerOf, pumpUntil } from '../helpers/expiry.js';
import { fixture, ns, VIEW } from '../helpers/fixtures.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const P = 'arn:aws:iam::111122223333:role/reminded';
const OPERATOR = 'arn:aws:sts::000000000000:assumed-role/OperatorRole/local-operator';

function devGrant(requestId: string, duration: string): AccessRequest {
  return {
    schemaVersion: 1,
    requestId,
    action: 'grant',
    source: 'ticket',
    clusterName: 'dev',
    principalArn: P,
    accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    duration,
    requestedBy: 'alice@example.com',
    ticket: 'OPS-77',
  };
}

describe('expiring-soon reminders', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ expiringSoonLead: 'PT1H' });
  });
  afterEach(async () => {
    await h.close();
  });

  const schedule = (name: string) => h.aws.schedulerEmulator.schedules().find((s) => s.name === name);
  const reminderAt = (expiresAt: string) =>
    new Date(Math.ceil((Date.parse(expiresAt) - 3_600_000) / 1000) * 1000).toISOString();

  test('puts an expiring-soon event on the audit bus a lead time before the grant ends; the grant stays', async () => {
    // Paused, so the reminder can be looked at before it fires (on a busy machine seconds pass quickly).
    h.aws.schedulerEmulator.pause();
    // 30 s past the lead time: a drain slowed by a busy machine must not already be inside it (then, rightly,
    // no reminder is scheduled at all).
    await h.send(devGrant('req-soon-1', 'PT1H30S'));
    await h.drain();
    const [granted] = h.auditsFor('req-soon-1');
    expect(granted?.outcome).toBe('granted');
    const expiresAt = granted?.expiresAt as string;
    const reminder = schedule(expiringSoonScheduleName('req-soon-1'));
    expect(reminder).toMatchObject({
      fireAt: reminderAt(expiresAt),
      actionAfterCompletion: 'DELETE',
      target: {
        Arn: 'arn:aws:events:us-east-1:123456789012:event-bus/audit',
        EventBridgeParameters: { Source: 'eks-access-grants', DetailType: 'Access Grant Expiring Soon' },
      },
    });

    h.aws.schedulerEmulator.resume();
    await pumpUntil(h, () => h.reminders().length > 0, 'the expiring-soon event', 90_000);
    const events = h.aws.eventbridgeEmulator
      .events()
      .filter((e) => e.detailType === 'Access Grant Expiring Soon');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ source: 'eks-access-grants', eventBusName: 'audit' });
    const [event] = h.reminders();
    expect(event).toEqual({
      schemaVersion: 1,
      grantId: 'req-soon-1',
      clusterName: 'dev',
      principalArn: P,
      source: 'ticket',
      expiresAt,
      leadTime: 'PT1H',
      severity: 'normal',
      requestedBy: 'alice@example.com',
      ticket: 'OPS-77',
      accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
      kubernetesGroups: [],
    });
    expect(validateExpiringSoonEvent(event).ok).toBe(true);
    // A reminder is not an audit record and changes nothing: the grant and its expiry are still there.
    // (A redelivery under load may add an `unchanged`.)
    expect(h.audits().every((a) => a.outcome === 'granted' || a.outcome === 'unchanged')).toBe(true);
    expect(schedule(expiringSoonScheduleName('req-soon-1'))).toBeUndefined();
    expect(schedule(scheduleName('req-soon-1'))?.fireAt).toBe(
      new Date(Math.ceil(Date.parse(expiresAt) / 1000) * 1000).toISOString(),
    );
    expect(h.eks.snapshot('dev').map((e) => e.principalArn)).toEqual([P]);
  });

  test('no reminder for a grant that is already inside its lead time, nor for a permanent one', async () => {
    await h.send(devGrant('req-soon-short', 'PT30M'));
    await h.send({ ...devGrant('req-soon-forever', 'PT1H'), duration: undefined, principalArn: `${P}-2` });
    await h.drain();
    // The first record of each; a redelivery on a busy machine may add an `unchanged`.
    expect(h.auditsFor('req-soon-short')[0]?.outcome).toBe('granted');
    expect(h.auditsFor('req-soon-forever')[0]?.outcome).toBe('granted');
    expect(h.aws.schedulerEmulator.schedules().map((s) => s.name)).toEqual([scheduleName('req-soon-short')]);
  });

  test('a revoke deletes the reminder with the expiry schedule', async () => {
    await h.send(devGrant('req-soon-2', 'PT2H'));
    await h.drain();
    expect(schedule(expiringSoonScheduleName('req-soon-2'))).toBeDefined();
    await h.send({
      ...fixture('dev-view-revoke'),
      principalArn: P,
      grantId: 'req-soon-2',
      requestId: 'rv-2',
    });
    await h.drain();
    expect(h.auditsFor('rv-2')[0]?.outcome).toBe('revoked');
    expect(h.aws.schedulerEmulator.schedules()).toEqual([]);
  });

  test('an extension moves the reminder to the new end, with the new end in its event', async () => {
    await h.send(devGrant('req-soon-3', 'PT2H'));
    await h.drain();
    const extend: AccessRequest = {
      schemaVersion: 1,
      requestId: 'operator-extend-soon-3',
      action: 'extend',
      source: 'operator',
      clusterName: 'dev',
      principalArn: P,
      grantId: 'req-soon-3',
      extendBy: 'PT1H',
      requestedBy: OPERATOR,
      reason: 'still needed',
    };
    await h.send(extend);
    const [extended] = await auditsOnceThere(h, 'operator-extend-soon-3');
    expect(extended?.outcome).toBe('extended');
    const expiresAt = extended?.expiresAt as string;
    const reminder = schedule(expiringSoonScheduleName('req-soon-3'));
    expect(reminder?.fireAt).toBe(reminderAt(expiresAt));
    expect(JSON.parse(reminder?.target.Input ?? '{}')).toMatchObject({ grantId: 'req-soon-3', expiresAt });
    const stored = (await ledgerOf(h).load('dev', P)).grants.find((g) => g.grantId === 'req-soon-3');
    expect(stored?.expiresAt).toBe(expiresAt);
  });
});
