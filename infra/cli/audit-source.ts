/**
 * Where audit records are read back from.
 *
 * Local mode: the audit log the EventBridge emulator appends to (`.local/audit.jsonl`, one
 * `{time, source, detailType, eventBusName, detail}` line per event).
 *
 * Deployed: a CloudWatch Logs Insights query over the functions' log groups. The audit adapter writes
 * every record to the function's log before it publishes it to the bus (functions/adapters/audit-bus.ts),
 * so the logs hold every record, including those the bus never took, and need no new write path, table
 * or permission on the hot path. The bus archive cannot be queried, and a per-principal history in the
 * ledger would add a write to every request and miss records of requests too malformed to name a
 * principal. The cost: Logs Insights is eventually consistent (records show up seconds after they are
 * written) and bounded by the log retention (logRetentionInDays in serverless.yml).
 */
import { readFile } from 'node:fs/promises';
import {
  type CloudWatchLogsClient,
  DescribeLogGroupsCommand,
  GetQueryResultsCommand,
  StartQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { AUDIT_DETAIL_TYPE, AUDIT_SOURCE } from '../../functions/adapters/audit-bus.js';
import { AUDIT_OUTCOMES, type AuditRecord, isRecordOfMessage } from '../../functions/core/audit.js';
import { CliError } from './errors.js';
import type { Target } from './target.js';

export interface AuditQuery {
  principal?: string;
  cluster?: string;
  /** Epoch ms; records at or after it. */
  since?: number;
  requestIds?: readonly string[];
  outcomes?: readonly string[];
}

/** An audit event as read back: the record, and the detail type it was published with. */
export interface AuditEvent {
  detailType: string;
  record: AuditRecord;
}

export function matches(r: AuditRecord, q: AuditQuery): boolean {
  if (q.principal !== undefined && r.principalArn !== q.principal) return false;
  if (q.cluster !== undefined && r.clusterName !== q.cluster) return false;
  if (q.since !== undefined && Date.parse(r.at) < q.since) return false;
  if (q.requestIds && !q.requestIds.includes(r.requestId)) return false;
  if (q.outcomes && !q.outcomes.includes(r.outcome)) return false;
  return true;
}

export async function readAudit(
  target: Target,
  logs: () => CloudWatchLogsClient,
  q: AuditQuery,
  now: Date,
): Promise<AuditEvent[]> {
  if (target.auditLog !== undefined) return readLocalLog(target.auditLog, q);
  return queryLogs(logs(), target.auditLogGroups ?? [], q, now);
}

async function readLocalLog(file: string, q: AuditQuery): Promise<AuditEvent[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw new CliError(`cannot read the audit log ${file}: ${(err as Error).message}`);
  }
  const out: AuditEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let parsed: { source?: unknown; detailType?: unknown; detail?: unknown };
    try {
      parsed = JSON.parse(line);
    } catch {
      // A line being appended while we read; the next read sees it whole.
      continue;
    }
    // The bus also carries expiring-soon reminders (same source, their own detail type): not audit records.
    if (
      parsed.source !== AUDIT_SOURCE ||
      parsed.detailType !== AUDIT_DETAIL_TYPE ||
      typeof parsed.detail !== 'object' ||
      parsed.detail === null
    )
      continue;
    const record = parsed.detail as AuditRecord;
    if (typeof record.requestId !== 'string' || typeof record.at !== 'string') continue;
    if (matches(record, q)) out.push({ detailType: String(parsed.detailType), record });
  }
  return out;
}

/** Values spliced into a Logs Insights query: only characters an ARN, a cluster name or a request id can hold. */
const SAFE_VALUE = /^[A-Za-z0-9_+=,.@/:*-]{1,2048}$/;

/** The Logs Insights query for audit records; exported so its text is tested. */
export function insightsQuery(q: AuditQuery): string {
  const filters = [`filter message like /^audit (${AUDIT_OUTCOMES.join('|')})/`];
  const eq = (field: string, value: string) => {
    if (!SAFE_VALUE.test(value))
      throw new CliError(`${JSON.stringify(value)} cannot be queried: unexpected characters`);
    return `${field} = "${value}"`;
  };
  if (q.principal !== undefined) filters.push(`filter ${eq('audit.principalArn', q.principal)}`);
  if (q.cluster !== undefined) filters.push(`filter ${eq('audit.clusterName', q.cluster)}`);
  if (q.requestIds?.length)
    filters.push(`filter ${q.requestIds.map((id) => eq('audit.requestId', id)).join(' or ')}`);
  if (q.outcomes?.length)
    filters.push(`filter ${q.outcomes.map((o) => eq('audit.outcome', o)).join(' or ')}`);
  return ['fields @timestamp, @message', ...filters, 'sort @timestamp asc', 'limit 10000'].join('\n| ');
}

/** One result row's @message → the audit record it logged, if it is one. */
export function recordFromLogMessage(message: string): AuditRecord | undefined {
  try {
    const line = JSON.parse(message) as { audit?: AuditRecord };
    return line.audit && typeof line.audit.requestId === 'string' ? line.audit : undefined;
  } catch {
    return undefined;
  }
}

const DEFAULT_LOOKBACK_MS = 7 * 86_400_000;

async function queryLogs(
  client: CloudWatchLogsClient,
  groups: string[],
  q: AuditQuery,
  now: Date,
): Promise<AuditEvent[]> {
  // A function that was never deployed (or never ran) has no log group, and StartQuery refuses the lot.
  const prefix = groups.reduce((p, g) => commonPrefix(p, g), groups[0] ?? '');
  const existing = new Set<string>();
  let nextToken: string | undefined;
  do {
    const page = await client.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: prefix, nextToken }));
    for (const g of page.logGroups ?? []) if (g.logGroupName) existing.add(g.logGroupName);
    nextToken = page.nextToken;
  } while (nextToken);
  const logGroupNames = groups.filter((g) => existing.has(g));
  if (logGroupNames.length === 0) return [];
  const start = await client.send(
    new StartQueryCommand({
      logGroupNames,
      startTime: Math.floor((q.since ?? now.getTime() - DEFAULT_LOOKBACK_MS) / 1000),
      endTime: Math.ceil(now.getTime() / 1000) + 60,
      queryString: insightsQuery(q),
      limit: 10_000,
    }),
  );
  if (!start.queryId) throw new CliError('Logs Insights StartQuery returned no query id');
  for (;;) {
    const res = await client.send(new GetQueryResultsCommand({ queryId: start.queryId }));
    if (res.status === 'Complete') {
      const seen = new Set<string>();
      const out: AuditEvent[] = [];
      for (const row of res.results ?? []) {
        const message = row.find((f) => f.field === '@message')?.value;
        const record = message ? recordFromLogMessage(message) : undefined;
        // A record also appears in the "not published to the bus" error line: keep one.
        if (!record || seen.has(record.auditId) || !matches(record, q)) continue;
        seen.add(record.auditId);
        out.push({ detailType: 'Access Grant Outcome', record });
      }
      return out;
    }
    if (res.status === 'Failed' || res.status === 'Cancelled' || res.status === 'Timeout') {
      throw new CliError(`Logs Insights query ${start.queryId} ended ${res.status}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

const TERMINAL = new Set([
  'granted',
  'revoked',
  'expired',
  'unchanged',
  'rejected',
  'failed',
  'repaired',
  'extended',
]);

/**
 * Waits for the terminal audit record of a request; undefined when none arrived in time. With `messageId`
 * (the MessageId SendMessage returned), only a record the worker produced for that very message counts:
 * a record of another message that names the same request id (a forged twin) is ignored.
 */
export async function waitForTerminal(
  target: Target,
  logs: () => CloudWatchLogsClient,
  requestId: string,
  timeoutMs: number,
  now: () => Date,
  messageId?: string,
): Promise<AuditRecord | undefined> {
  const sentAt = now().getTime();
  const deadline = Date.now() + timeoutMs;
  // Logs Insights lags by seconds; polling it every 200 ms would only cost queries.
  const pollMs = target.auditLog !== undefined ? 200 : 5000;
  for (;;) {
    const found = (
      await readAudit(target, logs, { requestIds: [requestId], since: sentAt - 60_000 }, now())
    ).find(
      (e) =>
        TERMINAL.has(e.record.outcome) && (messageId === undefined || isRecordOfMessage(e.record, messageId)),
    );
    if (found) return found.record;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}
