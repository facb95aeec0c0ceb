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

export function renderOutcomes(audits: AuditRecord[]): string {
  if (audits.length === 0) return '(none)';
  return table(
    ['request', 'source', 'outcome', 'principal', 'EKS calls / reason'],
    audits.map((a) => [
      a.requestId,
      a.source ?? '-',
      a.outcome + (a.severity === 'high' ? ' (high)' : ''),
      a.principalArn ? `${a.clusterName}:${shortPrincipal(a.principalArn)}` : '-',
      a.reason
        ? `${a.reason.code}: ${a.reason.message.slice(0, 90)}`
        : a.changes
            .map((c) => c.operation.replace('AccessEntry', '').replace('AccessPolicy', 'Policy'))
            .join(', ') || '(none)',
    ]),
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
