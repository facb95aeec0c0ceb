/**
 * `status`: queue depths (DLQs included), expiries due in the next 24 hours, and the reconciler's last run.
 *
 * - visible / inFlight: GetQueueAttributes ApproximateNumberOfMessages / ...NotVisible.
 * - oldestAgeSeconds: SQS has no API attribute for it; CloudWatch has the metric
 *   ApproximateAgeOfOldestMessage (AWS/SQS, per QueueName, reported every minute). Deployed it is the
 *   metric's maximum over the last 5 minutes; local mode has no CloudWatch, so it is null there.
 * - expiriesDue24h: active, time-boxed grants ending within 24 hours (overdue ones included), from the
 *   ledger's active-by-expiry index.
 * - lastReconcile: the reconciler records each run in the ledger (pk RECONCILER, sk LAST_RUN): one read,
 *   the same locally and deployed, and independent of log retention. null until it first ran.
 * - targets (fleet): each cluster outside the deployment's account and region, reached through a target
 *   role. `unavailable` when its latest audit record of the last 24 hours is a TARGET_ROLE_UNAVAILABLE
 *   failure (the role is missing or does not trust this stage: deploy infra/target-account.yml, then
 *   redrive the DLQ), `ok` when a later record shows the worker got through, `unknown` without records.
 */
import { GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { ReconcileRun } from '../../../functions/adapters/ledger.js';
import { TARGET_ROLE_UNAVAILABLE } from '../../../functions/adapters/target-clients.js';
import { clusterArn } from '../../../functions/core/cluster-target.js';
import { readAudit } from '../audit-source.js';
import { clustersOf } from '../clusters.js';
import type { Command, Context } from '../context.js';
import { dash, table } from '../output.js';
import type { QueueRef } from '../target.js';

export interface QueueStatus {
  name: string;
  visible: number;
  inFlight: number;
  oldestAgeSeconds: number | null;
}

export interface TargetStatus {
  alias: string;
  name: string;
  account: string;
  region: string;
  status: 'ok' | 'unavailable' | 'unknown';
  /** The latest TARGET_ROLE_UNAVAILABLE failure of the last 24 hours, if any. */
  lastFailure: { at: string; requestId: string; message: string } | null;
}

export interface Status {
  queues: QueueStatus[];
  expiriesDue24h: number;
  lastReconcile: ReconcileRun | null;
  targets: TargetStatus[];
}

export const status: Command = {
  spec: {
    name: 'status',
    summary: 'queue depths (DLQs included), expiries due in 24 h, the last reconcile run',
    flags: {},
  },
  async run(ctx) {
    const now = ctx.now();
    const ledger = ctx.clients.ledger();
    const [queues, due, last, targets] = await Promise.all([
      Promise.all(ctx.target.queues.map((q) => queueStatus(ctx, q, now))),
      ledger.listExpiredActive(new Date(now.getTime() + 86_400_000), Number.MAX_SAFE_INTEGER),
      ledger.lastReconcileRun(),
      targetStatus(ctx, now),
    ]);
    const result: Status = { queues, expiriesDue24h: due.length, lastReconcile: last ?? null, targets };
    const text = [
      table(
        ['queue', 'visible', 'in flight', 'oldest (s)'],
        queues.map((q) => [
          q.name,
          String(q.visible),
          String(q.inFlight),
          q.oldestAgeSeconds === null ? '-' : String(q.oldestAgeSeconds),
        ]),
      ),
      '',
      `expiries due in 24 h: ${result.expiriesDue24h}`,
      `last reconcile: ${
        last
          ? `${last.at} (${Object.entries(last.report)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')})`
          : dash(undefined)
      }`,
      ...(targets.length === 0
        ? []
        : [
            '',
            table(
              ['target cluster', 'account/region', 'target role', 'last failure'],
              targets.map((t) => [
                t.alias,
                `${t.account}/${t.region}`,
                t.status,
                t.lastFailure
                  ? `${t.lastFailure.at} ${t.lastFailure.requestId}: ${t.lastFailure.message.slice(0, 80)}`
                  : '-',
              ]),
            ),
          ]),
    ].join('\n');
    return { json: result, text, exit: 0 };
  },
};

async function targetStatus(ctx: Context, now: Date): Promise<TargetStatus[]> {
  const clusters = await clustersOf(ctx);
  const remote = clusters?.targets().filter((t) => !clusters.isHome(t)) ?? [];
  if (remote.length === 0) return [];
  const events = await readAudit(
    ctx.target,
    () => ctx.clients.logs(),
    { since: now.getTime() - 86_400_000 },
    now,
  );
  return remote.map((t) => {
    const arn = clusterArn(t);
    const records = events
      .map((e) => e.record)
      .filter((r) => r.clusterArn === arn || (r.clusterArn === undefined && r.clusterName === t.alias))
      .sort((a, b) => a.at.localeCompare(b.at));
    const failures = records.filter(
      (r) => r.outcome === 'failed' && r.reason?.code === TARGET_ROLE_UNAVAILABLE,
    );
    const failure = failures.at(-1);
    // Any later record that did not fail on the role shows the worker got in.
    const latest = records.at(-1);
    const status: TargetStatus['status'] =
      latest === undefined
        ? 'unknown'
        : latest.reason?.code === TARGET_ROLE_UNAVAILABLE
          ? 'unavailable'
          : 'ok';
    return {
      alias: t.alias,
      name: t.name,
      account: t.account,
      region: t.region,
      status,
      lastFailure: failure
        ? { at: failure.at, requestId: failure.requestId, message: failure.reason?.message ?? '' }
        : null,
    };
  });
}

async function queueStatus(ctx: Context, q: QueueRef, now: Date): Promise<QueueStatus> {
  const out = await ctx.clients.sqs().send(
    new GetQueueAttributesCommand({
      QueueUrl: q.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    name: q.name,
    visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    oldestAgeSeconds: ctx.target.mode === 'deployed' ? await oldestAge(ctx, q.name, now) : null,
  };
}

async function oldestAge(ctx: Context, queueName: string, now: Date): Promise<number | null> {
  const out = await ctx.clients.cloudwatch().send(
    new GetMetricStatisticsCommand({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: queueName }],
      StartTime: new Date(now.getTime() - 5 * 60_000),
      EndTime: now,
      Period: 60,
      Statistics: ['Maximum'],
    }),
  );
  const points = (out.Datapoints ?? []).filter((d) => d.Timestamp && d.Maximum !== undefined);
  if (points.length === 0) return null;
  points.sort((a, b) => (b.Timestamp as Date).getTime() - (a.Timestamp as Date).getTime());
  return points[0]?.Maximum ?? null;
}
