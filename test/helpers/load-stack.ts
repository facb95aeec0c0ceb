/**
 * The harness' loopback stack, driven the way Lambda scales out: several pollers, each invocation on its
 * own "execution environment" (its own worker and EKS client, so SDK retry quotas and rate limiters are
 * per environment as in AWS), with hooks to crash invocations and to inject client-side timeouts.
 * Used by the reliability suite and the throughput benchmark; test/helpers/harness.ts stays the simple
 * one-poller form the integration tests use.
 */
import { EKSClient, type EKSClientConfig } from '@aws-sdk/client-eks';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { messageGroupId } from '../../functions/adapters/queue.js';
import type { WorkerConfig } from '../../functions/config.js';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import type { ServiceLogger } from '../../functions/service/grant-service.js';
import { createWorker } from '../../functions/service/worker.js';
import { createSqsRunner, type SqsHandler, type SqsRunner } from '../../infra/local/lambda-runner.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { CREDENTIALS, type Harness, legitimateSender, REGION, startHarness } from './harness.js';

export interface LoadStackOptions {
  /** Pollers side by side, like Lambda's concurrent executions (default 4). */
  concurrency?: number;
  /** The queue's redrive maxReceiveCount, and the worker's (default 5, the production default). */
  maxReceiveCount?: number;
  /** Queue visibility timeout (default 30 s). Keep it above functionTimeoutMs plus an SDK backoff. */
  visibilityTimeoutSeconds?: number;
  /**
   * The runner's function timeout (default 30 s). When it fires, the runner returns the batch while the
   * handler runs on in the background (a real Lambda would be frozen), so replays are not accounted for:
   * for exact books, set this high and let `trackInvocations` enforce the timeout instead.
   */
  functionTimeoutMs?: number;
  policy?: GuardrailPolicy;
  /** Worker config overrides (retry delays, deadline margin, EKS attempts). */
  config?: Partial<WorkerConfig>;
  /** Extra EKS client options per execution environment: retryMode, maxAttempts, retryStrategy. */
  eksClientConfig?: () => Partial<EKSClientConfig>;
  /** Called with each environment's EKS client, e.g. to add fault-injecting middleware. */
  decorateEksClient?: (client: EKSClient) => void;
  /** Wraps the pooled handler, e.g. with `trackInvocations`. */
  wrapHandler?: (handler: SqsHandler) => SqsHandler;
}

export interface LoadStack {
  h: Harness;
  config: WorkerConfig;
  runner: SqsRunner;
  /** Every EKS call the workers made (adapter level: one per logical call, SDK retries not included). */
  eksOps: string[];
  /** Worker log lines of level warn and error (info/debug are dropped to keep long runs lean). */
  warnings: Array<{ level: string; message: string; extra: Record<string, unknown>[] }>;
  /** Execution environments created (≥ concurrency when an overrun kept one busy). */
  environments(): number;
  /** Enqueues bodies in order, 10 per SendMessageBatch, each group = hash(cluster, principal) as intake does. */
  sendAll(
    messages: ReadonlyArray<{ clusterName: string; principalArn: string; body: string }>,
  ): Promise<void>;
  close(): Promise<void>;
}

export async function startLoadStack(opts: LoadStackOptions = {}): Promise<LoadStack> {
  const concurrency = opts.concurrency ?? 4;
  const maxReceiveCount = opts.maxReceiveCount ?? 5;
  const functionTimeoutMs = opts.functionTimeoutMs ?? 30_000;
  const h = await startHarness({
    maxReceiveCount,
    visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds ?? 30,
    ...(opts.policy && { policy: opts.policy }),
  });
  const config: WorkerConfig = { ...h.config, maxReceiveCount, ...opts.config };
  const policy = opts.policy ?? (await loadPolicyFile(EXAMPLE_POLICY_PATH));
  const eksOps: string[] = [];
  const warnings: LoadStack['warnings'] = [];
  const logger: ServiceLogger = {
    debug: () => {},
    info: () => {},
    warn: (message, ...extra) => warnings.push({ level: 'warn', message, extra }),
    error: (message, ...extra) => warnings.push({ level: 'error', message, extra }),
  };
  const clients: EKSClient[] = [];

  // One worker per execution environment: Lambda never runs two invocations in one environment at once,
  // and each environment builds its own clients at cold start.
  const newEnvironment = (): SqsHandler => {
    const eks = new EKSClient({
      region: REGION,
      endpoint: h.eks.endpoint,
      credentials: CREDENTIALS,
      maxAttempts: config.eksMaxAttempts,
      retryMode: 'standard',
      ...opts.eksClientConfig?.(),
    });
    opts.decorateEksClient?.(eks);
    clients.push(eks);
    return createWorker({
      config,
      policy,
      clients: {
        eks,
        sqs: h.aws.sqsAs(h.workerActor),
        dynamodb: h.aws.dynamodb,
        eventbridge: h.aws.eventbridgeAs(h.workerActor),
        scheduler: h.aws.scheduler,
        ...h.fleet,
      },
      logger,
      onEksCall: (op) => eksOps.push(op),
    }) as SqsHandler;
  };
  const idle: SqsHandler[] = Array.from({ length: concurrency }, newEnvironment);
  let created = concurrency;
  const pooled: SqsHandler = async (event, context) => {
    const env =
      idle.pop() ??
      (() => {
        created += 1;
        return newEnvironment();
      })();
    try {
      return await env(event, context);
    } finally {
      idle.push(env);
    }
  };

  const handler = opts.wrapHandler ? opts.wrapHandler(pooled) : pooled;
  const runner = createSqsRunner({
    sqs: h.aws.sqsAs(h.workerActor),
    queueUrl: h.aws.queueUrl,
    queueArn: h.aws.queueArn,
    handler,
    batchSize: 10,
    concurrency,
    functionTimeoutMs,
    onError: (err) => {
      if (!(err instanceof InvocationCrash))
        warnings.push({ level: 'runner', message: String(err), extra: [] });
    },
  });

  return {
    h,
    config,
    runner,
    eksOps,
    warnings,
    environments: () => created,
    async sendAll(messages) {
      // One batch per run of messages with the same legitimate sender (the source's intake, scheduler, …).
      for (let i = 0; i < messages.length; ) {
        const sender = legitimateSender(messages[i]?.body ?? '');
        let end = i + 1;
        while (
          end < messages.length &&
          end - i < 10 &&
          legitimateSender(messages[end]?.body ?? '') === sender
        )
          end += 1;
        const chunk = messages.slice(i, end);
        const out = await h.aws.sqsAs(sender).send(
          new SendMessageBatchCommand({
            QueueUrl: h.aws.queueUrl,
            Entries: chunk.map((m, j) => ({
              Id: String(j),
              MessageBody: m.body,
              MessageGroupId: messageGroupId(m.clusterName, m.principalArn),
              MessageDeduplicationId: `m-${i + j}-${Math.random().toString(36).slice(2)}`,
            })),
          }),
        );
        if (out.Failed?.length) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed)}`);
        i = end;
      }
    },
    async close() {
      await runner.stop();
      for (const c of clients) c.destroy();
      await h.close();
    },
  };
}

/** What the runner saw thrown when `trackInvocations` crashed or timed out an invocation. */
export class InvocationCrash extends Error {
  override name = 'InvocationCrash';
}

export interface InvocationTracking {
  wrap: (handler: SqsHandler) => SqsHandler;
  /**
   * Bodies of records whose processing completed (a terminal audit record was published) inside an
   * invocation whose result was then lost, by a deliberate crash or a timeout: SQS delivers them again
   * (its replay). A replay publishes a second record only when the worker cannot tell from the ledger that
   * the message already reported (its first record changed nothing it marks: `rejected`, some `unchanged`).
   */
  replayedBodies: string[];
  /** The same records as `replayedBodies`, with their SQS message ids (a redelivery keeps the id). */
  replayed: Array<{ messageId: string; body: string }>;
  /** Invocations crashed on purpose, with how many records had completed before the crash. */
  crashes: Array<{ batchSize: number; completed: number }>;
  /** Invocations that returned after the function timeout (their results are discarded, as Lambda does). */
  timeouts: number;
  invocations: number;
}

/**
 * Wraps a batch handler to play two Lambda failure modes precisely enough to keep exact books:
 * - a crash partway through a batch: once, on the first invocation at or after `crashAtInvocation` that
 *   holds more than `crashAfterRecords` records, only the first `crashAfterRecords` records are processed
 *   and then the invocation throws, so the runner returns the whole batch to the queue;
 * - a timeout: an invocation that returns after `functionTimeoutMs` is treated as timed out (its result
 *   is discarded and it throws). Lambda would kill it mid-flight; here it finished, so the records it
 *   completed are known and expected to be replayed.
 * The handler is awaited to the end either way, so a redelivered message never overlaps its first run.
 */
export function trackInvocations(opts: {
  functionTimeoutMs: number;
  crashAtInvocation?: number;
  crashAfterRecords?: number;
}): InvocationTracking {
  // Decided synchronously when an invocation starts, so two concurrent invocations cannot both crash.
  let crashArmed = opts.crashAtInvocation !== undefined;
  const tracking: InvocationTracking = {
    wrap: (inner) => async (event: SQSEvent, context: Context) => {
      tracking.invocations += 1;
      const n = tracking.invocations;
      const deadline = Date.now() + opts.functionTimeoutMs;
      const ctx: Context = { ...context, getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
      const crashAfter = opts.crashAfterRecords ?? 0;
      const crashNow = crashArmed && n >= (opts.crashAtInvocation ?? 0) && event.Records.length > crashAfter;
      if (crashNow) crashArmed = false;
      const records = crashNow ? event.Records.slice(0, crashAfter) : event.Records;
      const response = (await inner({ Records: records }, ctx)) as SQSBatchResponse | undefined;
      const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      const completed = records.filter((r) => !failed.has(r.messageId));
      if (crashNow) {
        tracking.crashes.push({ batchSize: event.Records.length, completed: completed.length });
        tracking.replayedBodies.push(...completed.map((r) => r.body));
        tracking.replayed.push(...completed.map((r) => ({ messageId: r.messageId, body: r.body })));
        throw new InvocationCrash(
          `crashed on purpose after ${completed.length} of ${event.Records.length} records`,
        );
      }
      if (Date.now() > deadline) {
        tracking.timeouts += 1;
        tracking.replayedBodies.push(...completed.map((r) => r.body));
        tracking.replayed.push(...completed.map((r) => ({ messageId: r.messageId, body: r.body })));
        throw new InvocationCrash(`invocation ${n} overran its ${opts.functionTimeoutMs} ms timeout`);
      }
      return response;
    },
    replayedBodies: [],
    replayed: [],
    crashes: [],
    timeouts: 0,
    invocations: 0,
  };
  return tracking;
}

/**
 * Client-side timeouts after the request reached EKS: the call is applied but its answer is lost, the
 * nastiest kind (a retried CreateAccessEntry then meets ResourceInUseException, a retried
 * DisassociateAccessPolicy meets ResourceNotFoundException). The SDK classifies a `TimeoutError` as
 * transient and retries it, as it would a socket timeout.
 */
export function injectLostResponses(
  client: EKSClient,
  opts: {
    /** Probability per successful call. */
    rate: number;
    random: () => number;
    /** Counts what was injected, per command name. */
    counter: { injected: number; byCommand?: Record<string, number> };
    /** Limits injection, e.g. to one command ('DisassociateAccessPolicyCommand') or one principal. */
    only?: (commandName: string, input: Record<string, unknown>) => boolean;
  },
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const command = String(context.commandName ?? '');
      const input = ((args as unknown as { input?: Record<string, unknown> }).input ?? {}) as Record<
        string,
        unknown
      >;
      if ((!opts.only || opts.only(command, input)) && opts.random() < opts.rate) {
        opts.counter.injected += 1;
        if (opts.counter.byCommand)
          opts.counter.byCommand[command] = (opts.counter.byCommand[command] ?? 0) + 1;
        const err = new Error(`injected: the response to ${command} was lost after EKS applied it`);
        err.name = 'TimeoutError';
        throw err;
      }
      return out;
    },
    // Inside the retry middleware (finalizeRequest), outside deserialization: the SDK sees and retries it.
    { step: 'deserialize', name: 'injectLostResponses', priority: 'high' },
  );
}
