/**
 * What the role-lifecycle intake remembers per IAM role (core/role-mapping.ts RoleRecord), in the ledger
 * table: TagRole, UntagRole and DeleteRole events name a role but not its path, and UntagRole not even the
 * removed tag's value, so the ARN and tags seen earlier must come from somewhere. One item per role;
 * `version` guards concurrent invocations for the same role (read, plan, conditional put, retry).
 *
 * Item: pk `ROLE#<account>#<role name, lower case>` (IAM role names are unique regardless of case),
 * sk `ROLE`, version (N), doc (S, the RoleRecord as JSON).
 */
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { RoleRecord } from '../core/role-mapping.js';
import { translateDynamoError } from './ledger.js';

export interface StoredRole {
  record: RoleRecord;
  version: number;
}

export class RoleDirectoryAdapter {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async load(account: string, roleName: string): Promise<StoredRole | undefined> {
    try {
      const out = await this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: keyOf(account, roleName) }, sk: { S: 'ROLE' } },
          ConsistentRead: true,
        }),
      );
      if (!out.Item?.doc?.S) return undefined;
      return {
        record: JSON.parse(out.Item.doc.S) as RoleRecord,
        version: Number(out.Item.version?.N ?? '0'),
      };
    } catch (err) {
      throw translateDynamoError(err);
    }
  }

  /** Writes the record if nobody changed it since `expectedVersion` (undefined: if it does not exist yet). */
  async save(record: RoleRecord, expectedVersion: number | undefined): Promise<boolean> {
    const version = (expectedVersion ?? 0) + 1;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            pk: { S: keyOf(record.account, record.roleName) },
            sk: { S: 'ROLE' },
            version: { N: String(version) },
            doc: { S: JSON.stringify(record) },
          },
          ...(expectedVersion === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'version = :v',
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

function keyOf(account: string, roleName: string): string {
  return `ROLE#${account}#${roleName.toLowerCase()}`;
}
