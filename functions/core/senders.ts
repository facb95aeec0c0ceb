/**
 * Sender binding (contract C1): which principals may speak for which request source. Pure: the worker
 * hands in what SQS stamped on the record and what the body claims, and gets a verdict.
 *
 * SQS stamps every message with `SenderId`, the caller of SendMessage, which a sender cannot set. The
 * ReceiveMessage reference: "For a user, returns the user ID, for example ABCDEFGHI1JKLMNOPQ23R. For an
 * IAM role, returns the IAM role ID, for example ABCDE1F2GH3I4JK5LMNOP:i-a123b456"
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html). So a
 * Lambda function's send carries `<role id>:<session name>`, and an id matches a SenderId that equals it
 * or starts with `<id>:`. Role ids, not ARNs: a role deleted and recreated under its old name gets a new
 * id and is a stranger.
 *
 * Redrive: a worker that dead-letters a message sends it to its DLQ itself, as its own role, with the
 * message attribute `verifiedSender` = the sender it had verified. After a redrive, a record whose
 * SenderId is one of DEAD_LETTER_SENDERS (the worker's own role) is judged by that attribute instead; a
 * `verifiedSender` on a message anyone else wrote means nothing. (README, "Sender binding and redrive".)
 */
import { ConfigError } from './errors.js';
import { type Reason, SOURCES, type Source } from './types.js';

export interface SenderBinding {
  /** Source → the unique ids (AROA… role ids, AIDA… user ids) trusted to send it to this worker's queue. */
  trusted: Partial<Record<Source, readonly string[]>>;
  /** The worker's own role id(s): records they wrote are redriven dead letters, judged by `verifiedSender`. */
  deadLetterSenders: readonly string[];
}

/** The message attribute a worker puts on what it dead-letters: the SenderId it verified. */
export const VERIFIED_SENDER_ATTRIBUTE = 'verifiedSender';

/**
 * IAM unique ids: a four-letter prefix (AIDA, AROA, AIPA, …) and upper-case letters and digits. No `:`,
 * which separates the role id from the session name in a SenderId.
 */
const UNIQUE_ID = /^[A-Z0-9]{8,128}$/;

export type SenderVerdict =
  /** `sender`: whose word the message carries (for a redriven dead letter, its verifiedSender). */
  { trusted: true; sender: string } | { trusted: false; reason: Reason };

export interface RecordSender {
  /** The SenderId SQS stamped on the record; absent only if the event source mapping did not deliver it. */
  senderId: string | undefined;
  /** The `verifiedSender` message attribute, if any. */
  verifiedSender: string | undefined;
  /** The `source` the body claims, if it is a string. */
  source: unknown;
}

/** TRUSTED_SENDERS: JSON `{ "<source>": ["<unique id>", …], … }`. Throws ConfigError naming the variable. */
export function parseTrustedSenders(raw: string, name = 'TRUSTED_SENDERS'): SenderBinding['trusted'] {
  const value = parseJson(raw, name);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${name} must be a JSON object of source → list of unique ids, got ${raw}`);
  }
  const out: Partial<Record<Source, string[]>> = {};
  for (const [source, ids] of Object.entries(value)) {
    if (!SOURCES.includes(source as Source)) {
      throw new ConfigError(
        `${name} names an unknown source ${JSON.stringify(source)}; sources: ${SOURCES.join(', ')}`,
      );
    }
    out[source as Source] = uniqueIds(ids, `${name}.${source}`);
  }
  if (Object.keys(out).length === 0) {
    throw new ConfigError(`${name} names no source: every message would be rejected as UNTRUSTED_SENDER`);
  }
  return out;
}

/** DEAD_LETTER_SENDERS: JSON `["<unique id>", …]`, the worker's own role id. */
export function parseDeadLetterSenders(raw: string, name = 'DEAD_LETTER_SENDERS'): string[] {
  return uniqueIds(parseJson(raw, name), name);
}

/** A SenderId is the id itself (a user) or `<id>:<session>` (an assumed role). */
export function senderMatches(senderId: string, id: string): boolean {
  return senderId === id || senderId.startsWith(`${id}:`);
}

export function judgeSender(binding: SenderBinding, record: RecordSender): SenderVerdict {
  const stamped = record.senderId;
  if (!stamped) {
    return untrusted('the record carries no SenderId, so its sender cannot be verified', record.source);
  }
  const fromDlq = binding.deadLetterSenders.some((id) => senderMatches(stamped, id));
  // Our own dead letter, redriven: it speaks with the sender we verified before dead-lettering it.
  const sender = fromDlq ? record.verifiedSender : stamped;
  if (!sender) {
    return untrusted(
      `${stamped} is this worker's own role, but the message has no ${VERIFIED_SENDER_ATTRIBUTE} attribute`,
      record.source,
    );
  }
  const claimed = SOURCES.includes(record.source as Source) ? (record.source as Source) : undefined;
  if (claimed === undefined) {
    // No valid source to bind to: a known sender's malformed message is the validator's to reject
    // (INVALID_*), a stranger's is refused here without being looked at further.
    const known = Object.values(binding.trusted).some((ids) => ids.some((id) => senderMatches(sender, id)));
    return known ? { trusted: true, sender } : untrusted(describe(stamped, sender), record.source);
  }
  const ids = binding.trusted[claimed] ?? [];
  if (ids.some((id) => senderMatches(sender, id))) return { trusted: true, sender };
  return untrusted(describe(stamped, sender), claimed);
}

function describe(stamped: string, sender: string): string {
  return stamped === sender ? `sender ${sender}` : `sender ${sender} (redriven by ${stamped})`;
}

function untrusted(who: string, source: unknown): SenderVerdict {
  const claim =
    typeof source === 'string' ? `source ${JSON.stringify(source)}` : 'a message without a valid source';
  return {
    trusted: false,
    reason: {
      code: 'UNTRUSTED_SENDER',
      message: `${who} is not trusted to send ${claim} to this queue (TRUSTED_SENDERS); nothing was applied`,
    },
  };
}

function parseJson(raw: string, name: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`${name} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function uniqueIds(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(`${name} must be a non-empty JSON list of IAM unique ids (AROA…, AIDA…)`);
  }
  for (const id of value) {
    if (typeof id !== 'string' || !UNIQUE_ID.test(id)) {
      throw new ConfigError(
        `${name} holds ${JSON.stringify(id)}, not an IAM unique id (upper-case letters and digits, e.g. AROA…): ` +
          'the template sets it from Fn::GetAtt <Role>.RoleId',
      );
    }
  }
  return value as string[];
}
