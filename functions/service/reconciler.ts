/**
 * The scheduled safety net (every 5 minutes):
 * 1. enqueues an expiry for every active grant past its expiry whose schedule did not
 *    fire (Scheduler outage, deleted schedule, lost message);
 * 2. starts a reconcile pass, unless one is still running: one task per cluster of the policy on the
 *    reconcile queue. The tasks (service/reconcile-task.ts) compare EKS with the desired state of every
 *    principal this system manages, under a per-account-region EKS call budget, and publish a `drift`
 *    audit record for each difference. Drift is repaired (by asking the worker to converge) only when
 *    configured to: by default a human's change is reported, never silently fought.
 * It never writes EKS itself: the worker stays the only writer.
 *
 * Why a fan-out: one invocation walking every cluster within 240 s cannot cover a fleet. At R = 20 EKS
 * calls/s a single 3,000-entry cluster needs 300 s; the old random start offset covered a large fleet
 * only by chance. A pass now takes as long as the slowest account-region's budget needs, and resumes
 * from per-cluster cursors across invocations.
 */
import type { ExpiredGrantRef } from '../adapters/ledger.js';
import { expiryRequest } from '../adapters/scheduler.js';
import type { ClusterDirectory } from '../core/cluster-target.js';
import { cursorKey, newPass, passDecision, passRun, type ReconcilePass } from '../core/reconcile-task.js';
import type { AccessRequest } from '../core/types.js';
import type { ServiceLogger } from './grant-service.js';
import type { ReconcileState, TaskLedger, TaskQueue } from './reconcile-task.js';

export { mapBounded } from './reconcile-task.js';

export interface ReconcilerDeps {
  ledger: Pick<TaskLedger, 'recordReconcileRun'> & {
    listExpiredActive(before: Date): Promise<ExpiredGrantRef[]>;
  };
  state: ReconcileState;
  tasks: TaskQueue;
  /** Sends a request to the queue of the worker that owns it (break-glass or standard). */
  enqueue: (request: AccessRequest, breakGlass: boolean) => Promise<void>;
  /** Every cluster of the policy, where it is (core/cluster-target.ts). */
  directory: ClusterDirectory;
  /** A running pass that saved no progress for this long is abandoned and a new one started. */
  staleMs: number;
  logger: ServiceLogger;
  now?: () => Date;
}

export interface ScheduledRunReport {
  expiriesEnqueued: number;
  /** `started`: this run started pass `passId`; `running`: pass `passId` is still going. */
  pass: 'started' | 'running';
  passId: string;
  tasksEnqueued: number;
}

export async function startReconcilePass(deps: ReconcilerDeps): Promise<ScheduledRunReport> {
  const now = (deps.now ?? (() => new Date()))();
  const expiriesEnqueued = await sweepExpiries(deps, now);

  const current = await deps.state.getPass();
  const decision = passDecision(current, now, deps.staleMs);
  if (decision === 'running' && current) {
    return { expiriesEnqueued, pass: 'running', passId: current.passId, tasksEnqueued: 0 };
  }
  if (decision === 'abandon-and-start' && current) {
    deps.logger.warn('reconcile pass made no progress; abandoned, starting a new one', {
      passId: current.passId,
      done: Object.keys(current.done).length,
      clusters: current.clusters.length,
    });
    // `status` then shows the abandoned pass, `truncated: true`, until the new one completes.
    await recordRun(deps, current);
  }

  const targets = deps.directory.targets();
  const passId = `pass-${now.getTime()}`;
  const pass = newPass(
    passId,
    targets.map((t) => ({ alias: t.alias, pk: cursorKey(t) })),
    expiriesEnqueued,
    now,
  );
  // Conditional on the pass we read: of two overlapping scheduled runs, one starts the pass.
  if (!(await deps.state.putPass(pass, current?.version ?? 0))) {
    const winner = await deps.state.getPass();
    return { expiriesEnqueued, pass: 'running', passId: winner?.passId ?? passId, tasksEnqueued: 0 };
  }
  if (pass.finishedAt) await recordRun(deps, pass);
  await deps.tasks.send(
    targets.map((target) => ({
      task: { schemaVersion: 1, kind: 'reconcile-task', passId, cluster: target.alias, slice: 0 },
      target,
    })),
  );
  deps.logger.info('reconcile pass started', { passId, clusters: targets.length });
  return { expiriesEnqueued, pass: 'started', passId, tasksEnqueued: targets.length };
}

async function sweepExpiries(deps: ReconcilerDeps, now: Date): Promise<number> {
  const overdue = await deps.ledger.listExpiredActive(now);
  for (const ref of overdue) {
    // The ledger holds cluster keys; requests name the alias. A key the policy no longer names
    // keeps itself, and the worker refuses that request (the cluster is not ours any more).
    const alias = deps.directory.fromKey(ref.clusterName)?.alias ?? ref.clusterName;
    // Same request id as the schedule would have sent: if it did fire meanwhile, the
    // queue's deduplication or the worker's idempotency makes the second one a no-op.
    await deps.enqueue(
      expiryRequest({ clusterName: alias, principalArn: ref.principalArn }, ref.grantId, ref.clusterName),
      ref.source === 'break-glass',
    );
    deps.logger.warn('grant past its expiry was still active; expiry enqueued by the reconciler', { ...ref });
  }
  return overdue.length;
}

async function recordRun(deps: ReconcilerDeps, pass: ReconcilePass): Promise<void> {
  // Best effort: `status` shows when the safety net last ran; a failed write must not fail the run.
  try {
    await deps.ledger.recordReconcileRun(passRun(pass));
  } catch (err) {
    deps.logger.warn('could not record the reconcile run', { error: (err as Error).message });
  }
}
