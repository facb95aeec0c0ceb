import { describe, expect, test } from 'vitest';
import { loadReconcilerConfig, loadWorkerConfig } from '../../functions/config.js';
import { ConfigError } from '../../functions/core/errors.js';
import {
  judgeSender,
  parseDeadLetterSenders,
  parseTrustedSenders,
  type SenderBinding,
  senderMatches,
} from '../../functions/core/senders.js';

const TICKET_INTAKE = 'AROATICKETINTAKE00000';
const SCHEDULER = 'AROAEXPIRYSCHEDULER00';
const RECONCILER = 'AROARECONCILER0000000';
const WORKER = 'AROAGRANTWORKER000000';
const STRANGER = 'AIDASTRANGER000000000';

const binding: SenderBinding = {
  trusted: { ticket: [TICKET_INTAKE], expiry: [SCHEDULER, RECONCILER], reconcile: [RECONCILER] },
  deadLetterSenders: [WORKER],
};
const judge = (senderId: string | undefined, source: unknown, verifiedSender?: string) =>
  judgeSender(binding, { senderId, source, verifiedSender });

describe('senderMatches', () => {
  test('matches a user id exactly and a role id with any session', () => {
    expect(senderMatches(TICKET_INTAKE, TICKET_INTAKE)).toBe(true);
    expect(senderMatches(`${TICKET_INTAKE}:eks-access-grants-prod-ticketIntake`, TICKET_INTAKE)).toBe(true);
  });

  test('does not match an id that merely starts with the trusted id', () => {
    expect(senderMatches(`${TICKET_INTAKE}X:session`, TICKET_INTAKE)).toBe(false);
    expect(senderMatches(TICKET_INTAKE.slice(0, -1), TICKET_INTAKE)).toBe(false);
  });
});

describe('judgeSender', () => {
  test('trusts a source from a role it is bound to, whatever the session name', () => {
    expect(judge(`${TICKET_INTAKE}:fn`, 'ticket')).toEqual({ trusted: true, sender: `${TICKET_INTAKE}:fn` });
    expect(judge(`${RECONCILER}:fn`, 'expiry')).toMatchObject({ trusted: true });
  });

  test('refuses a stranger with UNTRUSTED_SENDER naming the sender and the source claimed', () => {
    const v = judge(STRANGER, 'break-glass');
    expect(v.trusted).toBe(false);
    if (v.trusted) return;
    expect(v.reason.code).toBe('UNTRUSTED_SENDER');
    expect(v.reason.message).toContain(STRANGER);
    expect(v.reason.message).toContain('"break-glass"');
  });

  test('refuses a legitimate sender speaking for another source', () => {
    expect(judge(`${TICKET_INTAKE}:fn`, 'reconcile')).toMatchObject({
      trusted: false,
      reason: { code: 'UNTRUSTED_SENDER' },
    });
    expect(judge(`${SCHEDULER}:s`, 'ticket')).toMatchObject({ trusted: false });
  });

  test('refuses a source no sender is bound to on this queue', () => {
    expect(judge(`${TICKET_INTAKE}:fn`, 'operator')).toMatchObject({ trusted: false });
  });

  test('refuses a record without a SenderId', () => {
    expect(judge(undefined, 'ticket')).toMatchObject({
      trusted: false,
      reason: { code: 'UNTRUSTED_SENDER' },
    });
  });

  test('lets a known sender’s message without a valid source through to the validator; a stranger’s not', () => {
    expect(judge(`${TICKET_INTAKE}:fn`, undefined)).toMatchObject({ trusted: true });
    expect(judge(`${TICKET_INTAKE}:fn`, 'no-such-source')).toMatchObject({ trusted: true });
    expect(judge(STRANGER, undefined)).toMatchObject({ trusted: false });
    expect(judge(STRANGER, 42)).toMatchObject({ trusted: false });
  });

  test('judges a dead letter the worker wrote itself by its verifiedSender', () => {
    expect(judge(`${WORKER}:fn`, 'ticket', `${TICKET_INTAKE}:fn`)).toEqual({
      trusted: true,
      sender: `${TICKET_INTAKE}:fn`,
    });
    const forged = judge(`${WORKER}:fn`, 'ticket', STRANGER);
    expect(forged).toMatchObject({ trusted: false });
    if (!forged.trusted) expect(forged.reason.message).toContain(`redriven by ${WORKER}:fn`);
  });

  test("refuses the worker's own write without a verifiedSender", () => {
    expect(judge(`${WORKER}:fn`, 'ticket')).toMatchObject({
      trusted: false,
      reason: { code: 'UNTRUSTED_SENDER' },
    });
  });

  test('ignores a verifiedSender on a message anyone else wrote', () => {
    expect(judge(STRANGER, 'ticket', `${TICKET_INTAKE}:fn`)).toMatchObject({ trusted: false });
  });
});

describe('parsing TRUSTED_SENDERS and DEAD_LETTER_SENDERS', () => {
  test('reads the template form: source → role ids', () => {
    expect(
      parseTrustedSenders(`{"ticket":["${TICKET_INTAKE}"],"expiry":["${SCHEDULER}","${RECONCILER}"]}`),
    ).toEqual({
      ticket: [TICKET_INTAKE],
      expiry: [SCHEDULER, RECONCILER],
    });
    expect(parseDeadLetterSenders(`["${WORKER}"]`)).toEqual([WORKER]);
  });

  test.each([
    ['not JSON', '{ticket:', /not valid JSON/],
    ['a list', `["${TICKET_INTAKE}"]`, /JSON object of source/],
    ['an unknown source', `{"tickets":["${TICKET_INTAKE}"]}`, /unknown source "tickets"/],
    ['an empty list', '{"ticket":[]}', /non-empty JSON list/],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text CloudFormation would leave unresolved
    ['an unresolved Fn::Sub', '{"ticket":["${TicketIntakeRole.RoleId}"]}', /not an IAM unique id/],
    ['an ARN instead of a role id', '{"ticket":["arn:aws:iam::1:role/x"]}', /not an IAM unique id/],
    ['no source at all', '{}', /names no source/],
  ])('refuses %s with a ConfigError naming TRUSTED_SENDERS', (_, raw, message) => {
    expect(() => parseTrustedSenders(raw)).toThrow(ConfigError);
    expect(() => parseTrustedSenders(raw)).toThrow(message);
    expect(() => parseTrustedSenders(raw)).toThrow(/TRUSTED_SENDERS/);
  });

  test('the worker config requires both variables: a worker without them fails its cold start', () => {
    const env = {
      AWS_REGION: 'eu-west-1',
      REQUEST_QUEUE_URL: 'q',
      DLQ_URL: 'd',
      LEDGER_TABLE: 't',
      AUDIT_BUS_NAME: 'b',
      POLICY_PATH: 'p',
      SCHEDULER_GROUP: 'g',
      SCHEDULER_ROLE_ARN: 'r',
      REQUEST_QUEUE_ARN: 'a',
    };
    expect(() => loadWorkerConfig(env)).toThrow(/TRUSTED_SENDERS is required/);
    expect(() => loadWorkerConfig({ ...env, TRUSTED_SENDERS: `{"ticket":["${TICKET_INTAKE}"]}` })).toThrow(
      /DEAD_LETTER_SENDERS is required/,
    );
    const config = loadWorkerConfig({
      ...env,
      TRUSTED_SENDERS: `{"ticket":["${TICKET_INTAKE}"]}`,
      DEAD_LETTER_SENDERS: `["${WORKER}"]`,
    });
    expect(config.senders).toEqual({ trusted: { ticket: [TICKET_INTAKE] }, deadLetterSenders: [WORKER] });
  });

  test('the reconciler config requires RECONCILE_TASK_SENDERS: a reconcile-task consumer without it fails its cold start', () => {
    const env = {
      AWS_REGION: 'eu-west-1',
      REQUEST_QUEUE_URL: 'q',
      RECONCILE_QUEUE_URL: 'r',
      LEDGER_TABLE: 't',
      AUDIT_BUS_NAME: 'b',
      POLICY_PATH: 'p',
    };
    expect(() => loadReconcilerConfig(env)).toThrow(/RECONCILE_TASK_SENDERS is required/);
    expect(() => loadReconcilerConfig({ ...env, RECONCILE_TASK_SENDERS: '[]' })).toThrow(ConfigError);
    expect(loadReconcilerConfig({ ...env, RECONCILE_TASK_SENDERS: `["${RECONCILER}"]` }).taskSenders).toEqual(
      [RECONCILER],
    );
  });
});
