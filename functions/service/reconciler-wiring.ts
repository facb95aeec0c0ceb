/** Clients → adapters → reconcile(), built once per cold start. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { AuditBusAdapter } from '../adapters/audit-bus.js';
import { EksAdapter } from '../adapters/eks.js';
import { LedgerAdapter } from '../adapters/ledger.js';
import { QueueAdapter } from '../adapters/queue.js';
import { type EksClientFactory, targetClientsFor } from '../adapters/target-clients.js';
import type { ReconcilerConfig } from '../config.js';
import { accountOfQueue, ClusterDirectory, groupKeys } from '../core/cluster-target.js';
import type { ServiceLogger } from './grant-service.js';
import { loadPolicyJson } from './load-policy.js';
import { type ReconcileReport, reconcile } from './reconciler.js';

export interface ReconcilerClients {
  eks: EKSClient;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  eventbridge: EventBridgeClient;
  /** For the read-only target roles of other accounts (issue 13); needed only when the policy names some. */
  sts?: STSClient;
  eksFor?: EksClientFactory;
}

export function createReconciler(
  config: ReconcilerConfig,
  logger: ServiceLogger,
  clients: ReconcilerClients = {
    eks: new EKSClient({ region: config.region, maxAttempts: config.eksMaxAttempts, retryMode: 'standard' }),
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
    eventbridge: new EventBridgeClient({ region: config.region }),
    sts: new STSClient({ region: config.region }),
  },
  now?: () => Date,
): (deadline?: () => number) => Promise<ReconcileReport> {
  const policy = loadPolicyJson(config.policyPath);
  const queue = new QueueAdapter(clients.sqs, groupKeys(policy, config.region, config.requestQueueUrl));
  const account = accountOfQueue(config.requestQueueUrl);
  const directory = account ? new ClusterDirectory(policy, { account, region: config.region }) : undefined;
  const deps = {
    ledger: new LedgerAdapter(clients.dynamodb, config.ledgerTable),
    eks: new EksAdapter(
      clients.eks,
      undefined,
      directory && targetClientsFor(config, directory, clients.eks, clients.sts, clients.eksFor),
    ),
    audit: new AuditBusAdapter(clients.eventbridge, config.auditBusName, logger),
    enqueue: (request: Parameters<QueueAdapter['enqueue']>[1], breakGlass: boolean) =>
      queue.enqueue(breakGlass ? config.breakGlassQueueUrl : config.requestQueueUrl, request),
    // Only clusters named in the policy: nothing else is ours to look at.
    clusters: Object.keys(policy.clusters),
    ...(directory && { directory }),
    repairDrift: config.repairDrift,
    concurrency: config.concurrency,
    logger,
    ...(now && { now }),
  };
  return (deadline) => reconcile({ ...deps, ...(deadline && { deadline }) });
}
