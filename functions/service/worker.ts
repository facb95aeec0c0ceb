/**
 * The grant worker's wiring: clients → adapters → service → an SQS batch handler.
 * Kept apart from the Lambda entry point so tests build it with loopback clients and
 * an explicit config instead of module-level environment.
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { AuditBusAdapter } from '../adapters/audit-bus.js';
import { EksAdapter } from '../adapters/eks.js';
import { LedgerAdapter } from '../adapters/ledger.js';
import { QueueAdapter } from '../adapters/queue.js';
import { SchedulerAdapter } from '../adapters/scheduler.js';
import { type EksClientFactory, targetClientsFor } from '../adapters/target-clients.js';
import { auditBusArn, deploymentOf, type WorkerConfig } from '../config.js';
import { ClusterDirectory } from '../core/cluster-target.js';
import type { GuardrailPolicy } from '../core/policy.js';
import { VERIFIED_SENDER_ATTRIBUTE } from '../core/senders.js';
import {
  type ExpiryScheduler,
  GrantService,
  type ServiceLogger,
  type ServiceMetrics,
} from './grant-service.js';

export interface WorkerClients {
  eks: EKSClient;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  eventbridge: EventBridgeClient;
  scheduler: SchedulerClient;
  /** For the target roles of other accounts; needed only when the policy names some. */
  sts?: STSClient;
  /** EKS clients of other account-regions; default: the SDK's (endpoint from AWS_ENDPOINT_URL_EKS). */
  eksFor?: EksClientFactory;
}

export interface WorkerOptions {
  config: WorkerConfig;
  policy: GuardrailPolicy;
  clients: WorkerClients;
  logger: ServiceLogger;
  metrics?: ServiceMetrics;
  /** Defaults to EventBridge Scheduler with `config.scheduler`. */
  scheduler?: ExpiryScheduler;
  now?: () => Date;
  random?: () => number;
  /** Observes every EKS call (API-efficiency figures, tests). */
  onEksCall?: (operation: string) => void;
}

/** Standard SDK clients; endpoints come from AWS_ENDPOINT_URL_<SERVICE> when set (local mode). */
export function defaultClients(config: WorkerConfig): WorkerClients {
  return {
    // The SDK's standard retry strategy: exponential backoff with jitter for throttling,
    // 5xx and network faults. Our own retries sit above it (re-plan, then queue redelivery).
    eks: new EKSClient({ region: config.region, maxAttempts: config.eksMaxAttempts, retryMode: 'standard' }),
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
    eventbridge: new EventBridgeClient({ region: config.region }),
    scheduler: new SchedulerClient({ region: config.region }),
    sts: new STSClient({ region: config.region }),
  };
}

export function createWorker(options: WorkerOptions) {
  const { config, clients, logger } = options;
  const queue = new QueueAdapter(clients.sqs);
  const home = deploymentOf(config);
  const clusters = new ClusterDirectory(options.policy, home);
  const reminders = config.scheduler.expiringSoon;
  const service = new GrantService({
    eks: new EksAdapter(
      clients.eks,
      options.onEksCall,
      targetClientsFor(config, clusters, clients.eks, clients.sts, clients.eksFor),
    ),
    ledger: new LedgerAdapter(clients.dynamodb, config.ledgerTable),
    audit: new AuditBusAdapter(clients.eventbridge, config.auditBusName, logger),
    deadLetters: {
      deadLetter: (message, reason, verifiedSender) =>
        queue.sendToDlq(
          config.dlqUrl,
          message.body,
          message.groupId ?? 'dead-letters',
          message.messageId,
          reason,
          verifiedSender,
        ),
    },
    policy: options.policy,
    senders: config.senders,
    clusters,
    scheduler:
      options.scheduler ??
      new SchedulerAdapter(
        clients.scheduler,
        {
          groupName: config.scheduler.groupName,
          roleArn: config.scheduler.roleArn,
          queueArn: config.scheduler.queueArn,
          ...(reminders && { expiringSoon: { ...reminders, busArn: auditBusArn(config, home) } }),
        },
        options.now,
      ),
    maxReceiveCount: config.maxReceiveCount,
    ...(config.iamPropagationWindowSeconds !== undefined && {
      iamPropagationWindowMs: config.iamPropagationWindowSeconds * 1000,
    }),
    logger,
    ...(options.metrics && { metrics: options.metrics }),
    ...(options.now && { now: options.now }),
    ...(options.random && { random: options.random }),
  });
  const random = options.random ?? Math.random;
  const processor = new SqsFifoPartialProcessorAsync();

  /** Exponential, capped, with jitter so a throttled burst does not come back in lockstep. */
  function retryDelaySeconds(receiveCount: number): number {
    const ceiling = Math.min(config.retryMaxSeconds, config.retryBaseSeconds * 2 ** (receiveCount - 1));
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  }

  return async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
    const recordHandler = async (record: SQSRecord) => {
      const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1') || 1;
      const result = await service.handle({
        messageId: record.messageId,
        body: record.body,
        receiveCount,
        deadline: Date.now() + context.getRemainingTimeInMillis() - config.deadlineMarginMs,
        ...(record.attributes.MessageGroupId && { groupId: record.attributes.MessageGroupId }),
        // Lambda's SQS event source mapping delivers every system attribute, SenderId included.
        ...(record.attributes.SenderId && { senderId: record.attributes.SenderId }),
        ...(verifiedSenderOf(record) !== undefined && { verifiedSenderAttribute: verifiedSenderOf(record) }),
      });
      if (result.status === 'retry') {
        // Out of invocation time is our budget, not EKS pushing back: try again at once.
        const delay =
          result.error.code === 'DEADLINE' ? Math.round(random()) : retryDelaySeconds(receiveCount);
        try {
          await queue.setVisibility(config.requestQueueUrl, record.receiptHandle, delay);
        } catch (err) {
          // The message still comes back after the queue's own visibility timeout.
          logger.warn('could not stretch the visibility timeout', {
            messageId: record.messageId,
            error: String(err),
          });
        }
        throw result.error;
      }
      return result.status === 'duplicate' ? 'duplicate' : result.audit.outcome;
    };
    return processPartialResponse(event, recordHandler, processor, {
      context,
      // FIFO: a failed message must not be overtaken by later messages of its group,
      // but other principals (groups) in the batch carry on.
      skipGroupOnError: true,
      throwOnFullBatchFailure: false,
    });
  };
}

function verifiedSenderOf(record: SQSRecord): string | undefined {
  const attr = record.messageAttributes?.[VERIFIED_SENDER_ATTRIBUTE];
  return attr?.dataType === 'String' && attr.stringValue ? attr.stringValue : undefined;
}
