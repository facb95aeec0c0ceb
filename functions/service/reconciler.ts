/**
 * The scheduled safety net (every 5 minutes):
 * 1. enqueues an expiry for every active grant past its expiry whose schedule did not
 *    fire (Scheduler outage, deleted schedule, lost message);
 * 2. compares EKS with the desired state for every principal this system manages and
 *    publishes a `drift` audit record for each difference. It repairs drift (by asking
 *    the worker to converge) only when configured to: by default a human's change is
 *    reported, never silently fought.
 * It never writes EKS itself: the worker stays the only writer.
 */
import { createHash } from 'node:crypto';
import type { EksAdapter } from '../adapters/eks.js';
import type { LedgerAdapter } from '../adapters/ledger.js';
import { expiryRequest } from '../adapters/scheduler.js';
import { type AuditRecord, buildAuditRecord, describeChange } from '../core/audit.js';
import type { ClusterDirectory } from '../core/cluster-target.js';
import { computeDesired } from '../core/desired.js';
import { planChanges } from '../core/plan.js';
import type { AccessRequest } from '../core/types.js';
import type { AuditSink, ServiceLogger } from './grant-service.js';

export interface ReconcilerDeps {
  ledger: LedgerAdapter;
  eks: EksAdapter;
  audit: AuditSink;
  /** Sends a request to the queue of the worker that owns it (break-glass or standard). */
  enqueue: (request: AccessRequest, breakGlass: boolean) => Promise<void>;
  /** Aliases to check, in this order. */
  clusters: string[];
  /**
   * Where each alias is (core/cluster-target.ts): ledger keys and the EKS target. Absent: every alias
   * is a cluster of that name in the default client's account and region (keys = aliases).
   */
  directory?: ClusterDirectory;
  repairDrift: boolean;
  concurrency: number;
  logger: ServiceLogger;
  now?: () => Date;
  /** Stop starting new principals this long before the invocation deadline. */
  deadline?: () => number;
  random?: () => number;
}

export interface ReconcileReport {
  expiriesEnqueued: number;
  principalsChecked: number;
  drifted: number;
  repairsEnqueued: number;
  errors: number;
  /** True when the deadline cut the run short; the next run carries on. */
  truncated: boolean;
}

export async function reconcile(deps: ReconcilerDeps): Promise<ReconcileReport> {
  const now = (deps.now ?? (() => new Date()))();
  const report: ReconcileReport = {
    expiriesEnqueued: 0,
    principalsChecked: 0,
    drifted: 0,
    repairsEnqueued: 0,
    errors: 0,
    truncated: false,
  };

  const overdue = await deps.ledger.listExpiredActive(now);
  const expiring = new Set<string>();
  for (const ref of overdue) {
    // The ledger holds cluster keys; requests name the alias. A key the policy no longer names
    // keeps itself, and the worker refuses that request (the cluster is not ours any more).
    const alias = deps.directory?.fromKey(ref.clusterName)?.alias ?? ref.clusterName;
    // Same request id as the schedule would have sent: if it did fire meanwhile, the
    // queue's deduplication or the worker's idempotency makes the second one a no-op.
    await deps.enqueue(
      expiryRequest({ clusterName: alias, principalArn: ref.principalArn }, ref.grantId, ref.clusterName),
      ref.source === 'break-glass',
    );
    expiring.add(`${ref.clusterName}\n${ref.principalArn}`);
    report.expiriesEnqueued++;
    deps.logger.warn('grant past its expiry was still active; expiry enqueued by the reconciler', { ...ref });
  }

  for (const clusterName of deps.clusters) {
    const target = deps.directory?.resolve(clusterName);
    const key = target && deps.directory ? deps.directory.key(target) : clusterName;
    // Start each run at a random point: a cluster too big for one run is still covered by the
    // next ones instead of re-checking the same head every time and never reaching the tail.
    const principals = rotate(await deps.ledger.listPrincipals(key), deps.random ?? Math.random);
    await mapBounded(principals, deps.concurrency, async (principalArn) => {
      if (deps.deadline && Date.now() > deps.deadline()) {
        report.truncated = true;
        return;
      }
      if (expiring.has(`${key}\n${principalArn}`)) return;
      try {
        const record = await deps.ledger.load(key, principalArn);
        const current = await deps.eks.readCurrent(target ?? clusterName, principalArn);
        const plan = planChanges(current, computeDesired(record, now));
        report.principalsChecked++;
        if (plan.changes.length === 0) return;
        report.drifted++;
        await deps.audit.publish(driftRecord(clusterName, principalArn, plan.changes, now));
        if (deps.repairDrift) {
          await deps.enqueue(convergeRequest(clusterName, principalArn, now), false);
          report.repairsEnqueued++;
        }
      } catch (err) {
        report.errors++;
        deps.logger.error('could not check a principal for drift', {
          clusterName,
          principalArn,
          error: (err as Error).message,
        });
      }
    });
  }
  // Best effort: `status` shows when the safety net last ran; a failed write must not fail the run.
  try {
    await deps.ledger.recordReconcileRun({
      at: now.toISOString(),
      finishedAt: new Date().toISOString(),
      report: { ...report },
    });
  } catch (err) {
    deps.logger.warn('could not record the reconcile run', { error: (err as Error).message });
  }
  return report;
}

function driftRecord(
  clusterName: string,
  principalArn: string,
  changes: ReturnType<typeof planChanges>['changes'],
  now: Date,
): AuditRecord {
  const requestId = `drift-${hash(`${clusterName}\n${principalArn}`).slice(0, 24)}-${now.getTime()}`;
  return buildAuditRecord(
    {
      requestId,
      outcome: 'drift',
      attempt: 1,
      at: now,
      attemptKey: requestId,
      request: { clusterName, principalArn, source: 'reconcile' },
      reason: {
        code: 'DRIFT',
        message: `EKS differs from the ledger's desired state for ${principalArn} on ${clusterName}; ${changes.length} change(s) would converge it`,
      },
      changes: changes.map((c) => describeChange(c, 'planned')),
    },
    (s) => hash(s).slice(0, 32),
  );
}

/** Asks the worker to converge EKS to the ledger; carries no access of its own. */
function convergeRequest(clusterName: string, principalArn: string, now: Date): AccessRequest {
  return {
    schemaVersion: 1,
    requestId: `reconcile-${hash(`${clusterName}\n${principalArn}`).slice(0, 32)}-${Math.floor(now.getTime() / 60_000)}`,
    action: 'revoke',
    source: 'reconcile',
    clusterName,
    principalArn,
  };
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function mapBounded<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

export function rotate<T>(items: T[], random: () => number): T[] {
  const at = Math.floor(random() * items.length);
  return [...items.slice(at), ...items.slice(0, at)];
}
