/**
 * The reconciler fan-out's own items in the ledger table (core/reconcile-task.ts): the current pass
 * (pk `RECONCILER`, sk `PASS`) and one cursor per cluster (pk `RECONCILE#<account>#<region>#<cluster>`,
 * sk `CURSOR`). Every write is one conditional put on `version`, as everywhere in the ledger (dynalite
 * has no transactions), so two consumers can never both move a cursor or both finish a pass.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { ReconcileCursor, ReconcilePass } from '../core/reconcile-task.js';
import { translateDynamoError } from './ledger.js';

const PASS_KEY = { pk: 'RECONCILER', sk: 'PASS' } as const;

export class ReconcileStateAdapter {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async getCursor(pk: string): Promise<ReconcileCursor | undefined> {
    return this.get<ReconcileCursor>(pk, 'CURSOR');
  }

  /** Writes `cursor` as version expectedVersion + 1; false when someone else wrote it meanwhile. */
  putCursor(cursor: ReconcileCursor, expectedVersion: number): Promise<boolean> {
    return this.put(cursor.pk, 'CURSOR', cursor, expectedVersion);
  }

  getPass(): Promise<ReconcilePass | undefined> {
    return this.get<ReconcilePass>(PASS_KEY.pk, PASS_KEY.sk);
  }

  putPass(pass: ReconcilePass, expectedVersion: number): Promise<boolean> {
    return this.put(PASS_KEY.pk, PASS_KEY.sk, pass, expectedVersion);
  }

  private async get<T extends { version: number }>(pk: string, sk: string): Promise<T | undefined> {
    try {
      const out = await this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pk }, sk: { S: sk } },
          ConsistentRead: true,
        }),
      );
      const doc = out.Item?.doc?.S;
      if (!doc) return undefined;
      return { ...(JSON.parse(doc) as T), version: Number(out.Item?.version?.N ?? 0) };
    } catch (err) {
      throw translateDynamoError(err);
    }
  }

  private async put<T extends { version: number }>(
    pk: string,
    sk: string,
    value: T,
    expectedVersion: number,
  ): Promise<boolean> {
    const version = expectedVersion + 1;
    const item: Record<string, AttributeValue> = {
      pk: { S: pk },
      sk: { S: sk },
      version: { N: String(version) },
      doc: { S: JSON.stringify({ ...value, version }) },
    };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
          ...(expectedVersion !== 0 && {
            ExpressionAttributeValues: { ':v': { N: String(expectedVersion) } },
          }),
        }),
      );
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw translateDynamoError(err);
    }
  }
}
