/**
 * `grants [--cluster C] [--principal P] [--status active|all] [--expiring-within PT1H]`: the ledger's
 * grants with what each grants. Active by default; `--expiring-within` keeps active, time-boxed grants
 * that end within that time (overdue ones included: they are still active until their expiry lands).
 */
import type { ClusterTarget } from '../../../functions/core/cluster-target.js';
import type { Grant } from '../../../functions/core/ledger.js';
import type { PolicyAssociation } from '../../../functions/core/types.js';
import { clustersOf } from '../clusters.js';
import { type Command, optStr } from '../context.js';
import { dash, durationFlag, policiesText, table } from '../output.js';

export interface GrantRow {
  grantId: string;
  /** The alias (policy key) requests name. */
  clusterName: string;
  /** Where the cluster is (null when the policy no longer names it). */
  account: string | null;
  region: string | null;
  principalArn: string;
  source: string;
  status: string;
  expiresAt: string | null;
  requestedBy: string | null;
  approvedBy: string[];
  accessPolicies: PolicyAssociation[];
  kubernetesGroups: string[];
  username: string | null;
  reason: string | null;
  ticket: string | null;
  incidentId: string | null;
  createdAt: string;
  endedAt: string | null;
}

export const grants: Command = {
  spec: {
    name: 'grants',
    summary: "the ledger's grants, each with who asked, who approved, until when and what it grants",
    flags: {
      cluster: { type: 'string', arg: 'C', help: 'only this cluster' },
      principal: { type: 'string', arg: 'P', help: 'only this IAM role or user ARN' },
      status: {
        type: 'string',
        arg: 'active|all',
        values: ['active', 'all'],
        help: 'active (default) or every grant',
      },
      'expiring-within': {
        type: 'string',
        arg: 'PT1H',
        help: 'only active grants ending within this ISO-8601 duration',
        check: durationFlag,
      },
    },
    exclusive: [['status', 'expiring-within']],
  },
  async run(ctx) {
    const cluster = optStr(ctx, 'cluster');
    const principal = optStr(ctx, 'principal');
    const within = optStr(ctx, 'expiring-within');
    const horizon =
      within === undefined ? undefined : ctx.now().getTime() + durationFlag('expiring-within', within);
    const all = optStr(ctx, 'status') === 'all';
    const ledger = ctx.clients.ledger();
    // The ledger is keyed by cluster key (account, region and name outside the deployment's own).
    const clusters = await clustersOf(ctx);
    const key = cluster === undefined ? undefined : (clusters?.keyOf(cluster) ?? cluster);
    const records =
      key !== undefined && principal !== undefined
        ? [await ledger.load(key, principal)]
        : (await ledger.scanRecords(key)).filter(
            (r) => principal === undefined || r.principalArn === principal,
          );
    const rows: GrantRow[] = [];
    for (const r of records) {
      const where = clusters?.fromKey(r.clusterName);
      for (const g of r.grants) {
        if (!all && g.status !== 'active') continue;
        if (horizon !== undefined && (g.expiresAt === undefined || Date.parse(g.expiresAt) > horizon))
          continue;
        rows.push(grantRow(where?.alias ?? r.clusterName, r.principalArn, g, where));
      }
    }
    rows.sort(
      (a, b) =>
        (a.expiresAt ?? '\uffff').localeCompare(b.expiresAt ?? '\uffff') ||
        a.clusterName.localeCompare(b.clusterName) ||
        a.principalArn.localeCompare(b.principalArn) ||
        a.grantId.localeCompare(b.grantId),
    );
    const text =
      rows.length === 0
        ? '(no grants)'
        : table(
            [
              'grant',
              'cluster',
              'principal',
              'source',
              'status',
              'expires',
              'requested by',
              'approved by',
              'grants',
              'account/region',
            ],
            rows.map((g) => [
              g.grantId,
              g.clusterName,
              g.principalArn,
              g.source,
              g.status,
              dash(g.expiresAt),
              dash(g.requestedBy),
              dash(g.approvedBy.join(',')),
              dash(
                [policiesText(g.accessPolicies), g.kubernetesGroups.map((k) => `group:${k}`).join(' ')]
                  .filter(Boolean)
                  .join(' '),
              ),
              g.account === null ? '-' : `${g.account}/${g.region}`,
            ]),
          );
    return { json: rows, text, exit: 0 };
  },
};

export function grantRow(
  clusterName: string,
  principalArn: string,
  g: Grant,
  where?: Pick<ClusterTarget, 'account' | 'region'>,
): GrantRow {
  return {
    grantId: g.grantId,
    clusterName,
    account: where?.account ?? null,
    region: where?.region ?? null,
    principalArn,
    source: g.source,
    status: g.status,
    expiresAt: g.expiresAt ?? null,
    requestedBy: g.requestedBy ?? null,
    approvedBy: g.approvedBy ?? [],
    accessPolicies: g.policies,
    kubernetesGroups: g.kubernetesGroups,
    username: g.username ?? null,
    reason: g.reason ?? null,
    ticket: g.ticket ?? null,
    incidentId: g.incidentId ?? null,
    createdAt: g.createdAt,
    endedAt: g.endedAt ?? null,
  };
}
