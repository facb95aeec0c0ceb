// Plays the Lambda SQS event-source mapping (with ReportBatchItemFailures) against a real queue: receive a batch,
// invoke the handler with a real SQSEvent and Context, delete what succeeded, leave the rest to their visibility
// timeout, so retries and redrive to the DLQ happen in SQS as they do in AWS. Per-group ordering and blocking of
// FIFO queues come from the queue (infra/local/sqs.ts patches local-aws-sqs to provide them).
import { randomBytes } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type {
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSMessageAttributes,
  SQSRecord,
  SQSRecordAttributes,
} from 'aws-lambda';
import { lambdaContext } from './lambda-context.js';

// biome-ignore lint/suspicious/noConfusingVoidType: a handler that reports no failures may return nothing.
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface SqsRunnerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  /** Messages per invocation, 1-10 (default 10, the SQS receive limit). */
  batchSize?: number;
  /** The function timeout: the invocation fails as a whole when the handler takes longer (default 30000). */
  functionTimeoutMs?: number;
  /** Pollers running side by side, like Lambda scaling out (default 1). */
  concurrency?: number;
  /** Long-poll wait per receive (default 0). */
  waitTimeSeconds?: number;
  /** Pause after an empty receive in start()/runUntilIdle() (default 50). */
  idleSleepMs?: number;
  region?: string;
  functionName?: string;
  memoryLimitInMB?: number;
  /** Handler errors, timeouts, invalid responses, failed deletes; default console.error. */
  onError?: (err: unknown) => void;
}

export interface PollResult {
  received: number;
  failed: number;
}

export interface RunSummary {
  batches: number;
  received: number;
  failed: number;
  /** False when maxMs ran out before the queue was empty. */
  idle: boolean;
}

export interface RunUntilIdleOptions {
  /** Consecutive empty receives before the queue counts as idle (default 3). */
  idlePolls?: number;
  /** Give up after this long (default 30000). */
  maxMs?: number;
}

export interface SqsRunner {
  pollOnce(): Promise<PollResult>;
  runUntilIdle(opts?: RunUntilIdleOptions): Promise<RunSummary>;
  start(): void;
  stop(): Promise<void>;
}

/** Lambda's own wording, so log assertions written against AWS still match. */
export class FunctionTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
    this.name = 'FunctionTimeoutError';
  }
}

/** The handler's response named a message that was not in the batch: Lambda fails the whole batch. */
export class InvalidBatchResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBatchResponseError';
  }
}

const RECORD_ATTRIBUTES = [
  'ApproximateReceiveCount',
  'SentTimestamp',
  'SenderId',
  'ApproximateFirstReceiveTimestamp',
  'SequenceNumber',
  'MessageGroupId',
  'MessageDeduplicationId',
  'AWSTraceHeader',
  'DeadLetterQueueSourceArn',
] as const;

export function createSqsRunner(opts: SqsRunnerOptions): SqsRunner {
  const batchSize = opts.batchSize ?? 10;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
    throw new Error(`batchSize must be 1-10 for an SQS FIFO event source, got ${batchSize}`);
  }
  const timeoutMs = opts.functionTimeoutMs ?? 30_000;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const idleSleepMs = opts.idleSleepMs ?? 50;
  const arnParts = opts.queueArn.split(':');
  const region = opts.region ?? arnParts[3] ?? 'us-east-1';
  const account = arnParts[4] ?? '123456789012';
  const functionName = opts.functionName ?? 'local-sqs-consumer';
  const onError = opts.onError ?? ((err: unknown) => console.error('[lambda-runner]', err));
  // One log stream per runner, as one warm execution environment would have.
  const logStreamName = `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${randomBytes(16).toString('hex')}`;

  const toRecord = (m: Message): SQSRecord => {
    const source = m.Attributes ?? {};
    const attributes: Record<string, string> = {};
    for (const name of RECORD_ATTRIBUTES) {
      const value = source[name];
      if (value !== undefined) attributes[name] = value;
    }
    const record: SQSRecord = {
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body: m.Body ?? '',
      attributes: attributes as unknown as SQSRecordAttributes,
      messageAttributes: toLambdaAttributes(m.MessageAttributes),
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: opts.queueArn,
      awsRegion: region,
    };
    if (m.MD5OfMessageAttributes) record.md5OfMessageAttributes = m.MD5OfMessageAttributes;
    return record;
  };

  const makeContext = (): Context =>
    lambdaContext({
      functionName,
      timeoutMs,
      region,
      account,
      memoryLimitInMB: opts.memoryLimitInMB ?? 1024,
      logStreamName,
    });

  const invoke = async (event: SQSEvent): Promise<unknown> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FunctionTimeoutError(timeoutMs)), timeoutMs);
    });
    try {
      // Lambda freezes a timed-out invocation; here it keeps running in the background, but its result is
      // ignored and nothing is deleted, exactly as in AWS.
      return await Promise.race([opts.handler(event, makeContext()), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const poll = async (): Promise<PollResult> => {
    const out = await opts.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: opts.queueUrl,
        MaxNumberOfMessages: batchSize,
        WaitTimeSeconds: opts.waitTimeSeconds ?? 0,
        // local-aws-sqs reads only the legacy AttributeNames; AWS reads MessageSystemAttributeNames. Send both.
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return { received: 0, failed: 0 };
    const event: SQSEvent = { Records: messages.map(toRecord) };
    let failedIds: Set<string>;
    try {
      failedIds = batchItemFailures(await invoke(event), event);
    } catch (err) {
      // A thrown error, a timeout or an invalid response fails the whole batch: nothing is deleted.
      onError(err);
      return { received: messages.length, failed: messages.length };
    }
    const done = event.Records.filter((r) => !failedIds.has(r.messageId));
    if (done.length > 0) {
      const res = await opts.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: opts.queueUrl,
          Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
        }),
      );
      // Typically the handler outlived the visibility timeout: the message is back in the queue and will run again.
      for (const f of res.Failed ?? []) {
        onError(
          new Error(`DeleteMessageBatch failed for ${done[Number(f.Id)]?.messageId}: ${f.Code} ${f.Message}`),
        );
      }
    }
    return { received: messages.length, failed: failedIds.size };
  };

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  const drained = async (): Promise<boolean> => {
    const out = await opts.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: opts.queueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = out.Attributes ?? {};
    return (
      Number(a.ApproximateNumberOfMessages ?? 0) === 0 &&
      Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) === 0 &&
      Number(a.ApproximateNumberOfMessagesDelayed ?? 0) === 0
    );
  };

  let loops: Promise<void>[] = [];
  let running = false;

  return {
    pollOnce: poll,

    async runUntilIdle(runOpts: RunUntilIdleOptions = {}): Promise<RunSummary> {
      const idlePolls = runOpts.idlePolls ?? 3;
      const deadline = Date.now() + (runOpts.maxMs ?? 30_000);
      const summary: RunSummary = { batches: 0, received: 0, failed: 0, idle: false };
      let emptyStreak = 0;
      const worker = async (): Promise<void> => {
        while (!summary.idle && Date.now() < deadline) {
          let result: PollResult;
          try {
            result = await poll();
          } catch (err) {
            onError(err);
            await sleep(idleSleepMs);
            continue;
          }
          if (result.received > 0) {
            summary.batches += 1;
            summary.received += result.received;
            summary.failed += result.failed;
            emptyStreak = 0;
            continue;
          }
          emptyStreak += 1;
          // An empty receive is not an empty queue: failed messages wait out their visibility timeout and a
          // FIFO group stays blocked meanwhile. Only stop when SQS holds nothing at all.
          if (emptyStreak >= idlePolls && (await drained())) {
            summary.idle = true;
            return;
          }
          await sleep(Math.min(idleSleepMs, Math.max(0, deadline - Date.now())));
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return summary;
    },

    start(): void {
      if (running) return;
      running = true;
      loops = Array.from({ length: concurrency }, async () => {
        while (running) {
          try {
            const result = await poll();
            if (result.received === 0) await sleep(idleSleepMs);
          } catch (err) {
            onError(err);
            await sleep(Math.max(idleSleepMs, 250));
          }
        }
      });
    },

    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
      loops = [];
    },
  };
}

/**
 * The ids of the messages to retry. Like Lambda: no response or an empty list means all succeeded; an entry
 * without an itemIdentifier, or naming a message not in the batch, fails the whole batch.
 */
function batchItemFailures(response: unknown, event: SQSEvent): Set<string> {
  const failed = new Set<string>();
  if (response === undefined || response === null) return failed;
  const list = (response as Partial<SQSBatchResponse>).batchItemFailures;
  if (list === undefined || list === null) return failed;
  if (!Array.isArray(list)) throw new InvalidBatchResponseError('batchItemFailures is not a list');
  const ids = new Set(event.Records.map((r) => r.messageId));
  for (const item of list as Array<{ itemIdentifier?: unknown } | null>) {
    const id = item?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !ids.has(id)) {
      throw new InvalidBatchResponseError(`batchItemFailures names an unknown itemIdentifier: ${String(id)}`);
    }
    failed.add(id);
  }
  return failed;
}

function toLambdaAttributes(attrs: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, v] of Object.entries(attrs ?? {})) {
    out[name] = {
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
      ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString('base64') } : {}),
      stringListValues: [],
      binaryListValues: [],
      dataType: v.DataType ?? 'String',
    };
  }
  return out;
}
