/**
 * Sending an operator request and waiting for its outcome: shared by revoke and extend.
 * The request goes to the queue of the worker that owns the grant (break-glass grants to the
 * break-glass queue), sent with the operator identity, so the sender binding (C1) sees OperatorRole.
 */
import { randomUUID } from 'node:crypto';
import { QueueAdapter } from '../../functions/adapters/queue.js';
import type { AuditRecord } from '../../functions/core/audit.js';
import { validateAccessRequest } from '../../functions/core/request.js';
import type { AccessRequest } from '../../functions/core/types.js';
import { waitForTerminal } from './audit-source.js';
import { clustersOf } from './clusters.js';
import { auditTable } from './commands/audit.js';
import type { Context } from './context.js';
import { optStr } from './context.js';
import { CliError } from './errors.js';
import type { CommandResult } from './output.js';

export const WAIT_FLAGS = {
  'no-wait': { type: 'boolean', help: 'return once the request is queued' },
  timeout: { type: 'string', arg: 'SECONDS', help: 'how long to wait for the outcome (default 120)' },
} as const;

export function operatorRequestId(action: string): string {
  return `operator-${action}-${randomUUID()}`;
}

export async function sendAndWait(
  ctx: Context,
  fields: Omit<AccessRequest, 'schemaVersion' | 'requestId' | 'source' | 'requestedBy'> & {
    requestId: string;
  },
): Promise<CommandResult> {
  const timeoutText = optStr(ctx, 'timeout') ?? '120';
  const timeout = Number(timeoutText);
  if (!/^\d+$/.test(timeoutText) || timeout < 1 || timeout > 3600) {
    throw new CliError(
      `--timeout ${JSON.stringify(timeoutText)} must be a whole number of seconds from 1 to 3600`,
    );
  }
  const draft: AccessRequest = {
    schemaVersion: 1,
    source: 'operator',
    requestedBy: await ctx.target.operatorName(),
    ...fields,
  };
  // The worker validates again; checking here turns a typo into an answer now instead of an audit record later.
  const checked = validateAccessRequest(draft);
  if (!checked.ok) {
    return {
      json: { outcome: 'rejected', requestId: draft.requestId, reason: checked.reason },
      text: `REFUSED ${checked.reason.code}: ${checked.reason.message}`,
      exit: 2,
    };
  }
  const request = checked.request;
  const clusters = await clustersOf(ctx);
  const record = await ctx.clients
    .ledger()
    .load(clusters?.keyOf(request.clusterName) ?? request.clusterName, request.principalArn);
  const grant = record.grants.find((g) => g.grantId === request.grantId);
  const worker = grant?.source === 'break-glass' ? 'break-glass' : 'requests';
  const queue =
    ctx.target.queues.find((q) => !q.dlq && q.worker === worker) ??
    ctx.target.queues.find((q) => !q.dlq && q.worker === 'requests');
  if (!queue) throw new CliError('no request queue is known for this target');
  // The same message group as the worker's own messages for this principal (core/cluster-target.ts).
  const messageId = await new QueueAdapter(
    await ctx.clients.operatorSqs(),
    (alias) => clusters?.keyOf(alias) ?? alias,
  ).enqueue(queue.url, request);
  if (ctx.flags['no-wait']) {
    return {
      json: { requestId: request.requestId, queue: queue.name, queued: true },
      text: `queued ${request.requestId} on ${queue.name}; follow it with: audit --principal ${request.principalArn}`,
      exit: 0,
    };
  }
  if (!messageId) throw new CliError(`SQS returned no MessageId for ${request.requestId}; see audit`);
  ctx.progress(`queued ${request.requestId} on ${queue.name}; waiting for its outcome…`);
  // Wait for the record of the message we sent, not of any message naming our request id: anyone who may
  // send to the queue and learns the id (it is printed above) can send a twin, which the worker refuses
  // UNTRUSTED_SENDER under the same requestId. The binding is the MessageId SendMessage returned: SQS assigns
  // it, nobody can make another message carry it, and the worker's auditId is derived from it (with the
  // request id, outcome and attempt: isRecordOfMessage). Matching on `senderId` instead would be weaker:
  // every message of the operator role's session carries the same SenderId, so a twin sent with operator
  // credentials (another tool, or another operator with the same session name) would still match; it needs
  // an extra STS call deployed and an emulator-specific derivation locally; and what SenderId a redriven
  // message carries is undocumented (README, Sender binding and redrive).
  const audit = await waitForTerminal(
    ctx.target,
    () => ctx.clients.logs(),
    request.requestId,
    timeout * 1000,
    () => ctx.now(),
    messageId,
  );
  if (!audit) {
    throw new CliError(
      `no outcome for ${request.requestId} within ${timeout} s; it is still queued or in progress: see status and audit --principal ${request.principalArn}`,
    );
  }
  return { json: audit, text: auditTable([audit]), exit: exitFor(audit) };
}

export function exitFor(audit: AuditRecord): 0 | 1 | 2 {
  if (audit.outcome === 'rejected') return 2;
  if (audit.outcome === 'failed') return 1;
  return 0;
}
