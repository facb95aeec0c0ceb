/**
 * Clients → adapters → the scheduled reconciler, built once per cold start. The reconcile-task consumer's
 * wiring is in reconcile-task-wiring.ts, so this bundle carries no EKS client use, planner or budget.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { LedgerAdapter } from '../adapters/ledger.js';
import { QueueAdapter } from '../adapters/queue.js';
import { ReconcileQueueAdapter } from '../adapters/reconcile-queue.js';
import { ReconcileStateAdapter } from '../adapters/reconcile-state.js';
import type { EksClientFactory } from '../adapters/target-clients.js';
import type { ReconcilerConfig } from '../config.js';
import { accountOfQueue, ClusterDirectory, type ClusterTarget, groupKeys } from '../core/cluster-target.js';
import type { ServiceLogger } from './grant-service.js';
import { loadPolicyJson } from './load-policy.js';
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
  /** For the read-only target roles of other accounts (adapters/target-clients.ts), when eksFor is absent. */
  sts?: STSClient;
  /**
   * Makes the client of another account-region reached through `sts` (default: the SDK's). Local mode
   * and tests point it at the loopback endpoint.
   */
  newEksClient?: EksClientFactory;
}

export function defaultClients(config: ReconcilerConfig): ReconcilerClients {
  return {
    eks: new EKSClient({ region: config.region, maxAttempts: config.eksMaxAttempts, retryMode: 'standard' }),
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
    eventbridge: new EventBridgeClient({ region: config.region }),
    sts: new STSClient({ region: config.region }),
  };
}

export function common(config: ReconcilerConfig, clients: ReconcilerClients) {
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
    enqueue: async (request: Parameters<QueueAdapter['enqueue']>[1], breakGlass: boolean) => {
      await queue.enqueue(breakGlass ? config.breakGlassQueueUrl : config.requestQueueUrl, request);
    },
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
