// All loopback AWS services of local mode in one call: SQS (the requests queue and its DLQ), DynamoDB, the
// EventBridge audit sink and a Scheduler that fires into the queue. EKS is separate (infra/local/eks-emulator.ts).
import { type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createTable, type DynamoEmulator, startDynamo } from './dynamodb.js';
import { type EventBridgeEmulator, startEventBridge } from './eventbridge.js';
import { type Actor, credentialsOf, identityOfRoleArn } from './identities.js';
import { type SchedulerEmulator, startScheduler } from './scheduler.js';
import { createQueues, type QueuePair, queueUrlFromArn, type SqsEmulator, startSqs } from './sqs.js';

export const LOCAL_REGION = 'us-east-1';
/**
 * The key of clients that act as nobody in particular (setting up queues, reading what is there). To local
 * SQS it is a stranger's: what it sends is stamped with a SenderId no worker trusts (infra/local/identities.ts).
 */
export const LOCAL_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** Client config for a loopback endpoint, as `actor` if given; spread it into any SDK v3 client constructor. */
export function localClientConfig(
  endpoint: string,
  actor?: Actor,
): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return {
    endpoint,
    region: LOCAL_REGION,
    credentials: actor ? credentialsOf(actor) : { ...LOCAL_CREDENTIALS },
  };
}

export interface LocalAwsOptions {
  /** JSON-lines file every PutEvents entry is appended to. */
  auditLogFile?: string;
  /** Base name of the queue pair: `<name>.fifo` and `<name>-dlq.fifo` (default 'requests'). */
  queueName?: string;
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
  /** Table to create, unless tableDefinition names one itself. */
  tableName?: string;
  tableDefinition?: CreateTableCommandInput;
}

/** The queue pair's urls and ARNs (queueUrl, queueArn, dlqUrl, dlqArn) are top-level fields. */
export interface LocalAws extends QueuePair {
  endpoints: { sqs: string; dynamodb: string; eventbridge: string; scheduler: string };
  tableName: string | undefined;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  eventbridge: EventBridgeClient;
  scheduler: SchedulerClient;
  /** SQS as one of the local identities (C3): what it sends is stamped with that actor's SenderId. */
  sqsAs(actor: Actor): SQSClient;
  /** Test hooks: events(), failNext(n). */
  eventbridgeEmulator: EventBridgeEmulator;
  /** Test hooks: schedules(), fired(), pause(), resume(), dropAll(), fireDue(). */
  schedulerEmulator: SchedulerEmulator;
  /**
   * The SDK's standard variables (AWS_ENDPOINT_URL_<SERVICE>, region, credentials) that point unmodified code
   * at these endpoints, for a child process or process.env.
   */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startLocalAws(opts: LocalAwsOptions = {}): Promise<LocalAws> {
  const closers: Array<() => Promise<void> | void> = [];
  const close = async (): Promise<void> => {
    // Reverse order: the scheduler stops sending before SQS goes away.
    for (const fn of closers.splice(0).reverse()) await fn();
  };
  try {
    const sqsServer: SqsEmulator = await startSqs();
    closers.push(() => sqsServer.close());
    const sqs = new SQSClient(localClientConfig(sqsServer.endpoint));
    closers.push(() => sqs.destroy());
    const asActor = new Map<Actor, SQSClient>();
    const sqsAs = (actor: Actor): SQSClient => {
      let client = asActor.get(actor);
      if (!client) {
        client = new SQSClient(localClientConfig(sqsServer.endpoint, actor));
        asActor.set(actor, client);
      }
      return client;
    };
    closers.push(() => {
      for (const c of asActor.values()) c.destroy();
      asActor.clear();
    });
    const queue = await createQueues(sqs, {
      name: opts.queueName ?? 'requests',
      visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds ?? 30,
      maxReceiveCount: opts.maxReceiveCount ?? 5,
    });

    const dynamo: DynamoEmulator = await startDynamo();
    closers.push(() => dynamo.close());
    const dynamodb = new DynamoDBClient(localClientConfig(dynamo.endpoint));
    closers.push(() => dynamodb.destroy());
    const tableDefinition =
      opts.tableDefinition && opts.tableName
        ? { ...opts.tableDefinition, TableName: opts.tableName }
        : opts.tableDefinition;
    if (tableDefinition) await createTable(dynamodb, tableDefinition);

    const eventbridgeEmulator = await startEventBridge(
      opts.auditLogFile ? { logFile: opts.auditLogFile } : {},
    );
    closers.push(() => eventbridgeEmulator.close());
    const eventbridge = new EventBridgeClient(localClientConfig(eventbridgeEmulator.endpoint));
    closers.push(() => eventbridge.destroy());

    const schedulerEmulator = await startScheduler({
      sqs,
      // Scheduler sends as the schedule's role; a role with no local identity is a stranger.
      sqsForRole: (roleArn) => {
        const identity = identityOfRoleArn(roleArn);
        return identity ? sqsAs(identity.actor) : sqs;
      },
      queueUrlForArn: (arn) => queueUrlFromArn(sqsServer.endpoint, arn),
    });
    closers.push(() => schedulerEmulator.close());
    const scheduler = new SchedulerClient(localClientConfig(schedulerEmulator.endpoint));
    closers.push(() => scheduler.destroy());

    const endpoints = {
      sqs: sqsServer.endpoint,
      dynamodb: dynamo.endpoint,
      eventbridge: eventbridgeEmulator.endpoint,
      scheduler: schedulerEmulator.endpoint,
    };
    return {
      endpoints,
      ...queue,
      tableName: tableDefinition?.TableName ?? opts.tableName,
      sqs,
      dynamodb,
      eventbridge,
      scheduler,
      sqsAs,
      eventbridgeEmulator,
      schedulerEmulator,
      env: {
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_SQS: endpoints.sqs,
        AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
        AWS_ENDPOINT_URL_EVENTBRIDGE: endpoints.eventbridge,
        AWS_ENDPOINT_URL_SCHEDULER: endpoints.scheduler,
      },
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
