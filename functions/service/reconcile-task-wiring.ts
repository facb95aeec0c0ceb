/**
 * Clients → adapters → the reconcile-task consumer, built once per cold start: per account-region one
 * EKS client with its budget (adapters/eks-budget.ts, core/token-bucket.ts).
 */
import { EKSClient } from '@aws-sdk/client-eks';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { AuditBusAdapter } from '../adapters/audit-bus.js';
import { EksAdapter } from '../adapters/eks.js';
import { withCallBudget } from '../adapters/eks-budget.js';
import { targetClientsFor } from '../adapters/target-clients.js';
import type { ReconcilerConfig } from '../config.js';
import type { ClusterTarget } from '../core/cluster-target.js';
import { parseReconcileTask, reconcileGroupId } from '../core/reconcile-task.js';
import { senderMatches } from '../core/senders.js';
import { eksCallBudget } from '../core/token-bucket.js';
import type { ServiceLogger, ServiceMetrics } from './grant-service.js';
import { type ReconcileTaskDeps, runReconcileTask, type TaskOutcome } from './reconcile-task.js';
import { common, defaultClients, type ReconcilerClients } from './reconciler-wiring.js';

export interface TaskConsumerOptions {
  metrics?: ServiceMetrics;
  /** Epoch ms; the reconcile tasks' clock (drift `now`, deadlines). */
  clock?: () => number;
  /** Sees every task's outcome (tests and the benchmark). */
  onOutcome?: (outcome: TaskOutcome) => void;
}

/**
 * The reconcile-task consumer: an SQS handler (batch size 1 deployed) that runs each task until
 * `deadline()`. A body that is not a task is logged and acknowledged (no retry can fix it); a task
 * that failed on the ledger or the queue is reported as a batch item failure, so SQS redelivers it.
 */
export function createReconcileTaskConsumer(
  config: ReconcilerConfig,
  logger: ServiceLogger,
  clients: ReconcilerClients = defaultClients(config),
  opts: TaskConsumerOptions = {},
): (event: SQSEvent, deadline: () => number) => Promise<SQSBatchResponse> {
  const c = common(config, clients);
  const home = c.directory.home;
  // One budget and one client per account-region, for the life of the execution environment. Tasks of
  // one account-region are one FIFO group, so only this consumer spends that budget right now.
  // Other accounts: the reconciler's read-only target role there (infra/target-account.yml).
  const targets = clients.eksFor
    ? undefined
    : targetClientsFor(config, c.directory, clients.eks, clients.sts, clients.newEksClient);
  // The budget outlives the client: a renewed session gets a new client (the SDK memoizes credentials
  // per client), never a new bucket, which would forget the calls the old one had reserved and let a
  // cluster whose sessions EKS keeps refusing run at a multiple of R.
  const budgets = new Map<string, ReturnType<typeof eksCallBudget>>();
  const budgeted = new Map<string, EKSClient>();
  const clientFor = (target: ClusterTarget): EKSClient => {
    const key = `${target.account}:${target.region}`;
    let client = budgeted.get(key);
    if (!client) {
      const isHome = target.account === home.account && target.region === home.region;
      const raw = isHome
        ? clients.eks
        : (clients.eksFor?.(target) ??
          targets?.clientFor(target) ??
          new EKSClient({
            region: target.region,
            maxAttempts: config.eksMaxAttempts,
            retryMode: 'standard',
          }));
      let budget = budgets.get(key);
      if (!budget) {
        budget = eksCallBudget(config.eksCallsPerSecond);
        budgets.set(key, budget);
      }
      client = withCallBudget(raw, budget);
      budgeted.set(key, client);
    }
    return client;
  };
  // renew: a refused target-role session is dropped so the next client asks STS again (budget kept).
  const eks = new EksAdapter(clients.eks, undefined, {
    clientFor,
    renew: (target) => {
      const renewed = targets?.renew(target) ?? false;
      if (renewed) budgeted.delete(`${target.account}:${target.region}`);
      return renewed;
    },
  });
  const deps: ReconcileTaskDeps = {
    directory: c.directory,
    ledger: c.ledger,
    state: c.state,
    eks: { readCurrent: (target, principalArn) => eks.readCurrent(target, principalArn) },
    audit: new AuditBusAdapter(clients.eventbridge, config.auditBusName, logger),
    enqueue: c.enqueue,
    tasks: c.tasks,
    repairDrift: config.repairDrift,
    concurrency: config.concurrency,
    pageSize: config.pageSize,
    logger,
    ...(opts.clock && { clock: opts.clock }),
  };
  /**
   * Who sent a task and which FIFO group it is in decide whether it may run. The budget of an
   * account-region is exact only because SQS hands its one group to one consumer at a time: a task in
   * any other group (which its sender picks) would walk the cluster beside that group's consumer, at
   * a second budget. The sender: the reconciler role only (the queue policy is the first wall).
   */
  const refusal = (
    record: SQSEvent['Records'][number],
    alias: string,
  ): { code: string; reason: string } | undefined => {
    const senderId = record.attributes.SenderId;
    if (!config.taskSenders.some((id) => senderMatches(senderId ?? '', id))) {
      return {
        code: 'UNTRUSTED_SENDER',
        reason: `sent by ${senderId ?? 'nobody known (no SenderId)'}, not the reconciler`,
      };
    }
    const target = c.directory.resolve(alias);
    // An alias the policy does not name is dropped by the task itself, with no EKS call.
    if (!target) return undefined;
    const group = reconcileGroupId(target);
    if (record.attributes.MessageGroupId !== group) {
      return {
        code: 'WRONG_MESSAGE_GROUP',
        reason: `in message group ${record.attributes.MessageGroupId ?? '(none)'}, not ${group}, the one group of its account-region`,
      };
    }
    return undefined;
  };
  return async (event, deadline) => {
    const batchItemFailures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      // FIFO: after a failure, later messages of the batch go back too, or they would overtake it.
      if (batchItemFailures.length > 0) {
        batchItemFailures.push({ itemIdentifier: record.messageId });
        continue;
      }
      const parsed = parseReconcileTask(record.body);
      if (!parsed.ok) {
        logger.error('not a reconcile task; acknowledged and dropped', { reason: parsed.reason });
        continue;
      }
      const refused = refusal(record, parsed.task.cluster);
      if (refused) {
        // Acknowledged, not retried: a redelivery carries the same SenderId and group.
        logger.error('reconcile task refused; acknowledged and dropped', {
          passId: parsed.task.passId,
          clusterName: parsed.task.cluster,
          senderId: record.attributes.SenderId,
          messageGroupId: record.attributes.MessageGroupId,
          ...refused,
        });
        opts.onOutcome?.({ outcome: 'dropped', reason: refused.reason });
        continue;
      }
      try {
        const outcome = await runReconcileTask(deps, parsed.task, deadline());
        opts.onOutcome?.(outcome);
        if (outcome.outcome !== 'dropped')
          opts.metrics?.count('ReconcileTask_principalsChecked', outcome.checked);
        logger.info('reconcile task finished', {
          passId: parsed.task.passId,
          clusterName: parsed.task.cluster,
          ...outcome,
        });
      } catch (err) {
        logger.error('reconcile task failed; SQS will redeliver it', {
          passId: parsed.task.passId,
          clusterName: parsed.task.cluster,
          error: (err as Error).message,
        });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  };
}
