/**
 * The reconcile queue (SQS FIFO): tasks of the reconciler's fan-out (core/reconcile-task.ts). Each task
 * goes to the message group of its cluster's account-region, so SQS delivers one account-region's tasks
 * to one consumer at a time and that consumer's in-process budget is the account-region's budget.
 */
import { createHash } from 'node:crypto';
import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { ClusterTarget } from '../core/cluster-target.js';
import { TransientError } from '../core/errors.js';
import { type ReconcileTask, reconcileGroupId } from '../core/reconcile-task.js';

/** SendMessageBatch takes at most 10 entries. */
const BATCH = 10;

export class ReconcileQueueAdapter {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(entries: { task: ReconcileTask; target: ClusterTarget }[]): Promise<void> {
    for (let i = 0; i < entries.length; i += BATCH) {
      const chunk = entries.slice(i, i + BATCH);
      let out: SendMessageBatchCommandOutput;
      try {
        out = await this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: chunk.map(({ task, target }, j) => ({
              Id: String(j),
              MessageBody: JSON.stringify(task),
              MessageGroupId: reconcileGroupId(target),
              // A task is identified by its pass, cluster and slice: a retried send within the 5-minute
              // window is dropped by SQS instead of starting a second chain on the cluster.
              MessageDeduplicationId: createHash('sha256')
                .update(`${task.passId}\n${task.cluster}\n${task.slice}\n${task.startAfter ?? ''}`)
                .digest('hex'),
            })),
          }),
        );
      } catch (err) {
        throw new TransientError('RECONCILE_QUEUE_UNAVAILABLE', `SQS: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (out.Failed && out.Failed.length > 0) {
        throw new TransientError(
          'RECONCILE_QUEUE_UNAVAILABLE',
          `SQS refused ${out.Failed.length} reconcile task(s): ${out.Failed.map((f) => f.Message).join('; ')}`,
        );
      }
    }
  }
}
