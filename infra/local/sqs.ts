// Loopback SQS for local mode and tests: local-aws-sqs (JSON protocol, FIFO, redrive, message moves) on
// 127.0.0.1, plus a small "FIFO fidelity" layer that patches the queue objects where local-aws-sqs 2.0.2
// differs from SQS in ways this project depends on (see patchQueue below), and a sender layer that stamps each
// message's SenderId from the caller's access key, as SQS stamps the caller's identity (see patchSenders).
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createRequestHandler } from 'local-aws-sqs';
import { closeServer, listenLoopback } from './http.js';
import { accessKeyIdOf, senderIdForKey } from './identities.js';

export interface SqsEmulator {
  endpoint: string;
  close(): Promise<void>;
}

export interface StartSqsOptions {
  port?: number;
  /** The account id local-aws-sqs puts into queue URLs and ARNs. */
  accountId?: string;
  /** Patch local-aws-sqs so FIFO queues behave like SQS (default true). */
  fifoFidelity?: boolean;
  /** The SenderId for a caller's access key id (default: infra/local/identities.ts; unknown keys are strangers). */
  senderIdForKey?: (accessKeyId: string | undefined) => string;
}

export interface QueuePair {
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}

export interface CreateQueuesOptions {
  /** Base name: creates `<name>.fifo` and `<name>-dlq.fifo`. */
  name: string;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
}

/** SQS keeps FIFO deduplication ids for five minutes. */
const DEDUP_WINDOW_MS = 5 * 60_000;
/** Fourteen days, the SQS maximum: a DLQ should outlive the operator's weekend. */
const DLQ_RETENTION_SECONDS = 1_209_600;

export async function startSqs(opts: StartSqsOptions = {}): Promise<SqsEmulator> {
  const { service, requestHandler } = createRequestHandler({
    port: opts.port ?? 0,
    hostname: '127.0.0.1',
    region: 'us-east-1',
    accountId: opts.accountId ?? '123456789012',
    // Tests create and delete queues freely; the 60 s AWS cool-down would only slow them down.
    emulateQueueCreationLifecycle: false,
  });
  const fidelity = opts.fifoFidelity ?? true;
  const senders = senderContext(service.Queues as unknown as PatchableQueue[]);
  const senderOf = opts.senderIdForKey ?? senderIdForKey;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // Queues appear through CreateQueue; patch them before any request can put a message in them. The sender
    // layer goes on first, under the fidelity layer's deduplication, so a suppressed duplicate stamps nothing.
    for (const q of service.Queues) {
      patchSenders(q as unknown as PatchableQueue, senders);
      if (fidelity) patchQueue(q as unknown as PatchableQueue);
    }
    const caller = senderOf(accessKeyIdOf(req.headers.authorization));
    senders.caller.run(caller, () =>
      requestHandler(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.statusCode = 500;
        res.end(String(err));
      }),
    );
  });
  const endpoint = await listenLoopback(server, opts.port);
  // local-aws-sqs builds queue URLs from this field; with port 0 it must learn the real port.
  service.PORT = Number(new URL(endpoint).port);
  return {
    endpoint,
    close: () => closeServer(server),
  };
}

/** Creates `<name>-dlq.fifo` and `<name>.fifo` (content-based dedup, redrive to the DLQ). */
export async function createQueues(client: SQSClient, opts: CreateQueuesOptions): Promise<QueuePair> {
  const dlq = await client.send(
    new CreateQueueCommand({
      QueueName: `${opts.name}-dlq.fifo`,
      Attributes: {
        FifoQueue: 'true',
        ContentBasedDeduplication: 'true',
        MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS),
      },
    }),
  );
  const dlqUrl = required(dlq.QueueUrl, 'CreateQueue returned no QueueUrl for the DLQ');
  const dlqArn = await queueArnOf(client, dlqUrl);
  const main = await client.send(
    new CreateQueueCommand({
      QueueName: `${opts.name}.fifo`,
      Attributes: {
        FifoQueue: 'true',
        ContentBasedDeduplication: 'true',
        VisibilityTimeout: String(opts.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.maxReceiveCount }),
      },
    }),
  );
  const queueUrl = required(main.QueueUrl, 'CreateQueue returned no QueueUrl');
  return { queueUrl, queueArn: await queueArnOf(client, queueUrl), dlqUrl, dlqArn };
}

/** Maps `arn:aws:sqs:<region>:<account>:<name>` to the emulator's URL for that queue. */
export function queueUrlFromArn(endpoint: string, arn: string): string {
  const parts = arn.split(':');
  const account = parts[4];
  const name = parts[5];
  if (parts.length !== 6 || parts[2] !== 'sqs' || !account || !name)
    throw new Error(`not an SQS queue ARN: ${arn}`);
  return `${endpoint}/${account}/${name}`;
}

async function queueArnOf(client: SQSClient, queueUrl: string): Promise<string> {
  const out = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return required(out.Attributes?.QueueArn, `no QueueArn for ${queueUrl}`);
}

function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// FIFO fidelity. local-aws-sqs 2.0.2 keeps each queue's messages in a private array of wrappers
// `{ visible, delayed, record, tm, tmRetention }`, and its receive loop (every 10 ms) hands out every wrapper
// that is visible and not delayed. Measured differences from SQS, each fixed here through the queue's public
// methods and the wrapper objects that `newRecord` returns:
//  1. No message-group blocking: while m1 of group g is in flight, m2 of g is delivered (SQS: g is blocked,
//     which is what serializes work per principal). Fixed by reporting blocked messages as `delayed`.
//  2. Long polling waits the full WaitTimeSeconds unless MaxNumberOfMessages are found, and a message whose
//     visibility expires during that wait is returned twice. Fixed: receive polls with wait 0 and returns as
//     soon as it has messages, like SQS.
//  3. ChangeMessageVisibility increments ApproximateReceiveCount, so "make it visible now" (timeout 0) costs a
//     receive and can push a message into the DLQ early. Fixed: the count is restored.
//  4. Deduplication only looks at messages still in the queue; SQS remembers ids for five minutes, so a
//     re-send after the first copy was consumed is silently accepted but not delivered. Fixed for
//     SendMessage/SendMessageBatch (not for redrive and message moves, which SQS does not deduplicate).
//  5. ApproximateNumberOfMessages counts in-flight messages too. Fixed: visible, undelayed messages only.
// Not fixed: redrive happens when the visibility timeout of the maxReceiveCount-th receive expires (SQS moves
// the message on the next receive attempt); the outcome, "in the DLQ after maxReceiveCount receives", is the same.
// ---------------------------------------------------------------------------------------------------------

interface MessageRecord {
  MessageId: string;
  ReceiptHandle: string;
  MessageBody?: string;
  attributes: Record<string, string | undefined>;
}

interface Wrapper {
  visible: boolean;
  delayed: boolean;
  record: MessageRecord;
  tmRetention?: { _destroyed?: boolean };
}

interface SetRecordInput {
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
  MessageBody?: string;
  QueueUrl?: string;
  Id?: string;
}

interface ReceiveArgs {
  VisibilityTimeout?: number;
  WaitTimeSeconds?: number;
  MaxNumberOfMessages?: number;
}

interface PatchableQueue {
  QueueName: string;
  FifoQueue: boolean;
  RedrivePolicy?: { deadLetterTargetArn?: string };
  DeduplicationScope?: 'messageGroup' | 'queue';
  ReceiveMessageWaitTimeSeconds: number;
  newRecord: (record: MessageRecord, delay?: number) => Wrapper;
  setRecord: (input: SetRecordInput, messageId?: string) => { record: MessageRecord } | Wrapper;
  receive(args: ReceiveArgs): Promise<MessageRecord[]>;
  delete(receiptHandle: string): boolean;
  changeVisibility(receiptHandle: string, visibilityTimeout: string): boolean;
  getAttributes(names?: string[]): Record<string, string> | undefined;
  clearRecords(): void;
  [PATCHED]?: true;
}

interface Slot {
  wrapper: Wrapper;
  messageId: string;
  groupId: string | undefined;
  gone: boolean;
  /** Token of the synchronous run that last took this message in flight. */
  takenIn: number;
  visible: boolean;
  delayed: boolean;
}

const PATCHED = Symbol('eks-access-grants.fifoFidelity');

// Token of the current synchronous run. local-aws-sqs takes a batch inside one timer callback, and Node drains
// microtasks between timer callbacks, so "taken in this run" means "taken by the receive now filling its batch".
let runToken = 0;
let runOpen = false;
function currentRun(): number {
  if (!runOpen) {
    runOpen = true;
    runToken += 1;
    queueMicrotask(() => {
      runOpen = false;
    });
  }
  return runToken;
}

function patchQueue(q: PatchableQueue): void {
  if (q[PATCHED]) return;
  q[PATCHED] = true;
  const slots = new Map<string, Slot>();
  const groups = new Map<string, Slot[]>();
  const dedup = new Map<string, { at: number; record: MessageRecord }>();
  let sincePrune = 0;

  const isGone = (slot: Slot): boolean => {
    // local-aws-sqs clears a message's retention timer whenever it removes the message (delete, redrive, purge,
    // retention); that is the one signal every removal path leaves on the wrapper.
    if (!slot.gone && slot.wrapper.tmRetention?._destroyed === true) slot.gone = true;
    return slot.gone;
  };

  const prune = (): void => {
    for (const [id, slot] of slots) if (isGone(slot)) slots.delete(id);
    for (const [group, list] of groups) {
      const live = list.filter((s) => !isGone(s));
      if (live.length === 0) groups.delete(group);
      else groups.set(group, live);
    }
    const cutoff = Date.now() - DEDUP_WINDOW_MS;
    for (const [key, entry] of dedup) if (entry.at < cutoff) dedup.delete(key);
  };

  // SQS: while any message of a group is in flight, no other message of that group is returned; and a group's
  // messages come out in order. Messages taken by the very receive now running do not block (SQS returns a
  // group's messages together, in order, within one batch).
  const blocked = (slot: Slot): boolean => {
    if (!q.FifoQueue || slot.groupId === undefined) return false;
    const list = groups.get(slot.groupId);
    if (!list) return false;
    let earlier = true;
    for (const other of list) {
      if (other === slot) {
        earlier = false;
        continue;
      }
      if (isGone(other)) continue;
      if (other.visible ? earlier : other.takenIn !== currentRun()) return true;
    }
    return false;
  };

  const track = (wrapper: Wrapper): void => {
    const slot: Slot = {
      wrapper,
      messageId: wrapper.record.MessageId,
      groupId: wrapper.record.attributes.MessageGroupId,
      gone: false,
      takenIn: 0,
      visible: wrapper.visible,
      delayed: wrapper.delayed,
    };
    Object.defineProperty(wrapper, 'visible', {
      enumerable: true,
      configurable: true,
      get: () => slot.visible,
      set: (v: boolean) => {
        if (slot.visible && !v) slot.takenIn = currentRun();
        slot.visible = v;
      },
    });
    Object.defineProperty(wrapper, 'delayed', {
      enumerable: true,
      configurable: true,
      get: () => slot.delayed || blocked(slot),
      set: (v: boolean) => {
        slot.delayed = v;
      },
    });
    slots.set(slot.messageId, slot);
    if (slot.groupId !== undefined) {
      const list = groups.get(slot.groupId);
      if (list) list.push(slot);
      else groups.set(slot.groupId, [slot]);
    }
  };

  const newRecord = q.newRecord;
  q.newRecord = (record, delay) => {
    const wrapper = newRecord(record, delay);
    track(wrapper);
    sincePrune += 1;
    if (sincePrune >= 256) {
      sincePrune = 0;
      prune();
    }
    return wrapper;
  };

  const setRecord = q.setRecord;
  q.setRecord = (input, messageId) => {
    // Only client sends carry QueueUrl (SendMessage) or Id (SendMessageBatch entries); redrive passes a
    // message id and message moves pass neither.
    const clientSend = messageId === undefined && (input.QueueUrl !== undefined || input.Id !== undefined);
    if (!q.FifoQueue || !clientSend || input.MessageDeduplicationId === undefined) {
      return setRecord(input, messageId);
    }
    const key =
      q.DeduplicationScope === 'messageGroup'
        ? `${input.MessageGroupId ?? ''}\u0000${input.MessageDeduplicationId}`
        : input.MessageDeduplicationId;
    const seen = dedup.get(key);
    if (seen && Date.now() - seen.at < DEDUP_WINDOW_MS) return { record: seen.record };
    const out = setRecord(input, messageId);
    dedup.set(key, { at: Date.now(), record: out.record });
    return out;
  };

  const receive = q.receive.bind(q);
  q.receive = async (args) => {
    const waitMs = Number(args.WaitTimeSeconds ?? q.ReceiveMessageWaitTimeSeconds) * 1000;
    const deadline = Date.now() + (Number.isFinite(waitMs) ? waitMs : 0);
    for (;;) {
      const got = await receive({ ...args, WaitTimeSeconds: 0 });
      if (got.length > 0) {
        // Keep the last copy of any message handed out twice: only its receipt handle is current.
        const byId = new Map<string, MessageRecord>();
        for (const m of got) {
          byId.delete(m.MessageId);
          byId.set(m.MessageId, m);
        }
        return [...byId.values()];
      }
      const left = deadline - Date.now();
      if (left <= 0) return got;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, left)));
    }
  };

  const del = q.delete.bind(q);
  q.delete = (receiptHandle) => {
    // Throws when the receipt handle is stale; returning means the message is no longer in the queue.
    const ok = del(receiptHandle);
    const id = messageIdOf(receiptHandle);
    const slot = id === undefined ? undefined : slots.get(id);
    if (slot) slot.gone = true;
    return ok;
  };

  const changeVisibility = q.changeVisibility.bind(q);
  q.changeVisibility = (receiptHandle, timeout) => {
    const id = messageIdOf(receiptHandle);
    const attributes = id === undefined ? undefined : slots.get(id)?.wrapper.record.attributes;
    const count = attributes?.ApproximateReceiveCount;
    const ok = changeVisibility(receiptHandle, timeout);
    if (attributes && count !== undefined) attributes.ApproximateReceiveCount = count;
    return ok;
  };

  const getAttributes = q.getAttributes.bind(q);
  q.getAttributes = (names) => {
    const out = getAttributes(names);
    if (out?.ApproximateNumberOfMessages !== undefined) {
      let available = 0;
      for (const slot of slots.values()) if (!isGone(slot) && slot.visible && !slot.delayed) available += 1;
      out.ApproximateNumberOfMessages = String(available);
    }
    return out;
  };

  const clearRecords = q.clearRecords.bind(q);
  q.clearRecords = () => {
    clearRecords();
    for (const slot of slots.values()) slot.gone = true;
    prune();
  };
}

/** local-aws-sqs receipt handles are base64 of `<uuid>{"date":…,"MessageId":…,"QueueName":…}`. */
function messageIdOf(receiptHandle: string): string | undefined {
  try {
    const text = Buffer.from(receiptHandle, 'base64').toString('utf8');
    const parsed = JSON.parse(text.slice(text.indexOf('{'))) as { MessageId?: unknown };
    return typeof parsed.MessageId === 'string' ? parsed.MessageId : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Senders. SQS stamps every message with SenderId, the identity of the SendMessage caller ("For an IAM role,
// returns the IAM role ID, for example ABCDE1F2GH3I4JK5LMNOP:i-a123b456": ReceiveMessage, Amazon SQS API
// Reference); local-aws-sqs stamps one constant. Here each client send is stamped from the access key in the
// request's SigV4 Authorization header (infra/local/identities.ts; an unknown key is a stranger's AIDA… id).
// Moves keep the SenderId of the message they move, both SQS's own redrive to the DLQ after maxReceiveCount and
// a StartMessageMoveTask back out of it. AWS documents that a redriven message gets a new MessageId and enqueue
// time, and nothing about SenderId; keeping it is the assumption the worker's redrive rule is built to survive
// either way (README, "Sender binding and redrive").
// ---------------------------------------------------------------------------------------------------------

interface SenderContext {
  /** The SenderId of the request being handled (set around each HTTP request). */
  caller: AsyncLocalStorage<string>;
  /** Stamped SenderId by message id, for SQS's redrive to the DLQ, which keeps the message id. */
  byMessageId: Map<string, string>;
  /** SenderId of messages last received from a DLQ, by content, for move tasks (which send a copy). */
  receivedFromDlq: Map<string, string>;
  isDlq(queue: PatchableQueue): boolean;
}

const SENDERS_PATCHED = Symbol('eks-access-grants.senders');
const MAX_REMEMBERED = 200_000;

function senderContext(queues: PatchableQueue[]): SenderContext {
  return {
    caller: new AsyncLocalStorage<string>(),
    byMessageId: new Map(),
    receivedFromDlq: new Map(),
    isDlq: (queue) =>
      queues.some(
        (other) => other.RedrivePolicy?.deadLetterTargetArn?.endsWith(`:${queue.QueueName}`) === true,
      ),
  };
}

function contentKey(
  groupId: string | undefined,
  dedupId: string | undefined,
  body: string | undefined,
): string {
  return `${groupId ?? ''}\u0000${dedupId ?? ''}\u0000${body ?? ''}`;
}

function remember(map: Map<string, string>, key: string, value: string): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) {
    for (const k of [...map.keys()].slice(0, MAX_REMEMBERED / 2)) map.delete(k);
  }
}

function patchSenders(q: PatchableQueue, ctx: SenderContext): void {
  if ((q as { [SENDERS_PATCHED]?: true })[SENDERS_PATCHED]) return;
  (q as { [SENDERS_PATCHED]?: true })[SENDERS_PATCHED] = true;

  const setRecord = q.setRecord;
  q.setRecord = (input, messageId) => {
    const clientSend = messageId === undefined && (input.QueueUrl !== undefined || input.Id !== undefined);
    const sender = clientSend
      ? ctx.caller.getStore()
      : messageId !== undefined
        ? ctx.byMessageId.get(messageId) // SQS's redrive to the DLQ
        : ctx.receivedFromDlq.get(
            contentKey(input.MessageGroupId, input.MessageDeduplicationId, input.MessageBody),
          ); // a move task
    const out = setRecord(input, messageId);
    // Only a stored message comes back as a queue wrapper; a FIFO duplicate returns a detached record.
    if (sender !== undefined && 'visible' in out) {
      out.record.attributes.SenderId = sender;
      remember(ctx.byMessageId, out.record.MessageId, sender);
    }
    return out;
  };

  const receive = q.receive.bind(q);
  q.receive = async (args) => {
    const got = await receive(args);
    if (got.length > 0 && ctx.isDlq(q)) {
      for (const m of got) {
        const sender = m.attributes.SenderId;
        if (sender !== undefined) {
          remember(
            ctx.receivedFromDlq,
            contentKey(m.attributes.MessageGroupId, m.attributes.MessageDeduplicationId, m.MessageBody),
            sender,
          );
        }
      }
    }
    return got;
  };
}
