/**
 * Replay protection for signed webhooks: the first sight of a request id claims it with one conditional put
 * in the ledger table; a second sight within the window finds the claim and is refused. dynalite has no TTL
 * API and DynamoDB's TTL deletes late, so expiry is part of the condition rather than left to TTL (enable
 * TTL on `expiresAtEpoch` in AWS only to keep the table small).
 *
 * Item: pk `REPLAY#<requestId>`, sk `REPLAY`, expiresAtEpoch (N, unix seconds), claimedAt.
 */
import { DeleteItemCommand, type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { translateDynamoError } from './ledger.js';

/**
 * A signed request stays valid while its timestamp is within 5 minutes of our clock either way, so it can
 * be replayed for up to 10 minutes after it was first seen: claims must last at least that long.
 */
export const MIN_REPLAY_WINDOW_SECONDS = 600;

export class ReplayGuardAdapter {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly windowSeconds = MIN_REPLAY_WINDOW_SECONDS,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** True when this is the first sight of `requestId` within the window; false for a replay. */
  async claim(requestId: string): Promise<boolean> {
    const now = this.now();
    const nowEpoch = Math.floor(now.getTime() / 1000);
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            pk: { S: keyOf(requestId) },
            sk: { S: 'REPLAY' },
            expiresAtEpoch: { N: String(nowEpoch + this.windowSeconds) },
            claimedAt: { S: now.toISOString() },
          },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAtEpoch < :now',
          ExpressionAttributeValues: { ':now': { N: String(nowEpoch) } },
        }),
      );
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw translateDynamoError(err);
    }
  }

  /** Gives a claim back when the request could not be enqueued, so the sender's retry is not called a replay. */
  async release(requestId: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: keyOf(requestId) }, sk: { S: 'REPLAY' } },
        }),
      );
    } catch (err) {
      throw translateDynamoError(err);
    }
  }
}

function keyOf(requestId: string): string {
  return `REPLAY#${requestId}`;
}
