/** Clients → adapters → the scheduled fan-out and the reconcile-task consumer, built once per cold start. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { AuditBusAdapter } from '../adapters/audit-bus.js';
import { EksAdapter } from '../adapters/eks.js';
import { withCallBudget } from '../adapters/eks-budget.js';
import { LedgerAdapter } from '../adapters/ledger.js';
import { QueueAdapter } from '../adapters/queue.js';
import { ReconcileQueueAdapter } from '../adapters/reconcile-queue.js';
import { ReconcileStateAdapter } from '../adapters/reconcile-state.js';
import type { ReconcilerConfig } from '../config.js';
import { accountOfQueue, ClusterDirectory, type ClusterTarget, groupKeys } from '../core/cluster-target.js';
import { parseReconcileTask } from '../core/reconcile-task.js';
import { eksCallBudget } from '../core/token-bucket.js';
import type { ServiceLogger, ServiceMetrics } from './grant-service.js';
import { loadPolicyJson } from './load-policy.js';
import { type ReconcileTaskDeps, runReconcileTask, type TaskOutcome } from './reconcile-task.js';
import { type ScheduledRunReport, startReconcilePass } from './reconciler.js';

export interface ReconcilerClients {
  /** The client of the deployment's own account-region. */
  eks: EKSClient;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  eventbridge: EventBridgeClient;
  /**
   * A new client for another account-region; default: the SDK's for the target's region. Each client
   * made here is used by one account-region only and gets that account-region's budget.
   */
  eksFor?: (target: ClusterTarget) => EKSClient;
}

function defaultClients(config: ReconcilerConfig): ReconcilerClients {
  return {
    eks: new EKSClient({ region: config.region, maxAttempts: config.eksMaxAttempts, retryMode: 'standard' }),
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
    eventbridge: new EventBridgeClient({ region: config.region }),
  };
}

function common(config: ReconcilerConfig, clients: ReconcilerClients) {
  const policy = loadPolicyJson(config.policyPath);
  const queue = new QueueAdapter(clients.sqs, groupKeys(policy, config.region, config.requestQueueUrl));
  // The stack creates its queues where it runs; a queue URL without an account (hand-made local
  // setups) gets a placeholder, which only names the cursors of the deployment's own clusters.
  const home = { account: accountOfQueue(config.requestQueueUrl) ?? '000000000000', region: config.region };
  return {
    directory: new ClusterDirectory(policy, home),
    ledger: new LedgerAdapter(clients.dynamodb, config.ledgerTable),
    state: new ReconcileStateAdapter(clients.dynamodb, config.ledgerTable),
    tasks: new ReconcileQueueAdapter(clients.sqs, config.reconcileQueueUrl),
    enqueue: (request: Parameters<QueueAdapter['enqueue']>[1], breakGlass: boolean) =>
      queue.enqueue(breakGlass ? config.breakGlassQueueUrl : config.requestQueueUrl, request),
  };
}

/** The scheduled run: expiry sweep, then a new pass unless one is running. */
export function createReconciler(
  config: ReconcilerConfig,
  logger: ServiceLogger,
  clients: ReconcilerClients = defaultClients(config),
  now?: () => Date,
): () => Promise<ScheduledRunReport> {
  const c = common(config, clients);
  return () =>
    startReconcilePass({
      ledger: c.ledger,
      state: c.state,
      tasks: c.tasks,
      enqueue: c.enqueue,
      directory: c.directory,
      staleMs: config.staleSeconds * 1000,
      logger,
      ...(now && { now }),
    });
}

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
  const budgeted = new Map<string, EKSClient>();
  const clientFor = (target: ClusterTarget): EKSClient => {
    const key = `${target.account}:${target.region}`;
    let client = budgeted.get(key);
    if (!client) {
      const isHome = target.account === home.account && target.region === home.region;
      const raw = isHome
        ? clients.eks
        : (clients.eksFor?.(target) ??
          new EKSClient({
            region: target.region,
            maxAttempts: config.eksMaxAttempts,
            retryMode: 'standard',
          }));
      client = withCallBudget(raw, eksCallBudget(config.eksCallsPerSecond));
      budgeted.set(key, client);
    }
    return client;
  };
  const eks = new EksAdapter(clients.eks, undefined, clientFor);
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
