/**
 * SQS FIFO: enqueue requests, hand failed ones to the dead-letter queue, and stretch
 * the visibility timeout of messages that will be retried.
 */
import { createHash } from 'node:crypto';
import { ChangeMessageVisibilityCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TransientError } from '../core/errors.js';
import { VERIFIED_SENDER_ATTRIBUTE } from '../core/senders.js';
import type { AccessRequest } from '../core/types.js';

/**
 * FIFO group ids are at most 128 chars and ARNs can be 2048: hash cluster+principal so
 * every request for one principal on one cluster is serialized, and nothing else is.
 * `clusterKey` is the physical cluster's key (core/cluster-target.ts): for a cluster in the
 * deployment's own account and region its plain name, as before fleets, so in-flight groups keep
 * their ids across the upgrade; elsewhere it carries the account and region.
 */
export function messageGroupId(clusterKey: string, principalArn: string): string {
  return createHash('sha256').update(`${clusterKey}\n${principalArn}`).digest('hex');
}

/** A request's alias → its cluster key (ClusterDirectory.keyOf). */
export type ClusterKeyOf = (alias: string) => string;

export class QueueAdapter {
  /**
   * `keyOf` defaults to the alias itself, which is the key of a cluster in the deployment's own
   * account and region named as its alias; producers that know the policy pass the directory's.
   */
  constructor(
    private readonly client: SQSClient,
    private readonly keyOf: ClusterKeyOf = (alias) => alias,
  ) {}

  /** Returns the MessageId SQS gave the message (the operator CLI waits for the records of exactly it). */
  async enqueue(queueUrl: string, request: AccessRequest): Promise<string | undefined> {
    const out = await this.call(() =>
      this.client.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(request),
          MessageGroupId: messageGroupId(this.keyOf(request.clusterName), request.principalArn),
          // The request id is the idempotency key; SQS drops repeats within 5 minutes.
          MessageDeduplicationId: request.requestId,
        }),
      ),
    );
    return out.MessageId;
  }

  /**
   * Moves a message to the DLQ now (permanent failures); the caller then acknowledges it. Sent as this
   * worker's own role, so SQS stamps our SenderId; `verifiedSender` carries the sender we verified, which
   * the worker believes again after a redrive only because we wrote it (functions/core/senders.ts).
   */
  async sendToDlq(
    dlqUrl: string,
    body: string,
    groupId: string,
    dedupId: string,
    error: { code: string; message: string },
    verifiedSender: string,
  ): Promise<void> {
    await this.call(() =>
      this.client.send(
        new SendMessageCommand({
          QueueUrl: dlqUrl,
          MessageBody: body,
          MessageGroupId: groupId,
          MessageDeduplicationId: dedupId,
          MessageAttributes: {
            errorCode: { DataType: 'String', StringValue: error.code },
            errorMessage: { DataType: 'String', StringValue: error.message.slice(0, 1024) },
            [VERIFIED_SENDER_ATTRIBUTE]: { DataType: 'String', StringValue: verifiedSender },
          },
        }),
      ),
    );
  }

  async setVisibility(queueUrl: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.call(() =>
      this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: seconds,
        }),
      ),
    );
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new TransientError(
        'QUEUE_UNAVAILABLE',
        `SQS: ${(err as Error).name}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
}
