/**
 * A whole worker stack on loopback for integration tests: the EKS emulator, SQS FIFO
 * queue + DLQ, dynalite ledger, EventBridge audit sink, and the real worker handler
 * driven by the Lambda SQS event-source-mapping runner. Real SDK clients over HTTP.
 */
import { EKSClient } from '@aws-sdk/client-eks';
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { AUDIT_DETAIL_TYPE } from '../../functions/adapters/audit-bus.js';
import { ledgerTableDefinition } from '../../functions/adapters/ledger.js';
import { messageGroupId } from '../../functions/adapters/queue.js';
import type { EksClientFactory } from '../../functions/adapters/target-clients.js';
import { expiringSoonOf, type WorkerConfig } from '../../functions/config.js';
import type { AuditRecord } from '../../functions/core/audit.js';
import { auditRecordJsonSchema } from '../../functions/core/audit-schema.js';
import {
  EXPIRING_SOON_DETAIL_TYPE,
  type ExpiringSoonEvent,
  expiringSoonJsonSchema,
} from '../../functions/core/expiring-soon.js';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import type { SenderBinding } from '../../functions/core/senders.js';
import { type AccessRequest, SOURCES, type Source } from '../../functions/core/types.js';
import type { ExpiryScheduler, ServiceLogger } from '../../functions/service/grant-service.js';
import { createWorker } from '../../functions/service/worker.js';
import { type EksCall, type EksEmulator, startEksEmulator } from '../../infra/local/eks-emulator.js';
import {
  type Actor,
  credentialsOf,
  LOCAL_IDENTITIES,
  localSenderRouting,
  senderOf,
  type WorkerName,
} from '../../infra/local/identities.js';
import { lambdaContext } from '../../infra/local/lambda-context.js';
import { createSqsRunner } from '../../infra/local/lambda-runner.js';
import { type LocalAwsOptions, startLocalAws } from '../../infra/local/stack.js';
import { startSts } from '../../infra/local/sts.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { schemaErrors } from './ajv.js';

export const REGION = 'us-east-1';
export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** The sample policy's cluster in another account and region (infra/policy.example.yaml). */
export const STAGING = { account: '444455556666', region: 'eu-west-1' };
export const TARGET_ROLE_NAME = 'eks-access-grants-test-target';
export const TARGET_ROLE_ARN = `arn:aws:iam::${STAGING.account}:role/${TARGET_ROLE_NAME}`;
/**
 * Creates (or recreates) the workers' target role in staging's account, trusted as infra/target-account.yml
 * trusts the stage's function roles: the harness worker's key and the reconciler's, nobody else (the
 * operator's key included).
 */
export function createTargetRole(sts: {
  createRole(arn: string, o?: { trustedAccessKeys?: readonly string[] }): void;
}) {
  sts.createRole(TARGET_ROLE_ARN, {
    trustedAccessKeys: [CREDENTIALS.accessKeyId, credentialsOf('reconciler').accessKeyId],
  });
}
/** The operator CLI's read-only role in staging's account, trusted only by the operator's key (as OperatorRole). */
export const OPERATOR_TARGET_ROLE_NAME = 'eks-access-grants-test-operator-target';
export const OPERATOR_TARGET_ROLE_ARN = `arn:aws:iam::${STAGING.account}:role/${OPERATOR_TARGET_ROLE_NAME}`;

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  extra: Record<string, unknown>[];
}

export function captureLogger(): ServiceLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      lines.push({ level, message, extra });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface HarnessOptions {
  maxReceiveCount?: number;
  /**
   * Default 40 s: above the runner's 30 s function timeout, as the template keeps the queue's above the
   * worker's. Below it, a slow invocation outlives its messages' visibility: local SQS then redelivers (or,
   * on the last receive, dead-letters) a message the worker is still handling, and its delete fails.
   * Retries do not wait for it: the worker sets each retried message's visibility itself.
   */
  visibilityTimeoutSeconds?: number;
  policy?: GuardrailPolicy;
  eksMaxAttempts?: number;
  now?: () => Date;
  scheduler?: ExpiryScheduler;
  retryBaseSeconds?: number;
  /** JSON-lines file the EventBridge emulator appends every audit record to, as local mode does. */
  auditLogFile?: string;
  /** The emulated EKS account (node entry types need a role of the cluster's account). */
  eksAccountId?: string;
  /** IAM_PROPAGATION_WINDOW_SECONDS for the worker (default: the config default). */
  iamPropagationWindowSeconds?: number;
  /** EXPIRING_SOON_LEAD for the worker (ISO-8601); default none, so other tests see expiry schedules only. */
  expiringSoonLead?: string;
  /** Whether the target role exists in the staging account (default true). */
  targetRole?: boolean;
  /** EventBridge function targets (and, to override the local identities, who each key is). */
  localAws?: Pick<LocalAwsOptions, 'identify' | 'eventTargets'>;
  /**
   * Whose sender binding the harness' one worker has (default 'both': its one queue carries every source, so it
   * trusts each source's senders from both workers' template routing, and dead-letters as the grant worker).
   */
  worker?: WorkerName | 'both';
}

/** Who sends what in the harness: a local identity, or a stranger (a key local SQS does not know). */
export type Sender = Actor | 'stranger';

/** The sender binding of the harness' worker, from the template's routing (infra/local/identities.ts). */
export function harnessBinding(worker: WorkerName | 'both'): SenderBinding {
  if (worker !== 'both') return localSenderRouting(worker).binding;
  const a = localSenderRouting('grantWorker').binding;
  const b = localSenderRouting('breakGlassWorker').binding;
  const trusted: SenderBinding['trusted'] = {};
  for (const source of SOURCES) {
    const ids = [...new Set([...(a.trusted[source] ?? []), ...(b.trusted[source] ?? [])])];
    if (ids.length > 0) trusted[source] = ids;
  }
  return { trusted, deadLetterSenders: a.deadLetterSenders };
}

/**
 * The legitimate sender of a body, as the intakes, schedulers and operator tools would send it: by its
 * `source`. A body without a valid source comes from the ticket intake (a known sender), so it meets the
 * validator, as an intake bug would.
 */
export function legitimateSender(body: string, worker: WorkerName | 'both' = 'both'): Actor {
  let source: unknown;
  try {
    source = (JSON.parse(body) as { source?: unknown } | null)?.source;
  } catch {
    source = undefined;
  }
  if (!SOURCES.includes(source as Source)) return 'ticketIntake';
  const workers: WorkerName[] = worker === 'both' ? ['grantWorker', 'breakGlassWorker'] : [worker];
  for (const w of workers) {
    const actor = senderOf(w, source as Source);
    if (actor) return actor;
  }
  return 'ticketIntake';
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;

/** The EKS operations that change access (the rest are reads). */
export const EKS_WRITES: ReadonlySet<string> = new Set([
  'CreateAccessEntry',
  'UpdateAccessEntry',
  'DeleteAccessEntry',
  'AssociateAccessPolicy',
  'DisassociateAccessPolicy',
]);

/** The successful EKS writes so far, as the emulator counted them. */
export function eksWrites(h: Harness): EksCall[] {
  return h.eks.calls().filter((c) => EKS_WRITES.has(c.operation) && c.status < 300);
}

export async function startHarness(opts: HarnessOptions = {}) {
  const maxReceiveCount = opts.maxReceiveCount ?? 3;
  // The local STS issues the target role's sessions; the EKS emulator keeps staging's account-region
  // apart by them (a plain key acts in the default account-region, as every other test expects).
  const sts = await startSts();
  if (opts.targetRole !== false) createTargetRole(sts);
  sts.createRole(OPERATOR_TARGET_ROLE_ARN, { trustedAccessKeys: [credentialsOf('operator').accessKeyId] });
  const workerName = opts.worker ?? 'both';
  const workerActor: Actor = workerName === 'breakGlassWorker' ? 'breakGlassWorker' : 'grantWorker';
  const schedulerActor: Actor = workerName === 'breakGlassWorker' ? 'breakGlassScheduler' : 'expiryScheduler';
  const eks: EksEmulator = await startEksEmulator({
    clusters: [{ name: 'dev' }, { name: 'prod' }, { name: 'staging', ...STAGING }],
    sts,
    ...(opts.eksAccountId !== undefined && { accountId: opts.eksAccountId }),
  });
  const aws = await startLocalAws({
    ...(opts.auditLogFile && { auditLogFile: opts.auditLogFile }),
    ...opts.localAws,
    queueName: 'requests',
    visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds ?? 40,
    maxReceiveCount,
    tableName: 'grants',
    tableDefinition: ledgerTableDefinition('grants'),
  });
  const policy = opts.policy ?? (await loadPolicyFile(EXAMPLE_POLICY_PATH));
  const eksClient = new EKSClient({
    region: REGION,
    endpoint: eks.endpoint,
    credentials: CREDENTIALS,
    maxAttempts: opts.eksMaxAttempts ?? 4,
  });
  const config: WorkerConfig = {
    region: REGION,
    requestQueueUrl: aws.queueUrl,
    dlqUrl: aws.dlqUrl,
    ledgerTable: 'grants',
    auditBusName: 'audit',
    policyPath: EXAMPLE_POLICY_PATH,
    maxReceiveCount,
    eksMaxAttempts: opts.eksMaxAttempts ?? 4,
    // Tests cannot wait minutes: retried messages come back after 0-1 s.
    retryBaseSeconds: opts.retryBaseSeconds ?? 1,
    retryMaxSeconds: 1,
    deadlineMarginMs: 1000,
    ...(opts.iamPropagationWindowSeconds !== undefined && {
      iamPropagationWindowSeconds: opts.iamPropagationWindowSeconds,
    }),
    scheduler: {
      groupName: 'default',
      // Scheduler sends as this role, so expiries carry its SenderId (local Scheduler: infra/local/stack.ts).
      roleArn: LOCAL_IDENTITIES[schedulerActor].roleArn,
      queueArn: aws.queueArn,
      ...(opts.expiringSoonLead !== undefined &&
        expiringSoonOf({ EXPIRING_SOON_LEAD: opts.expiringSoonLead })),
    },
    targetRoleName: TARGET_ROLE_NAME,
    sessionName: 'grant-worker',
    senders: harnessBinding(workerName),
  };
  const logger = captureLogger();
  const eksCalls: string[] = [];
  // What a worker needs for the clusters of other accounts (the sample policy's staging): STS for the
  // target role, and EKS clients of other account-regions on the emulator.
  const fleet = {
    sts: new STSClient({ region: REGION, endpoint: sts.endpoint, credentials: CREDENTIALS }),
    eksFor: ((region, credentials) =>
      new EKSClient({
        region,
        endpoint: eks.endpoint,
        credentials: credentials ?? CREDENTIALS,
        maxAttempts: opts.eksMaxAttempts ?? 4,
      })) as EksClientFactory,
  };
  const handler = createWorker({
    config,
    policy,
    clients: {
      eks: eksClient,
      // The worker's own identity: its dead letters carry its SenderId, which DEAD_LETTER_SENDERS names.
      sqs: aws.sqsAs(workerActor),
      dynamodb: aws.dynamodb,
      // The audit bus takes eks-access-grants records only from the roles its policy names.
      eventbridge: aws.eventbridgeAs(workerActor),
      scheduler: aws.scheduler,
      ...fleet,
    },
    logger,
    ...(opts.scheduler && { scheduler: opts.scheduler }),
    ...(opts.now && { now: opts.now }),
    onEksCall: (op) => eksCalls.push(op),
  });
  const sqsOf = (sender: Sender): SQSClient => (sender === 'stranger' ? aws.sqs : aws.sqsAs(sender));
  const runner = createSqsRunner({
    sqs: aws.sqsAs(workerActor),
    queueUrl: aws.queueUrl,
    queueArn: aws.queueArn,
    handler,
    batchSize: 10,
    functionTimeoutMs: 30_000,
  });

  return {
    eks,
    sts,
    /** Spread into a worker's clients so it reaches staging through the target role. */
    fleet,
    aws,
    config,
    logger,
    handler,
    runner,
    eksCalls,
    workerActor,
    /** An SQS client as `sender` ('stranger': a key local SQS does not know). */
    sqsOf,
    /**
     * Enqueues a request as its legitimate sender would (the intake, scheduler or operator of its source;
     * group = hash of cluster+principal).
     */
    async send(request: AccessRequest | Record<string, unknown>, body?: string) {
      const text = body ?? JSON.stringify(request);
      await this.sendAs(legitimateSender(text, workerName), request, text);
    },
    /** Enqueues a request with `sender`'s credentials, whoever the body says sent it. */
    async sendAs(sender: Sender, request: AccessRequest | Record<string, unknown>, body?: string) {
      const r = request as Partial<AccessRequest>;
      await sqsOf(sender).send(
        new SendMessageCommand({
          QueueUrl: aws.queueUrl,
          MessageBody: body ?? JSON.stringify(request),
          MessageGroupId: messageGroupId(
            String(r.clusterName ?? 'unknown'),
            String(r.principalArn ?? 'unknown'),
          ),
          MessageDeduplicationId: `${String(r.requestId ?? 'x')}-${Math.random().toString(36).slice(2)}`,
        }),
      );
    },
    /**
     * Processes until the queue is idle (including messages waiting out a visibility timeout). `maxMs` is
     * only a ceiling for a stuck run: on a busy machine a few retried messages can take a minute.
     */
    drain(maxMs = 150_000) {
      return runner.runUntilIdle({ maxMs });
    },
    /**
     * Invokes the handler directly with an SQS-shaped event (no queue involved), each record stamped with
     * its body's legitimate sender unless `senderId` says otherwise.
     */
    invoke(bodies: string[], receiveCount = 1, senderId?: string): Promise<SQSBatchResponse> {
      const event: SQSEvent = {
        Records: bodies.map((body, i) => ({
          messageId: `m-${i}-${Math.random().toString(36).slice(2)}`,
          receiptHandle: `rh-${i}`,
          body,
          attributes: {
            ApproximateReceiveCount: String(receiveCount),
            SentTimestamp: String(Date.now()),
            SenderId: senderId ?? LOCAL_IDENTITIES[legitimateSender(body, workerName)].senderId,
            ApproximateFirstReceiveTimestamp: String(Date.now()),
            MessageGroupId: `g-${i}`,
            MessageDeduplicationId: `d-${i}`,
            SequenceNumber: String(i),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: aws.queueArn,
          awsRegion: REGION,
        })),
      };
      return handler(event, fakeContext()) as Promise<SQSBatchResponse>;
    },
    /** The audit records on the bus (not the expiring-soon reminders, which are no audit record). */
    audits(): AuditRecord[] {
      // The audit log: what the audit bus's archive rule took, as local mode and the CLI read it (without the
      // expiring-soon reminders it also holds: they are no audit record).
      return aws
        .auditEvents()
        .filter((e) => e.detailType === AUDIT_DETAIL_TYPE)
        .map((e) => e.detail as AuditRecord);
    },
    /** The expiring-soon reminders the Scheduler emulator put on the audit bus. */
    reminders(): ExpiringSoonEvent[] {
      return aws
        .auditEvents()
        .filter((e) => e.detailType === EXPIRING_SOON_DETAIL_TYPE)
        .map((e) => e.detail as ExpiringSoonEvent);
    },
    auditsFor(requestId: string): AuditRecord[] {
      return this.audits().filter((a) => a.requestId === requestId);
    },
    async dlqBodies(): Promise<string[]> {
      const out: string[] = [];
      for (;;) {
        const r = await aws.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: aws.dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
        );
        if (!r.Messages?.length) return out;
        out.push(...r.Messages.map((m) => m.Body ?? ''));
      }
    },
    async queueDepth(): Promise<number> {
      const a = await aws.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: aws.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return (
        Number(a.Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
      );
    },
    async close() {
      await runner.stop?.();
      // Every record any test published, whatever it asserted, must be a valid AuditRecord v1.
      const audits = this.audits();
      const reminders = this.reminders();
      await aws.close();
      await eks.close();
      await sts.close();
      expectValidAuditRecords(audits);
      expectValid(expiringSoonJsonSchema(), 'expiring-soon.v1', reminders);
    },
  };
}

/** Throws, naming the first offender and ajv's errors, unless every record matches the published schema. */
export function expectValidAuditRecords(records: readonly unknown[]): void {
  expectValid(auditRecordJsonSchema(), 'audit-record.v1', records);
}

function expectValid(schema: Record<string, unknown>, name: string, records: readonly unknown[]): void {
  for (const record of records) {
    const errors = schemaErrors(schema, record);
    if (errors.length > 0) {
      throw new Error(`event does not match ${name}: ${errors.join('; ')}\n${JSON.stringify(record)}`);
    }
  }
}

export function fakeContext(timeoutMs = 30_000): Context {
  return lambdaContext({ functionName: 'grant-worker', timeoutMs, region: REGION, memoryLimitInMB: 512 });
}
