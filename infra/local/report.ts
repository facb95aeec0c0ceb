/** Plain-text tables for local mode: what happened to each request, and what EKS holds now. */
import type { AuditRecord } from '../../functions/core/audit.js';
import type { EntrySnapshot } from './eks-emulator.js';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const shortPolicy = (arn: string) =>
  arn.replace(/^.*cluster-access-policy\/AmazonEKS/, '').replace(/Policy$/, '');
const shortPrincipal = (arn: string) => arn.replace(/^arn:aws[\w-]*:iam::/, '');

/**
 * One row per audit record. The rows come from the audit log, which takes whatever the audit bus's archive
 * matched: a record of an older or newer shape, or an event that is not one at all, is shown as what it
 * lacks rather than crashing the report (and with it `npm start -- --serve`).
 */
export function renderOutcomes(audits: readonly unknown[]): string {
  if (audits.length === 0) return '(none)';
  return table(
    ['request', 'source', 'outcome', 'principal', 'EKS calls / reason'],
    audits.map((detail) => {
      const a = (typeof detail === 'object' && detail !== null ? detail : {}) as Partial<
        Record<keyof AuditRecord, unknown>
      >;
      const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
      const reason = (typeof a.reason === 'object' && a.reason !== null ? a.reason : {}) as {
        code?: unknown;
        message?: unknown;
      };
      const changes = Array.isArray(a.changes) ? (a.changes as unknown[]) : [];
      const principal = text(a.principalArn);
      const outcome = text(a.outcome);
      return [
        text(a.requestId) ?? '-',
        text(a.source) ?? '-',
        outcome ? outcome + (a.severity === 'high' ? ' (high)' : '') : '(not an audit record)',
        principal ? `${text(a.clusterName) ?? '?'}:${shortPrincipal(principal)}` : '-',
        text(reason.code)
          ? `${text(reason.code)}: ${(text(reason.message) ?? '').slice(0, 90)}`
          : changes
              .map((c) => text((c as { operation?: unknown } | null)?.operation) ?? '?')
              .map((op) => op.replace('AccessEntry', '').replace('AccessPolicy', 'Policy'))
              .join(', ') || '(none)',
      ];
    }),
  );
}

export function renderEntries(entries: EntrySnapshot[]): string {
  if (entries.length === 0) return '(no access entries)';
  return table(
    ['principal', 'groups', 'access policies', 'managed'],
    entries.map((e) => [
      shortPrincipal(e.principalArn),
      e.kubernetesGroups.join(',') || '-',
      e.policies
        .map(
          (p) =>
            `${shortPolicy(p.policyArn)}@${p.accessScope.type === 'cluster' ? 'cluster' : p.accessScope.namespaces.join('|')}`,
        )
        .join(' ') || '-',
      Object.keys(e.tags).some((k) => k.startsWith('eks-access-grants')) ? 'yes' : 'no',
    ]),
  );
}
