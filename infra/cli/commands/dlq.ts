/**
 * `dlq list` and `dlq redrive [--all | --message ID] [--dry-run]`.
 *
 * Listing peeks: it receives every message (keeping them in flight while it reads, so each is seen
 * once), then makes them visible again at once. A FIFO queue returns a message group's messages in
 * order and none of the group while one is in flight, so a group with more than 10 dead letters shows
 * its first 10.
 *
 * Redrive is an SQS message move task (StartMessageMoveTask) from the DLQ back to its source queue, never
 * a receive-and-resend: a move keeps each message as the worker dead-lettered it, while a re-send would
 * carry the operator's SenderId, which the queue's sender binding accepts only for source `operator`.
 * A move task cannot pick messages, so `--message ID` holds every other message of the DLQ in flight,
 * starts the task, cancels it once the one message has moved, and releases the others.
 */
import {
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { Reason } from '../../../functions/core/types.js';
import { readAudit } from '../audit-source.js';
import { clustersOf } from '../clusters.js';
import { type Command, type Context, optStr } from '../context.js';
import { CliError } from '../errors.js';
import { dash, table } from '../output.js';
import type { QueueRef } from '../target.js';

export interface DeadLetter {
  queue: string;
  messageId: string;
  requestId: string | null;
  clusterName: string | null;
  /** Where the cluster is (fleet), from the guardrail policy; null when the policy does not name it. */
  account: string | null;
  region: string | null;
  principalArn: string | null;
  source: string | null;
  action: string | null;
  grantId: string | null;
  /** When the message reached the DLQ. */
  sentAt: string | null;
  receiveCount: number;
  /** From the request's `failed` audit record (else the worker's errorCode/errorMessage attributes). */
  reason: Reason | null;
}

/** How long peeked messages stay hidden while we read them. */
const PEEK_VISIBILITY_SECONDS = 30;
/** How long `--message` holds the other dead letters back from the move task. */
const HOLD_SECONDS = 300;
const MOVE_TIMEOUT_MS = 120_000;

interface Peeked {
  queue: QueueRef;
  messages: Message[];
}

export const dlqList: Command = {
  spec: {
    name: 'dlq list',
    summary: 'dead-lettered requests, each with the reason from its failed audit record',
    flags: {},
  },
  async run(ctx) {
    const sqs = ctx.clients.sqs();
    const letters: DeadLetter[] = [];
    for (const queue of dlqs(ctx)) {
      const peeked = await peek(sqs, queue, PEEK_VISIBILITY_SECONDS);
      await release(sqs, queue, peeked.messages);
      letters.push(...peeked.messages.map((m) => describe(queue, m)));
    }
    await addReasons(ctx, letters);
    const clusters = await clustersOf(ctx);
    for (const l of letters) {
      const where = l.clusterName === null ? undefined : clusters?.resolve(l.clusterName);
      l.account = where?.account ?? null;
      l.region = where?.region ?? null;
    }
    const text =
      letters.length === 0
        ? '(no dead letters)'
        : table(
            [
              'queue',
              'message',
              'request',
              'source',
              'cluster',
              'account/region',
              'principal',
              'dead-lettered',
              'reason',
            ],
            letters.map((l) => [
              l.queue,
              l.messageId,
              dash(l.requestId),
              dash(l.source),
              dash(l.clusterName),
              l.account === null ? '-' : `${l.account}/${l.region}`,
              dash(l.principalArn),
              dash(l.sentAt),
              l.reason ? `${l.reason.code}: ${l.reason.message.slice(0, 100)}` : '-',
            ]),
          );
    return { json: letters, text, exit: 0 };
  },
};

export const dlqRedrive: Command = {
  spec: {
    name: 'dlq redrive',
    summary: 'move dead letters back to their queue (SQS message move task), all or one',
    flags: {
      all: { type: 'boolean', help: 'every message of every DLQ' },
      message: { type: 'string', arg: 'ID', help: 'only this message (its id, as dlq list shows it)' },
      'dry-run': { type: 'boolean', help: 'show what would move; move nothing' },
    },
    exclusive: [['all', 'message']],
  },
  async run(ctx) {
    const messageId = optStr(ctx, 'message');
    if (!ctx.flags.all && messageId === undefined)
      throw new CliError('dlq redrive needs --all or --message ID');
    const dryRun = ctx.flags['dry-run'] === true;
    const sqs = ctx.clients.sqs();
    const moved: { queue: string; to: string; messageIds: string[] }[] = [];
    for (const queue of dlqs(ctx)) {
      const source = sourceOf(ctx, queue);
      const peeked = await peek(sqs, queue, messageId === undefined ? PEEK_VISIBILITY_SECONDS : HOLD_SECONDS);
      const chosen =
        messageId === undefined ? peeked.messages : peeked.messages.filter((m) => m.MessageId === messageId);
      const others = peeked.messages.filter((m) => !chosen.includes(m));
      if (chosen.length === 0 || dryRun) {
        await release(sqs, queue, peeked.messages);
        if (chosen.length > 0)
          moved.push({ queue: queue.name, to: source.name, messageIds: chosen.map(idOf) });
        continue;
      }
      try {
        const group = chosen[0]?.Attributes?.MessageGroupId;
        if (
          messageId !== undefined &&
          group !== undefined &&
          others.some((m) => m.Attributes?.MessageGroupId === group)
        ) {
          // Held group mates would block it (FIFO), and moving it alone would reorder work on one principal.
          throw new CliError(
            `message ${messageId} shares its message group (the same cluster and principal) with ${
              others.filter((m) => m.Attributes?.MessageGroupId === group).length
            } other dead letter(s) in ${queue.name}; redrive them in order with --all`,
          );
        }
        await release(sqs, queue, chosen);
        await moveAll(sqs, queue, source, messageId !== undefined);
      } finally {
        await release(sqs, queue, others);
      }
      moved.push({ queue: queue.name, to: source.name, messageIds: chosen.map(idOf) });
    }
    if (messageId !== undefined && moved.length === 0) {
      throw new CliError(
        `no message ${messageId} in ${dlqs(ctx)
          .map((q) => q.name)
          .join(' or ')}; see dlq list`,
      );
    }
    const count = moved.reduce((n, m) => n + m.messageIds.length, 0);
    const text =
      count === 0
        ? '(no dead letters to redrive)'
        : moved
            .map(
              (m) =>
                `${dryRun ? 'would move' : 'moved'} ${m.messageIds.length} message(s) from ${m.queue} to ${m.to}: ${m.messageIds.join(', ')}`,
            )
            .join('\n');
    return { json: { dryRun, moved }, text, exit: 0 };
  },
};

function dlqs(ctx: Context): QueueRef[] {
  return ctx.target.queues.filter((q) => q.dlq);
}

function sourceOf(ctx: Context, dlq: QueueRef): QueueRef {
  const source = ctx.target.queues.find((q) => !q.dlq && q.worker === dlq.worker);
  if (!source) throw new CliError(`no source queue is known for ${dlq.name}`);
  return source;
}

const idOf = (m: Message) => m.MessageId ?? '';

async function peek(sqs: SQSClient, queue: QueueRef, visibility: number): Promise<Peeked> {
  const messages: Message[] = [];
  const seen = new Set<string>();
  for (let empty = 0; empty < 2; ) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: visibility,
        WaitTimeSeconds: 0,
        // local-aws-sqs answers only the older AttributeNames; SQS takes both.
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const fresh = (out.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
    if (fresh.length === 0) {
      empty++;
      continue;
    }
    for (const m of fresh) seen.add(m.MessageId as string);
    messages.push(...fresh);
  }
  return { queue, messages };
}

async function release(sqs: SQSClient, queue: QueueRef, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const batch = messages.slice(i, i + 10);
    const out = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queue.url,
        Entries: batch.map((m, j) => ({
          Id: String(j),
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
    // A failed entry only stays hidden until its visibility timeout ends; retry it once on its own.
    for (const f of out.Failed ?? []) {
      const m = batch[Number(f.Id)];
      if (m?.ReceiptHandle) {
        await sqs
          .send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queue.url,
              ReceiptHandle: m.ReceiptHandle,
              VisibilityTimeout: 0,
            }),
          )
          .catch(() => undefined);
      }
    }
  }
}

async function arnOf(sqs: SQSClient, queue: QueueRef): Promise<string> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ['QueueArn'] }),
  );
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new CliError(`no QueueArn for ${queue.name}`);
  return arn;
}

/** Starts a move task and waits for it to end (or, for one message, to have moved one, then cancels it). */
async function moveAll(sqs: SQSClient, dlq: QueueRef, source: QueueRef, justOne: boolean): Promise<void> {
  const SourceArn = await arnOf(sqs, dlq);
  const DestinationArn = await arnOf(sqs, source);
  const started = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn, DestinationArn }));
  const deadline = Date.now() + MOVE_TIMEOUT_MS;
  for (;;) {
    const tasks = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn, MaxResults: 10 }));
    const task = tasks.Results?.find((t) => t.TaskHandle === started.TaskHandle) ?? tasks.Results?.[0];
    const status = task?.Status;
    if (status === 'COMPLETED' || status === 'CANCELLED') return;
    if (status === 'FAILED')
      throw new CliError(
        `the move task from ${dlq.name} failed: ${task?.FailureReason ?? 'no reason given'}`,
      );
    if (
      justOne &&
      (task?.ApproximateNumberOfMessagesMoved ?? 0) >= 1 &&
      status === 'RUNNING' &&
      started.TaskHandle
    ) {
      await sqs
        .send(new CancelMessageMoveTaskCommand({ TaskHandle: started.TaskHandle }))
        .catch(() => undefined);
      return;
    }
    if (Date.now() > deadline)
      throw new CliError(`the move task from ${dlq.name} is still ${status ?? 'unknown'}; see dlq list`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function describe(queue: QueueRef, m: Message): DeadLetter {
  let body: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(m.Body ?? '');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      body = parsed as Record<string, unknown>;
  } catch {
    // A malformed body is listed as is: its failed record is keyed by message id instead.
  }
  const s = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : null);
  const sent = Number(m.Attributes?.SentTimestamp);
  const code = m.MessageAttributes?.errorCode?.StringValue;
  const message = m.MessageAttributes?.errorMessage?.StringValue;
  return {
    queue: queue.name,
    messageId: m.MessageId ?? '',
    requestId: s('requestId'),
    clusterName: s('clusterName'),
    account: null,
    region: null,
    principalArn: s('principalArn'),
    source: s('source'),
    action: s('action'),
    grantId: s('grantId'),
    sentAt: Number.isFinite(sent) && sent > 0 ? new Date(sent).toISOString() : null,
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
    reason: code ? { code, message: message ?? '' } : null,
  };
}

async function addReasons(ctx: Context, letters: DeadLetter[]): Promise<void> {
  const ids = [...new Set(letters.flatMap((l) => (l.requestId ? [l.requestId] : [])))];
  if (ids.length === 0) return;
  const events = await readAudit(
    ctx.target,
    () => ctx.clients.logs(),
    { requestIds: ids, outcomes: ['failed'] },
    ctx.now(),
  );
  const latest = new Map<string, Reason>();
  for (const e of events.sort((a, b) => a.record.at.localeCompare(b.record.at))) {
    if (e.record.reason) latest.set(e.record.requestId, e.record.reason);
  }
  for (const l of letters) {
    const r = l.requestId ? latest.get(l.requestId) : undefined;
    if (r) l.reason = r;
  }
}
