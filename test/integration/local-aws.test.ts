import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConditionalCheckFailedException, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  GetScheduleCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-scheduler';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSqsRunner,
  FunctionTimeoutError,
  InvalidBatchResponseError,
} from '../../infra/local/lambda-runner.js';
import { parseAt } from '../../infra/local/scheduler.js';
import { createQueues, type QueuePair } from '../../infra/local/sqs.js';
import { type LocalAws, localClientConfig, startLocalAws } from '../../infra/local/stack.js';

let aws: LocalAws;
let dir: string;
let logFile: string;
let queueCount = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-aws-'));
  logFile = join(dir, 'audit.jsonl');
  aws = await startLocalAws({
    auditLogFile: logFile,
    visibilityTimeoutSeconds: 1,
    maxReceiveCount: 2,
    tableDefinition: {
      TableName: 'grants',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    },
  });
});

afterAll(async () => {
  await aws?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// A fresh queue pair per test keeps messages of one test out of the next. A test that holds a message
// in flight across several calls asks for a visibility timeout no busy machine can outlast.
function freshQueues(maxReceiveCount = 2, visibilityTimeoutSeconds = 1): Promise<QueuePair> {
  queueCount += 1;
  return createQueues(aws.sqs, { name: `t${queueCount}`, visibilityTimeoutSeconds, maxReceiveCount });
}

async function send(queueUrl: string, body: string, group: string): Promise<string> {
  const out = await aws.sqs.send(
    new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageGroupId: group }),
  );
  return out.MessageId ?? '';
}

async function receive(queueUrl: string, max = 10, waitSeconds = 0): Promise<Message[]> {
  const out = await aws.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: waitSeconds,
      AttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return out.Messages ?? [];
}

async function counts(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const out = await aws.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bodies = (messages: Message[]) => messages.map((m) => m.Body);

describe('SQS (local-aws-sqs with FIFO fidelity)', () => {
  it('holds a message group while one of its messages is in flight and keeps the group in order', async () => {
    // a1 must stay in flight until it is deleted, however slow the calls in between are.
    const q = await freshQueues(2, 300);
    for (const [body, group] of [
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
    ] as const) {
      await send(q.queueUrl, body, group);
    }
    const first = await receive(q.queueUrl, 1);
    expect(bodies(first)).toEqual(['a1']);
    expect(bodies(await receive(q.queueUrl))).toEqual(['b1']);
    await aws.sqs.send(
      new DeleteMessageCommand({ QueueUrl: q.queueUrl, ReceiptHandle: first[0]?.ReceiptHandle }),
    );
    expect(bodies(await receive(q.queueUrl))).toEqual(['a2']);
  });

  it("returns a group's waiting messages together, in order, in one batch", async () => {
    const q = await freshQueues();
    for (const body of ['m1', 'm2', 'm3']) await send(q.queueUrl, body, 'g');
    const batch = await receive(q.queueUrl);
    expect(bodies(batch)).toEqual(['m1', 'm2', 'm3']);
    expect(batch.map((m) => m.Attributes?.MessageGroupId)).toEqual(['g', 'g', 'g']);
  });

  it('drops a re-send with the same deduplication id even after the first copy was consumed', async () => {
    const q = await freshQueues();
    const id = await send(q.queueUrl, 'same body', 'g');
    const [m] = await receive(q.queueUrl);
    await aws.sqs.send(new DeleteMessageCommand({ QueueUrl: q.queueUrl, ReceiptHandle: m?.ReceiptHandle }));
    expect(await send(q.queueUrl, 'same body', 'g')).toBe(id);
    expect(await receive(q.queueUrl)).toEqual([]);
  });

  it('keeps ApproximateReceiveCount on ChangeMessageVisibility 0 and redrives to the DLQ after maxReceiveCount receives', async () => {
    const q = await freshQueues(2);
    const id = await send(q.queueUrl, 'poison', 'g');
    for (const expected of ['1', '2']) {
      const [m] = await receive(q.queueUrl);
      expect(m?.Attributes?.ApproximateReceiveCount).toBe(expected);
      await aws.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: q.queueUrl,
          ReceiptHandle: m?.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
      await sleep(20);
    }
    expect(await receive(q.queueUrl)).toEqual([]);
    const [dead] = await receive(q.dlqUrl);
    expect(dead?.MessageId).toBe(id);
    expect(dead?.Body).toBe('poison');
    expect(dead?.Attributes?.DeadLetterQueueSourceArn).toBe(q.queueArn);
  });

  it('returns from a long poll as soon as a message arrives', async () => {
    const q = await freshQueues();
    const started = Date.now();
    setTimeout(() => void send(q.queueUrl, 'late', 'g'), 200);
    expect(bodies(await receive(q.queueUrl, 10, 5))).toEqual(['late']);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('EventBridge audit bus', () => {
  it('keeps PutEvents entries in events() and appends each audit record as a JSON line to the audit log', async () => {
    // As a publisher the audit bus policy names; LOCAL_CREDENTIALS is a stranger's key.
    const out = await aws.eventbridgeAs('grantWorker').send(
      new PutEventsCommand({
        Entries: [
          {
            Source: 'eks-access-grants',
            DetailType: 'AuditRecord',
            Detail: '{"outcome":"granted"}',
            EventBusName: 'audit',
          },
          {
            Source: 'eks-access-grants',
            DetailType: 'AuditRecord',
            Detail: '{"outcome":"revoked"}',
            EventBusName: 'audit',
          },
        ],
      }),
    );
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries?.every((e) => typeof e.EventId === 'string')).toBe(true);
    const mine = aws.eventbridgeEmulator.events().filter((e) => e.eventBusName === 'audit');
    expect(mine.map((e) => e.detail)).toEqual([{ outcome: 'granted' }, { outcome: 'revoked' }]);
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.slice(-2)).toEqual([
      expect.objectContaining({
        source: 'eks-access-grants',
        detailType: 'AuditRecord',
        eventBusName: 'audit',
        detail: { outcome: 'granted' },
      }),
      expect.objectContaining({ detail: { outcome: 'revoked' } }),
    ]);
    expect(typeof parsed.at(-1)?.time).toBe('string');
  });

  it('reports a malformed Detail per entry and fails whole calls after failNext', async () => {
    const client = new EventBridgeClient({ ...localClientConfig(aws.endpoints.eventbridge), maxAttempts: 1 });
    try {
      const out = await client.send(
        new PutEventsCommand({ Entries: [{ Source: 's', DetailType: 'd', Detail: 'not json' }] }),
      );
      expect(out.FailedEntryCount).toBe(1);
      expect(out.Entries?.[0]?.ErrorCode).toBe('MalformedDetail');

      aws.eventbridgeEmulator.failNext(1);
      const entry = { Source: 's', DetailType: 'd', Detail: '{}' };
      await expect(client.send(new PutEventsCommand({ Entries: [entry] }))).rejects.toMatchObject({
        name: 'InternalException',
        $metadata: { httpStatusCode: 500 },
      });
      expect((await client.send(new PutEventsCommand({ Entries: [entry] }))).FailedEntryCount).toBe(0);
    } finally {
      client.destroy();
    }
  });
});

describe('DynamoDB (dynalite)', () => {
  it('rejects a second attribute_not_exists put with ConditionalCheckFailedException', async () => {
    const put = new PutItemCommand({
      TableName: 'grants',
      Item: { pk: { S: 'grant#1' } },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    await aws.dynamodb.send(put);
    await expect(aws.dynamodb.send(put)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  });
});

describe('Scheduler', () => {
  const schedule = (
    name: string,
    q: QueuePair,
    at: Date,
    input = `{"expire":"${name}"}`,
  ): CreateScheduleCommandInput => ({
    Name: name,
    ScheduleExpression: `at(${at.toISOString().slice(0, 19)})`,
    ScheduleExpressionTimezone: 'UTC',
    FlexibleTimeWindow: { Mode: 'OFF' },
    ActionAfterCompletion: 'DELETE',
    Target: {
      Arn: q.queueArn,
      RoleArn: 'arn:aws:iam::123456789012:role/scheduler',
      Input: input,
      SqsParameters: { MessageGroupId: 'expiry-group' },
    },
  });

  it('fires an at() schedule into the queue when due and then deletes itself', async () => {
    const q = await freshQueues();
    const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
    await aws.scheduler.send(new CreateScheduleCommand(schedule('expire-1', q, due)));
    expect(await receive(q.queueUrl)).toEqual([]);
    const [m] = await receive(q.queueUrl, 10, 4);
    expect(Date.now()).toBeGreaterThanOrEqual(due.getTime());
    expect(m?.Body).toBe('{"expire":"expire-1"}');
    expect(m?.Attributes?.MessageGroupId).toBe('expiry-group');
    await expect(aws.scheduler.send(new GetScheduleCommand({ Name: 'expire-1' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    expect(aws.schedulerEmulator.fired()).toContainEqual(
      expect.objectContaining({ name: 'expire-1', groupName: 'default', at: due.toISOString() }),
    );
  });

  it('rejects a second schedule with the same name with ConflictException', async () => {
    const q = await freshQueues();
    const later = new Date(Date.now() + 3_600_000);
    await aws.scheduler.send(new CreateScheduleCommand(schedule('dup', q, later)));
    await expect(
      aws.scheduler.send(new CreateScheduleCommand(schedule('dup', q, later))),
    ).rejects.toBeInstanceOf(ConflictException);
    const got = await aws.scheduler.send(new GetScheduleCommand({ Name: 'dup' }));
    expect(got.Target?.SqsParameters?.MessageGroupId).toBe('expiry-group');
  });

  it('does not fire while paused and fires a past-due schedule on resume', async () => {
    const q = await freshQueues();
    aws.schedulerEmulator.pause();
    try {
      await aws.scheduler.send(
        new CreateScheduleCommand(schedule('paused', q, new Date(Date.now() - 60_000))),
      );
      await sleep(400);
      expect(await receive(q.queueUrl)).toEqual([]);
      expect(aws.schedulerEmulator.schedules().map((s) => s.name)).toContain('paused');
    } finally {
      aws.schedulerEmulator.resume();
    }
    expect(bodies(await receive(q.queueUrl, 10, 3))).toEqual(['{"expire":"paused"}']);
  });

  it('reads at() as wall-clock time in ScheduleExpressionTimezone', () => {
    expect(parseAt('at(2030-07-01T12:00:00)', 'Europe/Paris')).toBe(Date.UTC(2030, 6, 1, 10));
    expect(parseAt('at(2030-01-15T08:30:00)', 'America/New_York')).toBe(Date.UTC(2030, 0, 15, 13, 30));
    expect(parseAt('at(2030-01-15T08:30:00)', 'UTC')).toBe(Date.UTC(2030, 0, 15, 8, 30));
  });
});

describe('Lambda SQS event-source runner', () => {
  it('deletes the records not in batchItemFailures and retries the failed one until it lands in the DLQ', async () => {
    const q = await freshQueues(2);
    for (const [body, group] of [
      ['ok-1', 'g1'],
      ['bad', 'g2'],
      ['ok-2', 'g3'],
    ] as const) {
      await send(q.queueUrl, body, group);
    }
    const seen: Array<[string, string]> = [];
    const runner = createSqsRunner({
      sqs: aws.sqs,
      queueUrl: q.queueUrl,
      queueArn: q.queueArn,
      handler: async (event) => {
        for (const r of event.Records) seen.push([r.body, r.attributes.ApproximateReceiveCount]);
        return {
          batchItemFailures: event.Records.filter((r) => r.body === 'bad').map((r) => ({
            itemIdentifier: r.messageId,
          })),
        };
      },
    });

    expect(await runner.pollOnce()).toEqual({ received: 3, failed: 1 });
    expect(await counts(q.queueUrl)).toEqual({ visible: 0, inFlight: 1 });

    const summary = await runner.runUntilIdle({ maxMs: 10_000 });
    expect(summary).toMatchObject({ idle: true, batches: 1, received: 1, failed: 1 });
    expect(seen).toEqual([
      ['ok-1', '1'],
      ['bad', '1'],
      ['ok-2', '1'],
      ['bad', '2'],
    ]);
    expect(bodies(await receive(q.dlqUrl))).toEqual(['bad']);
  });

  it('returns the whole batch when the handler throws', async () => {
    const q = await freshQueues(3);
    for (const [body, group] of [
      ['x', 'g1'],
      ['y', 'g2'],
      ['z', 'g3'],
    ] as const) {
      await send(q.queueUrl, body, group);
    }
    const errors: unknown[] = [];
    let calls = 0;
    const receiveCounts: string[][] = [];
    const runner = createSqsRunner({
      sqs: aws.sqs,
      queueUrl: q.queueUrl,
      queueArn: q.queueArn,
      onError: (err) => errors.push(err),
      handler: async (event) => {
        calls += 1;
        receiveCounts.push(event.Records.map((r) => r.attributes.ApproximateReceiveCount));
        if (calls === 1) throw new Error('boom');
      },
    });
    expect(await runner.pollOnce()).toEqual({ received: 3, failed: 3 });
    expect(errors).toEqual([expect.objectContaining({ message: 'boom' })]);
    expect(await counts(q.queueUrl)).toEqual({ visible: 0, inFlight: 3 });

    expect(await runner.runUntilIdle({ maxMs: 10_000 })).toMatchObject({
      idle: true,
      received: 3,
      failed: 0,
    });
    expect(receiveCounts).toEqual([
      ['1', '1', '1'],
      ['2', '2', '2'],
    ]);
    expect(await receive(q.dlqUrl)).toEqual([]);
  });

  it('invokes the handler with a Lambda-shaped SQSEvent and Context', async () => {
    const q = await freshQueues();
    await aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: q.queueUrl,
        MessageBody: '{"hello":"world"}',
        MessageGroupId: 'shape',
        MessageAttributes: { kind: { DataType: 'String', StringValue: 'test' } },
      }),
    );
    let captured: { event: SQSEvent; context: Context; remaining: number } | undefined;
    const runner = createSqsRunner({
      sqs: aws.sqs,
      queueUrl: q.queueUrl,
      queueArn: q.queueArn,
      functionName: 'grant-worker',
      functionTimeoutMs: 5_000,
      handler: async (event, context) => {
        captured = { event, context, remaining: context.getRemainingTimeInMillis() };
      },
    });
    expect(await runner.pollOnce()).toEqual({ received: 1, failed: 0 });
    const record = captured?.event.Records[0];
    expect(record).toMatchObject({
      body: '{"hello":"world"}',
      eventSource: 'aws:sqs',
      eventSourceARN: q.queueArn,
      awsRegion: 'us-east-1',
      messageAttributes: {
        kind: { stringValue: 'test', dataType: 'String', stringListValues: [], binaryListValues: [] },
      },
      attributes: { ApproximateReceiveCount: '1', MessageGroupId: 'shape' },
    });
    expect(record?.md5OfBody).toMatch(/^[0-9a-f]{32}$/);
    expect(record?.attributes.MessageDeduplicationId).toMatch(/^[0-9a-f]{64}$/);
    expect(record?.attributes.SequenceNumber).toMatch(/^\d+$/);
    expect(Number(record?.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(captured?.context).toMatchObject({
      functionName: 'grant-worker',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:grant-worker',
      logGroupName: '/aws/lambda/grant-worker',
    });
    expect(captured?.context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(captured?.remaining).toBeGreaterThan(4_000);
    expect(captured?.remaining).toBeLessThanOrEqual(5_000);
    expect(await counts(q.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('fails the whole batch when the handler outlives the function timeout or names an unknown record', async () => {
    const q = await freshQueues();
    await send(q.queueUrl, 'slow', 'g1');
    await send(q.queueUrl, 'liar', 'g2');
    const errors: unknown[] = [];
    const runner = createSqsRunner({
      sqs: aws.sqs,
      queueUrl: q.queueUrl,
      queueArn: q.queueArn,
      batchSize: 1,
      functionTimeoutMs: 100,
      onError: (err) => errors.push(err),
      handler: async (event) => {
        if (event.Records[0]?.body === 'slow') await sleep(300);
        return { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] };
      },
    });
    expect(await runner.pollOnce()).toEqual({ received: 1, failed: 1 });
    expect(await runner.pollOnce()).toEqual({ received: 1, failed: 1 });
    expect(errors[0]).toBeInstanceOf(FunctionTimeoutError);
    expect(errors[1]).toBeInstanceOf(InvalidBatchResponseError);
    expect(await counts(q.queueUrl)).toEqual({ visible: 0, inFlight: 2 });
  });

  it('runs different message groups in parallel but each group one message at a time, in order', async () => {
    const q = await freshQueues();
    for (const group of ['a', 'b', 'c'])
      for (let i = 1; i <= 3; i++) await send(q.queueUrl, `${group}${i}`, group);
    const active = new Map<string, number>();
    const order = new Map<string, string[]>();
    let running = 0;
    let maxRunning = 0;
    let maxPerGroup = 0;
    const runner = createSqsRunner({
      sqs: aws.sqs,
      queueUrl: q.queueUrl,
      queueArn: q.queueArn,
      batchSize: 1,
      concurrency: 3,
      handler: async (event) => {
        const r = event.Records[0];
        const group = r?.attributes.MessageGroupId ?? '';
        running += 1;
        active.set(group, (active.get(group) ?? 0) + 1);
        maxRunning = Math.max(maxRunning, running);
        maxPerGroup = Math.max(maxPerGroup, active.get(group) ?? 0);
        order.set(group, [...(order.get(group) ?? []), r?.body ?? '']);
        await sleep(60);
        active.set(group, (active.get(group) ?? 1) - 1);
        running -= 1;
      },
    });
    const summary = await runner.runUntilIdle({ maxMs: 10_000 });
    expect(summary).toMatchObject({ idle: true, received: 9, failed: 0 });
    expect(maxPerGroup).toBe(1);
    expect(maxRunning).toBeGreaterThan(1);
    expect(Object.fromEntries(order)).toEqual({
      a: ['a1', 'a2', 'a3'],
      b: ['b1', 'b2', 'b3'],
      c: ['c1', 'c2', 'c3'],
    });
  });
});
