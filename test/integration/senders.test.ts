/**
 * Sender binding end to end (issue 9 item 1, contract C1/C3): messages are sent over HTTP to local SQS with
 * each actor's own access key, local SQS stamps the SenderId, the real worker checks it against the template's
 * TRUSTED_SENDERS (with local role ids) before any ledger or EKS call.
 */
import {
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, test } from 'vitest';
import { messageGroupId } from '../../functions/adapters/queue.js';
import { validatePolicy } from '../../functions/core/policy.js';
import type { AccessRequest } from '../../functions/core/types.js';
import { LOCAL_IDENTITIES, senderIdForKey } from '../../infra/local/identities.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { fixture } from '../helpers/fixtures.js';
import { type Harness, type HarnessOptions, startHarness } from '../helpers/harness.js';

const ONCALL = 'arn:aws:iam::111122223333:role/oncall';
const STRANGER_KEY = 'test';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(opts);
  return h;
}

/** Nothing left on the queue or its DLQ: the message was acknowledged, not retried or dead-lettered. */
async function expectAcknowledged(stack: Harness): Promise<void> {
  expect(await stack.queueDepth()).toBe(0);
  expect(await stack.dlqBodies()).toEqual([]);
}

describe('local SQS stamps SenderId from the caller’s access key', () => {
  test('each local identity is stamped `<role id>:<session>`, an unknown key a stranger’s user id', async () => {
    const stack = await harness();
    const sent: Array<[string, string]> = [
      ['ticketIntake', LOCAL_IDENTITIES.ticketIntake.senderId],
      ['operator', LOCAL_IDENTITIES.operator.senderId],
      ['stranger', senderIdForKey(STRANGER_KEY)],
    ];
    for (const [sender, _] of sent) {
      await stack.sqsOf(sender as 'ticketIntake' | 'operator' | 'stranger').send(
        new SendMessageCommand({
          QueueUrl: stack.aws.queueUrl,
          MessageBody: sender,
          MessageGroupId: sender,
          MessageDeduplicationId: sender,
        }),
      );
    }
    const got = await stack.aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.aws.queueUrl,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const stamped = Object.fromEntries((got.Messages ?? []).map((m) => [m.Body, m.Attributes?.SenderId]));
    expect(stamped).toEqual(Object.fromEntries(sent));
    expect(LOCAL_IDENTITIES.ticketIntake.senderId).toMatch(/^AROA[A-Z0-9]{17}:/);
    expect(senderIdForKey(STRANGER_KEY)).toMatch(/^AIDA[A-Z0-9]{17}$/);
  });
});

describe('the worker rejects what an untrusted sender put on its queue', () => {
  test('a stranger’s break-glass ClusterAdmin request: UNTRUSTED_SENDER, high, audited, no EKS call, acknowledged', async () => {
    const stack = await harness({ worker: 'breakGlassWorker' });
    stack.eks.resetCalls();
    await stack.sendAs('stranger', fixture('prod-break-glass'));
    await stack.drain();
    const [audit, ...more] = stack.auditsFor('req-prod-bg-0001');
    expect(more).toEqual([]);
    expect(audit).toMatchObject({
      outcome: 'rejected',
      severity: 'high',
      source: 'break-glass',
      principalArn: ONCALL,
      senderId: senderIdForKey(STRANGER_KEY),
      reason: { code: 'UNTRUSTED_SENDER' },
      changes: [],
    });
    expect(audit?.reason?.message).toContain(senderIdForKey(STRANGER_KEY));
    expect(audit?.reason?.message).toContain('"break-glass"');
    expect(stack.eks.calls()).toEqual([]);
    expect(stack.eks.snapshot('prod').find((e) => e.principalArn === ONCALL)).toBeUndefined();
    await expectAcknowledged(stack);
  });

  test('a legitimate sender speaking for a stronger source: the ticket intake’s break-glass is UNTRUSTED_SENDER', async () => {
    const stack = await harness({ worker: 'breakGlassWorker' });
    stack.eks.resetCalls();
    await stack.sendAs('ticketIntake', fixture('prod-break-glass'));
    await stack.drain();
    expect(stack.auditsFor('req-prod-bg-0001')).toMatchObject([
      {
        outcome: 'rejected',
        reason: { code: 'UNTRUSTED_SENDER' },
        senderId: LOCAL_IDENTITIES.ticketIntake.senderId,
      },
    ]);
    expect(stack.eks.calls()).toEqual([]);
    await expectAcknowledged(stack);
  });

  test('a forged ticket with an invented approver, sent by the role intake: UNTRUSTED_SENDER, no EKS call', async () => {
    const stack = await harness({ worker: 'grantWorker' });
    stack.eks.resetCalls();
    const forged = fixture('dev-edit-grant', {
      requestId: 'forged-ticket-1',
      approvedBy: ['boss@example.com'],
    });
    await stack.sendAs('roleLifecycleIntake', forged);
    await stack.sendAs('stranger', { ...forged, requestId: 'forged-ticket-2' });
    await stack.drain();
    for (const requestId of ['forged-ticket-1', 'forged-ticket-2']) {
      expect(stack.auditsFor(requestId)).toMatchObject([
        { outcome: 'rejected', severity: 'high', reason: { code: 'UNTRUSTED_SENDER' } },
      ]);
    }
    expect(stack.eks.calls()).toEqual([]);
    await expectAcknowledged(stack);
  });

  test('a verifiedSender attribute on a stranger’s message means nothing', async () => {
    const stack = await harness({ worker: 'grantWorker' });
    const request = fixture('dev-view-grant', { requestId: 'claims-verified-1' });
    await stack.sqsOf('stranger').send(
      new SendMessageCommand({
        QueueUrl: stack.aws.queueUrl,
        MessageBody: JSON.stringify(request),
        MessageGroupId: messageGroupId(request.clusterName, request.principalArn),
        MessageDeduplicationId: request.requestId,
        MessageAttributes: {
          verifiedSender: { DataType: 'String', StringValue: LOCAL_IDENTITIES.ticketIntake.senderId },
        },
      }),
    );
    await stack.drain();
    expect(stack.auditsFor('claims-verified-1')).toMatchObject([
      { outcome: 'rejected', reason: { code: 'UNTRUSTED_SENDER' } },
    ]);
  });

  test('the break-glass intake’s request grants, and its expiry from the Scheduler’s role ends it', async () => {
    const stack = await harness({ worker: 'breakGlassWorker' });
    await stack.send(fixture('prod-break-glass-short'));
    await stack.drain();
    const grant = fixture('prod-break-glass-short');
    expect(stack.auditsFor(grant.requestId)).toMatchObject([
      { outcome: 'granted', senderId: LOCAL_IDENTITIES.breakGlassIntake.senderId },
    ]);
    // The expiry arrives from the local Scheduler, which sends as the schedule's role (BreakGlassSchedulerRole).
    await waitFor(async () => {
      await stack.aws.schedulerEmulator.fireDue();
      await stack.drain();
      return stack.audits().some((a) => a.outcome === 'expired');
    });
    expect(stack.audits().find((a) => a.outcome === 'expired')).toMatchObject({
      source: 'expiry',
      senderId: LOCAL_IDENTITIES.breakGlassScheduler.senderId,
    });
  });

  test('the ticket intake’s ticket grants', async () => {
    const stack = await harness({ worker: 'grantWorker' });
    await stack.send(fixture('dev-view-grant'));
    await stack.drain();
    expect(stack.auditsFor('req-dev-view-0001')).toMatchObject([
      { outcome: 'granted', senderId: LOCAL_IDENTITIES.ticketIntake.senderId },
    ]);
  });
});

describe('redrive from the DLQ', () => {
  async function ghostHarness(): Promise<Harness> {
    const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as { clusters: Record<string, unknown> };
    // A cluster the policy knows but EKS does not (yet): the worker dead-letters its request at once.
    doc.clusters.ghost = doc.clusters.dev;
    return harness({ worker: 'grantWorker', policy: validatePolicy(doc) });
  }

  /** As `dlq redrive --all` does: a message move task from the DLQ back to its queue, as the operator. */
  async function redrive(stack: Harness): Promise<void> {
    const operator = stack.sqsOf('operator');
    await operator.send(
      new StartMessageMoveTaskCommand({ SourceArn: stack.aws.dlqArn, DestinationArn: stack.aws.queueArn }),
    );
    await waitFor(async () => {
      const tasks = await operator.send(new ListMessageMoveTasksCommand({ SourceArn: stack.aws.dlqArn }));
      return tasks.Results?.[0]?.Status === 'COMPLETED';
    });
  }

  test('a message the worker dead-lettered itself is applied when redriven', async () => {
    const stack = await ghostHarness();
    const request: AccessRequest = fixture('dev-view-grant', {
      clusterName: 'ghost',
      requestId: 'redrive-1',
    });
    await stack.send(request);
    await stack.drain();
    expect(stack.auditsFor('redrive-1')).toMatchObject([
      { outcome: 'failed', reason: { code: 'CLUSTER_NOT_FOUND' } },
    ]);

    stack.eks.addCluster('ghost');
    await redrive(stack);
    await stack.drain();
    const audits = stack.auditsFor('redrive-1');
    expect(audits.map((a) => a.outcome)).toEqual(['failed', 'granted']);
    // Redriven, the record carries the worker's own SenderId; its verifiedSender names the ticket intake.
    expect(audits[1]?.senderId).toBe(LOCAL_IDENTITIES.grantWorker.senderId);
    expect(stack.eks.snapshot('ghost').map((e) => e.principalArn)).toEqual([request.principalArn]);
    await expectAcknowledged(stack);
  });

  test('what a stranger wrote straight to the DLQ is rejected when redriven, whatever it claims', async () => {
    const stack = await ghostHarness();
    const forged = fixture('dev-edit-grant', { requestId: 'planted-1' });
    await stack.sqsOf('stranger').send(
      new SendMessageCommand({
        QueueUrl: stack.aws.dlqUrl,
        MessageBody: JSON.stringify(forged),
        MessageGroupId: messageGroupId(forged.clusterName, forged.principalArn),
        MessageDeduplicationId: forged.requestId,
        MessageAttributes: {
          verifiedSender: { DataType: 'String', StringValue: LOCAL_IDENTITIES.ticketIntake.senderId },
        },
      }),
    );
    stack.eks.resetCalls();
    await redrive(stack);
    await stack.drain();
    expect(stack.auditsFor('planted-1')).toMatchObject([
      {
        outcome: 'rejected',
        severity: 'high',
        reason: { code: 'UNTRUSTED_SENDER' },
        senderId: senderIdForKey(STRANGER_KEY),
      },
    ]);
    expect(stack.eks.calls()).toEqual([]);
    await expectAcknowledged(stack);
  });
});

/** Polls until `done` holds; bounded by attempts, not by the clock of a busy machine. */
async function waitFor(done: () => Promise<boolean>, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not reached');
}
