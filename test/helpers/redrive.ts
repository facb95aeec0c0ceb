/**
 * Redrive as the operator CLI's `dlq redrive --all` does it: an SQS message move task from the DLQ back
 * to its queue, started with the operator's credentials, then waited for.
 */
import { ListMessageMoveTasksCommand, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import type { Harness } from './harness.js';

export async function redriveAll(stack: Harness): Promise<void> {
  const operator = stack.sqsOf('operator');
  await operator.send(
    new StartMessageMoveTaskCommand({ SourceArn: stack.aws.dlqArn, DestinationArn: stack.aws.queueArn }),
  );
  // Bounded by attempts, not by the clock of a busy machine.
  for (let i = 0; i < 200; i++) {
    const tasks = await operator.send(new ListMessageMoveTasksCommand({ SourceArn: stack.aws.dlqArn }));
    if (tasks.Results?.[0]?.Status === 'COMPLETED') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the message move task did not complete');
}
