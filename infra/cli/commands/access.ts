/**
 * `access --cluster C [--principal P] [--csv]`: who has access now. Every access entry on the cluster
 * (ListAccessEntries, paginated), each described as EKS holds it and set against the ledger: whether any
 * of it is ours (`managed`), the baseline, the active grants, and whether EKS differs from what the
 * ledger wants (`drift`, the same comparison the reconciler makes).
 */
import { ListAccessEntriesCommand, type ListAccessEntriesCommandOutput } from '@aws-sdk/client-eks';
import { translateEksError } from '../../../functions/adapters/eks.js';
import { computeDesired, type DesiredAccess } from '../../../functions/core/desired.js';
import type { Grant, PrincipalRecord } from '../../../functions/core/ledger.js';
import { planChanges } from '../../../functions/core/plan.js';
import {
  type AccessState,
  EMPTY_STATE,
  MANAGED_TAG_KEY,
  type PolicyAssociation,
} from '../../../functions/core/types.js';
import { type Place, placeOf, placeText, readingCluster, whereText } from '../clusters.js';
import { type Command, type Context, mapLimit, optStr, str } from '../context.js';
import { csv, dash, policiesText, scopeText, table } from '../output.js';

export interface AccessRow {
  principalArn: string;
  /** null: no access entry (the ledger wants one: see drift). */
  type: string | null;
  username: string | null;
  kubernetesGroups: string[];
  accessPolicies: PolicyAssociation[];
  managed: boolean;
  /** What the principal had before this system first changed it; null when we never did. */
  baseline: { exists: boolean; kubernetesGroups: string[]; accessPolicies: PolicyAssociation[] } | null;
  grants: GrantSummary[];
  drift: boolean;
}

export interface GrantSummary {
  grantId: string;
  source: string;
  status: string;
  expiresAt: string | null;
  requestedBy: string | null;
  approvedBy: string[];
}

/** Parallel describe calls: enough to list 3,000 entries in reasonable time, few enough not to be throttled. */
const CONCURRENCY = 8;
/** Below this many entries a listing is quick and prints no progress. */
const PROGRESS_MIN = 100;

export const access: Command = {
  spec: {
    name: 'access',
    summary:
      'who has access now: every access entry, set against the ledger (managed, baseline, grants, drift)',
    flags: {
      cluster: { type: 'string', arg: 'C', help: 'the EKS cluster' },
      principal: { type: 'string', arg: 'P', help: 'only this IAM role or user ARN' },
      csv: { type: 'boolean', help: 'CSV for access reviews (one line per entry)' },
    },
    required: ['cluster'],
    exclusive: [['csv', 'json']],
  },
  async run(ctx) {
    const place = await placeOf(ctx, str(ctx, 'cluster'));
    const rows = await readingCluster(ctx, place, () => accessRows(ctx, place, optStr(ctx, 'principal')));
    // Which account and region the entries are in (fleet); the JSON rows and the CSV stay as they were.
    const where = place.target ? `cluster ${place.alias}: ${whereText(place.target)}\n` : '';
    return {
      json: rows,
      text: ctx.flags.csv ? csvText(rows) : `${where}${tableText(rows)}`,
      exit: 0,
    };
  },
};

async function accessRows(ctx: Context, place: Place, principal?: string): Promise<AccessRow[]> {
  const { cluster, key } = place;
  const eks = ctx.clients.eksAdapter(place.directory);
  const ledger = ctx.clients.ledger();
  const now = ctx.now();
  const records = new Map<string, PrincipalRecord>();
  let arns: string[];
  if (principal !== undefined) {
    records.set(principal, await ledger.load(key, principal));
    arns = [principal];
  } else {
    arns = await listEntries(ctx, place);
    for (const r of await ledger.scanRecords(key)) records.set(r.principalArn, r);
  }
  const listed = new Set(arns);
  const total = arns.length;
  let done = 0;
  const rows = await mapLimit(arns, CONCURRENCY, async (arn) => {
    const current = await eks.readCurrent(cluster, arn);
    done++;
    if (total >= PROGRESS_MIN && (done % 250 === 0 || done === total)) {
      ctx.progress(`access: described ${done}/${total} entries on ${placeText(place)}`);
    }
    return row(arn, current, records.get(arn), now);
  });
  // Principals the ledger wants on the cluster but that have no entry: nobody has that access now, but
  // EKS differs from the ledger, which an access review must see.
  for (const [arn, record] of records) {
    if (listed.has(arn)) continue;
    const r = row(arn, EMPTY_STATE, record, now);
    if (r.drift) rows.push(r);
  }
  return rows
    .filter((r) => r.type !== null || r.drift)
    .sort((a, b) => a.principalArn.localeCompare(b.principalArn));
}

async function listEntries(ctx: Context, place: Place): Promise<string[]> {
  const { target, directory } = place;
  const targets = directory ? ctx.clients.targetClients(directory) : undefined;
  const client = target && targets ? targets.clientFor(target) : ctx.clients.eks();
  const clusterName = target?.name ?? place.alias;
  const arns: string[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  do {
    let page: ListAccessEntriesCommandOutput;
    try {
      page = await client.send(new ListAccessEntriesCommand({ clusterName, maxResults: 100, nextToken }));
    } catch (err) {
      throw translateEksError('ListAccessEntries', err);
    }
    arns.push(...(page.accessEntries ?? []));
    nextToken = page.nextToken;
    pages++;
    if (nextToken !== undefined || pages > 1)
      ctx.progress(`access: listed ${arns.length} entries on ${placeText(place)}…`);
  } while (nextToken);
  return arns;
}

function row(
  principalArn: string,
  current: AccessState,
  record: PrincipalRecord | undefined,
  now: Date,
): AccessRow {
  const desired = record ? computeDesired(record, now) : undefined;
  const drift =
    record !== undefined && desired !== undefined && planChanges(current, desired).changes.length > 0;
  const b = record?.baseline;
  return {
    principalArn,
    type: current.exists ? (current.type ?? 'STANDARD') : null,
    username: current.username ?? null,
    kubernetesGroups: current.kubernetesGroups,
    accessPolicies: current.policies,
    managed: desired !== undefined && ours(current, desired),
    baseline: b
      ? { exists: b.exists, kubernetesGroups: b.kubernetesGroups, accessPolicies: b.policies }
      : null,
    grants: (record?.grants ?? []).filter((g) => g.status === 'active').map(grantSummary),
    drift,
  };
}

/** Something on the entry is ours: we created it (our tag), or a grant of ours names a policy or group on it. */
function ours(current: AccessState, desired: DesiredAccess): boolean {
  return (
    current.tags?.[MANAGED_TAG_KEY] !== undefined ||
    current.policies.some((p) => desired.policies.has(p.policyArn)) ||
    current.kubernetesGroups.some((g) => desired.groups.has(g))
  );
}

export function grantSummary(g: Grant): GrantSummary {
  return {
    grantId: g.grantId,
    source: g.source,
    status: g.status,
    expiresAt: g.expiresAt ?? null,
    requestedBy: g.requestedBy ?? null,
    approvedBy: g.approvedBy ?? [],
  };
}

function tableText(rows: AccessRow[]): string {
  if (rows.length === 0) return '(no access entries)';
  return table(
    ['principal', 'type', 'groups', 'access policies', 'managed', 'grants', 'drift'],
    rows.map((r) => [
      r.principalArn,
      dash(r.type),
      dash(r.kubernetesGroups.join(',')),
      dash(policiesText(r.accessPolicies)),
      r.managed ? 'yes' : 'no',
      dash(r.grants.map((g) => `${g.grantId}${g.expiresAt ? ` until ${g.expiresAt}` : ''}`).join(' ')),
      r.drift ? 'DRIFT' : 'no',
    ]),
  );
}

function csvText(rows: AccessRow[]): string {
  const policies = (ps: PolicyAssociation[]) =>
    ps.map((p) => `${p.policyArn}@${scopeText(p.accessScope)}`).join(' ');
  return csv(
    [
      'principalArn',
      'type',
      'username',
      'kubernetesGroups',
      'accessPolicies',
      'managed',
      'baseline',
      'grants',
      'drift',
    ],
    rows.map((r) => [
      r.principalArn,
      r.type ?? '',
      r.username ?? '',
      r.kubernetesGroups.join(' '),
      policies(r.accessPolicies),
      String(r.managed),
      r.baseline === null
        ? ''
        : r.baseline.exists
          ? [policies(r.baseline.accessPolicies), r.baseline.kubernetesGroups.join(' ')]
              .filter(Boolean)
              .join(' ') || '(empty entry)'
          : '(no entry)',
      r.grants
        .map(
          (g) =>
            `${g.grantId}:${g.source}:${g.expiresAt ?? 'permanent'}:${g.requestedBy ?? ''}:${g.approvedBy.join('+')}`,
        )
        .join(' '),
      String(r.drift),
    ]),
  );
}
