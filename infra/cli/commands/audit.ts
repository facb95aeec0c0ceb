/** `audit [--principal P] [--cluster C] [--since PT24H]`: the audit history, oldest first. */
import type { AuditRecord } from '../../../functions/core/audit.js';
import { readAudit } from '../audit-source.js';
import { whereOfArn, whereText } from '../clusters.js';
import { type Command, optStr } from '../context.js';
import { dash, durationFlag, table } from '../output.js';

export const audit: Command = {
  spec: {
    name: 'audit',
    summary:
      "the audit history (local: the audit log; deployed: a Logs Insights query over the functions' logs)",
    flags: {
      principal: { type: 'string', arg: 'P', help: 'only records about this IAM role or user ARN' },
      cluster: { type: 'string', arg: 'C', help: 'only records about this cluster' },
      since: {
        type: 'string',
        arg: 'PT24H',
        help: 'only records this recent (ISO-8601 duration; default PT24H)',
        check: durationFlag,
      },
    },
  },
  async run(ctx) {
    const now = ctx.now();
    const since = now.getTime() - durationFlag('since', optStr(ctx, 'since') ?? 'PT24H');
    const principal = optStr(ctx, 'principal');
    const cluster = optStr(ctx, 'cluster');
    const events = await readAudit(
      ctx.target,
      () => ctx.clients.logs(),
      { since, ...(principal !== undefined && { principal }), ...(cluster !== undefined && { cluster }) },
      now,
    );
    const records = events.map((e) => e.record).sort((a, b) => a.at.localeCompare(b.at));
    return { json: records, text: auditTable(records), exit: 0 };
  },
};

export function auditTable(records: AuditRecord[]): string {
  if (records.length === 0) return '(no audit records)';
  return table(
    [
      'at',
      'outcome',
      'source',
      'cluster',
      'account/region',
      'principal',
      'request',
      'grant',
      'reason / EKS calls',
    ],
    records.map((r) => [
      r.at,
      r.outcome + (r.severity === 'high' ? ' (high)' : ''),
      dash(r.source),
      dash(r.clusterName),
      dash(r.principalArn),
      r.requestId,
      dash(r.grantId),
      r.reason
        ? `${r.reason.code}: ${r.reason.message.slice(0, 100)}`
        : r.outcome === 'extended'
          ? `until ${r.expiresAt} (was ${dash(r.previousExpiresAt)})`
          : r.changes.map((c) => c.operation).join(', ') || '-',
      // Last, so the columns before keep their places: where the cluster is (fleet).
      whereText(whereOfArn(r.clusterArn)),
    ]),
  );
}
