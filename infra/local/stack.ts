// All loopback AWS services of local mode in one call: SQS (the requests queue and its DLQ), DynamoDB,
// EventBridge routed as the template routes it (the audit bus into the audit log, CloudTrail IAM events on the
// default bus to the role intake) and a Scheduler that fires into the queue. EKS is separate
// (infra/local/eks-emulator.ts).
import { appendFile } from 'node:fs/promises';
import { type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { busCallers, LOCAL_ACCOUNT, localRoleArn } from './bus-callers.js';
import { createTable, type DynamoEmulator, startDynamo } from './dynamodb.js';
import { loadEventRoutes } from './event-routes.js';
import {
  type BusRoute,
  type EventBridgeEmulator,
  type IdentifyCaller,
  startEventBridge,
} from './eventbridge.js';
import { type Actor, credentialsOf, identityOfRoleArn } from './identities.js';
import { type AsyncHandler, type AsyncInvoker, createAsyncInvoker } from './lambda-async.js';
import { type SchedulerEmulator, startScheduler } from './scheduler.js';
import { createQueues, type QueuePair, queueUrlFromArn, type SqsEmulator, startSqs } from './sqs.js';

export const LOCAL_REGION = 'us-east-1';
/**
 * The key of clients that act as nobody in particular (setting up queues, reading what is there). To local
 * SQS it is a stranger's: what it sends is stamped with a SenderId no worker trusts (infra/local/identities.ts).
 */
export const LOCAL_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
export { CLOUDTRAIL_CREDENTIALS, LOCAL_ACCOUNT } from './bus-callers.js';

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

/** One line of the audit log file: an event the audit bus's archive rule took. */
export interface AuditLogLine {
  time: string;
  source: string;
  detailType: string;
  eventBusName: string;
  detail: unknown;
}

/** An event of the audit log, with its EventBridge id. */
export type AuditEvent = AuditLogLine & { id: string };

export interface LocalAwsOptions {
  /** JSON-lines file the audit bus's archive (infra/resources/audit.yml AuditArchive) appends to. */
  auditLogFile?: string;
  /** Local name of the template's AuditBus (default 'audit'): the workers' AUDIT_BUS_NAME. */
  auditBusName?: string;
  /**
   * Handlers for the template's EventBridge function targets, by serverless function name (e.g.
   * roleLifecycleIntake): invoked asynchronously, as EventBridge invokes Lambda. A matched event of a
   * function without a handler here is recorded in events() and goes no further.
   */
  eventTargets?: Partial<Record<string, AsyncHandler>>;
  /**
   * Who each access key is, for the buses' resource policies (only this system's roles may publish
   * `eks-access-grants` records). Default: the local identities (infra/local/bus-callers.ts).
   */
  identify?: IdentifyCaller;
  /** Local ARN of a template role, by logical id (default: its local identity's, bus-callers.ts). */
  roleArn?: (logicalId: string) => string;
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
  /** EventBridge as one of the local identities: the audit bus takes `eks-access-grants` records only from its publishers. */
  eventbridgeAs(actor: Actor): EventBridgeClient;
  /** Test hooks: events() (every accepted event, with the routes it matched), failNext(n). */
  eventbridgeEmulator: EventBridgeEmulator;
  /** The audit log: events the audit bus's archive took, oldest first. */
  auditEvents(): AuditEvent[];
  /** The EventBridge function targets that have a local handler, by function name. */
  eventInvokers: Record<string, AsyncInvoker>;
  /** Resolves when every event delivered so far has been handled by its function target. */
  eventsIdle(): Promise<void>;
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

    const bus = await startLocalEventBridge(opts);
    const { eventbridgeEmulator, auditEvents, eventInvokers } = bus;
    closers.push(() => bus.close());
    const eventbridge = new EventBridgeClient(localClientConfig(eventbridgeEmulator.endpoint));
    closers.push(() => eventbridge.destroy());
    const busAs = new Map<Actor, EventBridgeClient>();
    const eventbridgeAs = (actor: Actor): EventBridgeClient => {
      let client = busAs.get(actor);
      if (!client) {
        client = new EventBridgeClient(localClientConfig(eventbridgeEmulator.endpoint, actor));
        busAs.set(actor, client);
      }
      return client;
    };
    closers.push(() => {
      for (const c of busAs.values()) c.destroy();
      busAs.clear();
    });

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
      eventbridgeAs,
      eventbridgeEmulator,
      auditEvents,
      eventInvokers,
      eventsIdle: async () => {
        await Promise.all(Object.values(eventInvokers).map((i) => i.idle()));
      },
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

/** The local EventBridge with the template's routes and bus policies, and local targets for them. */
async function startLocalEventBridge(opts: LocalAwsOptions) {
  const auditBusName = opts.auditBusName ?? 'audit';
  const region = LOCAL_REGION;
  const { routes, policies } = loadEventRoutes({
    busName: (logicalId) => {
      if (logicalId === 'AuditBus') return auditBusName;
      throw new Error(`local EventBridge: no local bus for ${logicalId}`);
    },
    busArn: (name) => `arn:aws:events:${region}:${LOCAL_ACCOUNT}:event-bus/${name}`,
    roleArn: opts.roleArn ?? localRoleArn,
  });

  const audit: AuditEvent[] = [];
  // Appends are chained so lines land in the order the events were accepted.
  let logTail: Promise<void> = Promise.resolve();
  const eventInvokers: Record<string, AsyncInvoker> = {};
  for (const [name, handler] of Object.entries(opts.eventTargets ?? {}))
    if (handler) eventInvokers[name] = createAsyncInvoker({ functionName: name, handler });

  const busRoutes: BusRoute[] = routes.map((r) => ({
    id: r.id,
    eventBusName: r.eventBusName,
    pattern: r.pattern,
    deliver: async (event) => {
      const t = r.target;
      if (t.kind === 'function') {
        eventInvokers[t.name]?.invoke(event);
        return;
      }
      if (t.kind === 'archive' && r.eventBusName === auditBusName) {
        const line: AuditLogLine = {
          time: event.time,
          source: event.source,
          detailType: event['detail-type'],
          eventBusName: r.eventBusName,
          detail: event.detail,
        };
        audit.push({ id: event.id, ...line });
        const { auditLogFile } = opts;
        if (auditLogFile) {
          logTail = logTail.then(() => appendFile(auditLogFile, `${JSON.stringify(line)}\n`));
          // PutEvents answers only once the line is on disk, so a test can read the file right after.
          await logTail;
        }
      }
      // Other rules (the high-severity notification rule's SNS topic) have no local target: the match is
      // visible in events()[].routes.
    },
  }));

  const eventbridgeEmulator = await startEventBridge({
    region,
    accountId: LOCAL_ACCOUNT,
    routes: busRoutes,
    identify: opts.identify ?? busCallers(),
    policies: policies.map((p) => ({ eventBusName: p.eventBusName, statement: p.statement })),
  });
  return {
    eventbridgeEmulator,
    eventInvokers,
    auditEvents: () => audit.map((e) => ({ ...e })),
    close: async () => {
      await eventbridgeEmulator.close();
      await Promise.all(Object.values(eventInvokers).map((i) => i.idle()));
      await logTail.catch(() => undefined);
    },
  };
}
