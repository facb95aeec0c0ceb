/**
 * The grants ledger in DynamoDB. One table, no transactions and no TTL API (neither
 * exists in dynalite, the local emulator): every write is a single conditional put,
 * which also makes replays idempotent.
 *
 * Items (pk = `P#<clusterKey>#<principalArn>`; the cluster key of core/cluster-target.ts: the plain EKS
 * name for a cluster in the deployment's own account and region, as the single-account version wrote
 * it, else `<account>:<region>:<name>`; every `clusterName` parameter and field below is that key):
 *   sk `BASELINE`      the access the principal had before our first change (written once)
 *   sk `G#<grantId>`   one grant; `version` guards concurrent updates
 * Sparse index `active-by-expiry` holds only active, time-boxed grants, for the reconciler.
 * Index `principals-by-cluster` holds only BASELINE items: the principals we manage.
 * One more item, pk `RECONCILER` sk `LAST_RUN`: the reconciler's last report, for `status`.
 * The reconciler's fan-out keeps its pass (pk `RECONCILER` sk `PASS`) and one cursor per cluster
 * (pk `RECONCILE#<account>#<region>#<cluster>` sk `CURSOR`) here too: adapters/reconcile-state.ts.
 */
import {
  type AttributeValue,
  type CreateTableCommandInput,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { PermanentError, TransientError } from '../core/errors.js';
import type { Baseline, Grant, PrincipalRecord } from '../core/ledger.js';

export const EXPIRY_INDEX = 'active-by-expiry';
export const CLUSTER_INDEX = 'principals-by-cluster';
const ACTIVE = 'ACTIVE';

export function ledgerTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'expiryPk', AttributeType: 'S' },
      { AttributeName: 'expirySk', AttributeType: 'S' },
      { AttributeName: 'managedCluster', AttributeType: 'S' },
      { AttributeName: 'managedPrincipal', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: EXPIRY_INDEX,
        KeySchema: [
          { AttributeName: 'expiryPk', KeyType: 'HASH' },
          { AttributeName: 'expirySk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: CLUSTER_INDEX,
        KeySchema: [
          { AttributeName: 'managedCluster', KeyType: 'HASH' },
          { AttributeName: 'managedPrincipal', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

const RECONCILER_PK = 'RECONCILER';

/** What the reconciler records about its last run. */
export interface ReconcileRun {
  /** When the run started (ISO-8601). */
  at: string;
  finishedAt: string;
  report: Record<string, number | boolean>;
}

export interface ExpiredGrantRef {
  clusterName: string;
  principalArn: string;
  grantId: string;
  expiresAt: string;
  /** Break-glass expiries go back to the break-glass queue. */
  source: Grant['source'];
}

export class LedgerAdapter {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async load(clusterName: string, principalArn: string): Promise<PrincipalRecord> {
    const record: PrincipalRecord = { clusterName, principalArn, grants: [] };
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: pkOf(clusterName, principalArn) } },
      ConsistentRead: true,
    });
    for (const item of items) {
      const doc = JSON.parse(item.doc?.S ?? '{}');
      if (item.sk?.S === 'BASELINE') record.baseline = doc as Baseline;
      else if (item.sk?.S?.startsWith('G#')) record.grants.push(doc as Grant);
    }
    record.grants.sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.grantId.localeCompare(b.grantId),
    );
    return record;
  }

  /** Writes the baseline once; a second capture keeps the first. Returns what is stored. */
  async captureBaseline(clusterName: string, principalArn: string, baseline: Baseline): Promise<Baseline> {
    const written = await this.conditionalPut(
      baselineItem(clusterName, principalArn, baseline),
      'attribute_not_exists(pk)',
    );
    if (written) return baseline;
    const stored = (await this.load(clusterName, principalArn)).baseline;
    if (!stored)
      throw new TransientError('LEDGER_INCONSISTENT', 'baseline write conflicted but none was found');
    return stored;
  }

  /**
   * Replaces the baseline, only for a role deleted and recreated with the same ARN: the dead role's baseline
   * is void. Conditional on `expected` still being what is stored (or nothing being stored), so two workers
   * cannot interleave a capture and a replace; a lost race is transient and the request re-reads.
   */
  async replaceBaseline(
    clusterName: string,
    principalArn: string,
    baseline: Baseline,
    expected: Baseline | undefined,
  ): Promise<void> {
    const written = await this.conditionalPut(
      baselineItem(clusterName, principalArn, baseline),
      expected === undefined ? 'attribute_not_exists(pk)' : 'doc = :expected',
      expected === undefined ? undefined : { ':expected': { S: JSON.stringify(expected) } },
    );
    if (!written) {
      throw new TransientError(
        'LEDGER_CONFLICT',
        `the baseline of ${principalArn} on ${clusterName} changed concurrently; will re-read and retry`,
      );
    }
  }

  /** Inserts a new grant; `false` when a grant with that id already exists. */
  async insertGrant(clusterName: string, principalArn: string, grant: Grant): Promise<boolean> {
    return this.conditionalPut(grantItem(clusterName, principalArn, grant), 'attribute_not_exists(sk)');
  }

  /** Replaces a grant if nobody changed it since `grant.version - 1`. */
  async updateGrant(
    clusterName: string,
    principalArn: string,
    grant: Grant,
    expectedVersion: number,
  ): Promise<void> {
    const ok = await this.conditionalPut(grantItem(clusterName, principalArn, grant), 'version = :v', {
      ':v': { N: String(expectedVersion) },
    });
    if (!ok) {
      throw new TransientError(
        'LEDGER_CONFLICT',
        `grant ${grant.grantId} changed concurrently; will re-read and retry`,
      );
    }
  }

  /** Active grants whose expiry is at or before `before`, oldest first. */
  async listExpiredActive(before: Date, limit = 1000): Promise<ExpiredGrantRef[]> {
    const items = await this.queryAll({
      IndexName: EXPIRY_INDEX,
      KeyConditionExpression: 'expiryPk = :a AND expirySk <= :t',
      ExpressionAttributeValues: { ':a': { S: ACTIVE }, ':t': { S: `${before.toISOString()}\uffff` } },
    });
    const out: ExpiredGrantRef[] = [];
    for (const item of items) {
      const g = JSON.parse(item.doc?.S ?? '{}') as Grant;
      if (!g.expiresAt || Date.parse(g.expiresAt) > before.getTime()) continue;
      out.push({
        clusterName: item.clusterName?.S ?? '',
        principalArn: item.principalArn?.S ?? '',
        grantId: g.grantId,
        expiresAt: g.expiresAt,
        source: g.source,
      });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Every principal this system has touched on a cluster. */
  async listPrincipals(clusterName: string): Promise<string[]> {
    const items = await this.queryAll({
      IndexName: CLUSTER_INDEX,
      KeyConditionExpression: 'managedCluster = :c',
      ExpressionAttributeValues: { ':c': { S: clusterName } },
    });
    return items.flatMap((item) => (item.managedPrincipal?.S ? [item.managedPrincipal.S] : []));
  }

  /**
   * One page of the principals managed on a cluster, in ARN order, after `startAfter`: the reconcile
   * task's cursor walks a cluster of any size a page at a time (the key condition is on the index's
   * sort key, so a page costs its own size, not the pages before it).
   */
  async listPrincipalsPage(
    clusterName: string,
    startAfter: string | undefined,
    limit: number,
  ): Promise<string[]> {
    const out: string[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    // A Limit counts items read, so one page can come back short with more to read: keep going.
    do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: CLUSTER_INDEX,
            KeyConditionExpression:
              startAfter === undefined
                ? 'managedCluster = :c'
                : 'managedCluster = :c AND managedPrincipal > :a',
            ExpressionAttributeValues: {
              ':c': { S: clusterName },
              ...(startAfter !== undefined && { ':a': { S: startAfter } }),
            },
            Limit: limit - out.length,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) if (item.managedPrincipal?.S) out.push(item.managedPrincipal.S);
      startKey = page.LastEvaluatedKey;
    } while (startKey && out.length < limit);
    return out;
  }

  /**
   * Every principal record (optionally of one cluster), for operator listings. A Scan: the ledger holds
   * one item per grant and principal, and an operator asking across clusters has no better key.
   */
  async scanRecords(clusterName?: string): Promise<PrincipalRecord[]> {
    const byPk = new Map<string, PrincipalRecord>();
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new ScanCommand({
            TableName: this.tableName,
            FilterExpression: 'begins_with(pk, :p)',
            ExpressionAttributeValues: {
              ':p': { S: clusterName === undefined ? 'P#' : `P#${clusterName}#` },
            },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const pk = item.pk?.S ?? '';
        // Cluster names cannot contain `#` (EKS: [A-Za-z0-9_-]), so the first `#` after `P#` ends it.
        const rest = pk.slice(2);
        const cut = rest.indexOf('#');
        if (cut < 1) continue;
        let record = byPk.get(pk);
        if (!record) {
          record = { clusterName: rest.slice(0, cut), principalArn: rest.slice(cut + 1), grants: [] };
          byPk.set(pk, record);
        }
        const doc = JSON.parse(item.doc?.S ?? '{}');
        if (item.sk?.S === 'BASELINE') record.baseline = doc as Baseline;
        else if (item.sk?.S?.startsWith('G#')) record.grants.push(doc as Grant);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const records = [...byPk.values()];
    for (const r of records) {
      r.grants.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.grantId.localeCompare(b.grantId));
    }
    return records.sort(
      (a, b) => a.clusterName.localeCompare(b.clusterName) || a.principalArn.localeCompare(b.principalArn),
    );
  }

  /** The reconciler's last run, overwritten each time; read by the operator CLI's `status`. */
  async recordReconcileRun(run: ReconcileRun): Promise<void> {
    await this.call(() =>
      this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { pk: { S: RECONCILER_PK }, sk: { S: 'LAST_RUN' }, doc: { S: JSON.stringify(run) } },
        }),
      ),
    );
  }

  async lastReconcileRun(): Promise<ReconcileRun | undefined> {
    const out = await this.call(() =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: RECONCILER_PK }, sk: { S: 'LAST_RUN' } },
          ConsistentRead: true,
        }),
      ),
    );
    return out.Item?.doc?.S ? (JSON.parse(out.Item.doc.S) as ReconcileRun) : undefined;
  }

  /** Every item of a query, page after page. */
  private async queryAll(
    input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
  ): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({ ...input, TableName: this.tableName, ExclusiveStartKey: startKey }),
        ),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  private async conditionalPut(
    item: Record<string, AttributeValue>,
    condition: string,
    values?: Record<string, AttributeValue>,
  ): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: condition,
          ...(values && { ExpressionAttributeValues: values }),
        }),
      );
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw translateDynamoError(err);
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw translateDynamoError(err);
    }
  }
}

function pkOf(clusterName: string, principalArn: string): string {
  return `P#${clusterName}#${principalArn}`;
}

/** The stored form of a baseline (exported for tests that seed thousands of principals in batches). */
export function baselineItem(
  clusterName: string,
  principalArn: string,
  baseline: Baseline,
): Record<string, AttributeValue> {
  return {
    pk: { S: pkOf(clusterName, principalArn) },
    sk: { S: 'BASELINE' },
    managedCluster: { S: clusterName },
    managedPrincipal: { S: principalArn },
    doc: { S: JSON.stringify(baseline) },
  };
}

/** The stored form of a grant (exported for tests that seed thousands of principals in batches). */
export function grantItem(
  clusterName: string,
  principalArn: string,
  grant: Grant,
): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    pk: { S: pkOf(clusterName, principalArn) },
    sk: { S: `G#${grant.grantId}` },
    status: { S: grant.status },
    version: { N: String(grant.version) },
    doc: { S: JSON.stringify(grant) },
  };
  // Sparse index: only active, time-boxed grants are visible to the expiry sweep.
  if (grant.status === 'active' && grant.expiresAt) {
    item.expiryPk = { S: ACTIVE };
    item.expirySk = { S: `${grant.expiresAt}#${clusterName}#${principalArn}#${grant.grantId}` };
    item.clusterName = { S: clusterName };
    item.principalArn = { S: principalArn };
  }
  return item;
}

export function translateDynamoError(err: unknown): Error {
  const e = err as { name?: string; message?: string; $fault?: string };
  const message = `DynamoDB: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
  if (
    e?.name === 'ResourceNotFoundException' ||
    e?.name === 'ValidationException' ||
    e?.name === 'AccessDeniedException'
  ) {
    return new PermanentError('LEDGER_UNUSABLE', message, { cause: err });
  }
  return new TransientError('LEDGER_UNAVAILABLE', message, { cause: err });
}
