/**
 * A Lambda invocation lost after its handler finished (a timeout at the end of the batch, a crash before the
 * event source mapping deleted the messages): SQS redelivers every message of the batch with the same
 * message id. Those already applied and reported must not publish a second terminal record.
 */
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, test } from 'vitest';
import { createSqsRunner } from '../../infra/local/lambda-runner.js';
import { fixture } from '../helpers/fixtures.js';
import { EKS_WRITES, type Harness, startHarness } from '../helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** One invocation whose handler finishes the batch, then is lost: nothing is deleted. Returns the batch. */
async function lostInvocation(stack: Harness): Promise<SQSEvent['Records']> {
  const records: SQSEvent['Records'] = [];
  const runner = createSqsRunner({
    sqs: stack.aws.sqsAs(stack.workerActor),
    queueUrl: stack.aws.queueUrl,
    queueArn: stack.aws.queueArn,
    handler: async (event, context) => {
      records.push(...event.Records);
      await stack.handler(event, context);
      throw new Error('the invocation was lost after its handler finished');
    },
    batchSize: 10,
    onError: () => {},
  });
  const { received } = await runner.pollOnce();
  expect(received).toBeGreaterThan(0);
  return records;
}

describe('a redelivery of messages already applied and reported', () => {
  test('publishes no second record and makes no EKS call; the messages are acknowledged', async () => {
    const stack = await startHarness({ worker: 'grantWorker' });
    h = stack;
    const grant = fixture('dev-view-grant');
    const revoke = fixture('dev-view-revoke');
    await stack.send(grant);
    await stack.send(revoke);
    const batch = await lostInvocation(stack);
    expect(batch).toHaveLength(2);
    expect(stack.auditsFor(grant.requestId).map((a) => a.outcome)).toEqual(['granted']);
    expect(stack.auditsFor(revoke.requestId).map((a) => a.outcome)).toEqual(['revoked']);
    // Visible again now rather than after the queue's visibility timeout: SQS redelivers them, same ids.
    const sqs = stack.aws.sqsAs(stack.workerActor);
    for (const r of batch) {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: stack.aws.queueUrl,
          ReceiptHandle: r.receiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    }
    stack.eks.resetCalls();
    const summary = await stack.drain();
    expect(summary.received).toBe(2);
    expect(stack.auditsFor(grant.requestId).map((a) => a.outcome)).toEqual(['granted']);
    expect(stack.auditsFor(revoke.requestId).map((a) => a.outcome)).toEqual(['revoked']);
    expect(stack.eks.calls().filter((c) => EKS_WRITES.has(c.operation))).toEqual([]);
    expect(stack.eks.snapshot('dev')).toEqual([]);
    expect(await stack.queueDepth()).toBe(0);
    expect(await stack.dlqBodies()).toEqual([]);
  });
});
