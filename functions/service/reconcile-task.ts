/**
 * One reconcile task (issue 13): walk one cluster's managed principals from its cursor until the
 * invocation's deadline, comparing EKS with the ledger's desired state, then hand the rest to a
 * continuation. Drift detection and repair are the single-invocation reconciler's, unchanged:
 * a `drift` audit record per difference, and a converge request to the worker only with repairDrift.
 * It never writes EKS: the worker stays the only writer.
 *
 * EKS calls go through the caller's `eks` reader, whose clients spend the account-region's budget
 * (adapters/eks-budget.ts); this module only decides what to read and when to stop.
 */
import { createHash } from 'node:crypto';
import { type AuditRecord, buildAuditRecord, describeChange } from '../core/audit.js';
import type { ClusterDirectory, ClusterTarget } from '../core/cluster-target.js';
import { computeDesired } from '../core/desired.js';
import type { PrincipalRecord } from '../core/ledger.js';
import { planChanges } from '../core/plan.js';
import {
  addStats,
  type ClusterStats,
  completeCluster,
  cursorKey,
  donePrefix,
  freshCursor,
  NO_STATS,
  passRun,
  type ReconcileCursor,
  type ReconcilePass,
  type ReconcileTask,
} from '../core/reconcile-task.js';
import type { AccessRequest, AccessState } from '../core/types.js';
import type { AuditSink, ServiceLogger } from './grant-service.js';

/** The ledger reads a task makes, and the run record `status` shows. */
export interface TaskLedger {
  load(clusterKey: string, principalArn: string): Promise<PrincipalRecord>;
  listPrincipalsPage(clusterKey: string, startAfter: string | undefined, limit: number): Promise<string[]>;
  recordReconcileRun(run: {
    at: string;
    finishedAt: string;
    report: Record<string, number | boolean>;
  }): Promise<void>;
}

/** The pass and the cursors (adapters/reconcile-state.ts). */
export interface ReconcileState {
  getCursor(pk: string): Promise<ReconcileCursor | undefined>;
  putCursor(cursor: ReconcileCursor, expectedVersion: number): Promise<boolean>;
  getPass(): Promise<ReconcilePass | undefined>;
  putPass(pass: ReconcilePass, expectedVersion: number): Promise<boolean>;
}

/** Sends tasks to the reconcile queue, in the FIFO group of their target's account-region. */
export interface TaskQueue {
  send(entries: { task: ReconcileTask; target: ClusterTarget }[]): Promise<void>;
}

export interface AccessReader {
  readCurrent(target: ClusterTarget, principalArn: string): Promise<AccessState>;
}

export interface ReconcileTaskDeps {
  directory: ClusterDirectory;
  ledger: TaskLedger;
  state: ReconcileState;
  eks: AccessReader;
  audit: AuditSink;
  /** Sends a converge request to the worker (repairDrift only). */
  enqueue: (request: AccessRequest, breakGlass: boolean) => Promise<void>;
  tasks: TaskQueue;
  repairDrift: boolean;
  /** Principals checked at once; the budget, not this, sets the call rate. */
  concurrency: number;
  /** Principals read from the ledger and checkpointed at a time. */
  pageSize: number;
  logger: ServiceLogger;
  /** Epoch milliseconds; injected so the fleet benchmark runs this on a virtual clock. */
  clock?: () => number;
}

export type TaskOutcome =
  | { outcome: 'continued'; checked: number; startAfter: string | undefined }
  | { outcome: 'cluster-done'; checked: number; passComplete: boolean }
  | { outcome: 'dropped'; reason: string };

/**
 * Runs one task until `deadline` (epoch ms on `clock`): no principal is started after it. Returns
 * what happened; throws only when the ledger or the queue failed, so SQS redelivers the task (it then
 * resumes from the cursor it finds).
 */
export async function runReconcileTask(
  deps: ReconcileTaskDeps,
  task: ReconcileTask,
  deadline: number,
): Promise<TaskOutcome> {
  const clock = deps.clock ?? Date.now;
  const target = deps.directory.resolve(task.cluster);
  if (!target) return dropped(deps, task, 'the policy no longer names the cluster');
  const pk = cursorKey(target);
  const key = deps.directory.key(target);

  const pass = await deps.state.getPass();
  if (!pass || pass.passId !== task.passId) return dropped(deps, task, 'its pass is over or was replaced');
  if (pass.done[pk]) return dropped(deps, task, 'the cluster is already done in this pass (a duplicate)');

  const stored = await deps.state.getCursor(pk);
  // The cursor, not the message, says where to resume: a redelivered or duplicated message is behind it.
  let cursor: ReconcileCursor =
    stored && stored.passId === task.passId
      ? stored
      : { ...freshCursor(pk, task.passId, new Date(clock())), version: stored?.version ?? 0 };
  let checked = 0;
  let slice: ClusterStats = { ...NO_STATS, slices: 1 };

  while (!cursor.done && clock() < deadline) {
    const page = await deps.ledger.listPrincipalsPage(key, cursor.startAfter, deps.pageSize);
    const now = new Date(clock());
    const results: (ClusterStats | undefined)[] = new Array(page.length).fill(undefined);
    await mapBounded(
      page.map((_, i) => i),
      deps.concurrency,
      async (i) => {
        // Items start in order and started ones always finish, so what is done is a prefix.
        if (clock() >= deadline) return;
        results[i] = await checkPrincipal(deps, target, key, page[i] as string, now);
      },
    );
    const n = donePrefix(results.map((r) => r !== undefined));
    for (const r of results.slice(0, n)) slice = addStats(slice, r as ClusterStats);
    checked += n;
    const finished = n === page.length && page.length < deps.pageSize;
    const next: ReconcileCursor = {
      ...cursor,
      ...(n > 0 && { startAfter: page[n - 1] }),
      done: finished,
      stats: addStats(cursor.stats, slice),
      updatedAt: new Date(clock()).toISOString(),
    };
    if (!(await deps.state.putCursor(next, cursor.version))) {
      // Only one consumer per account-region runs at a time (FIFO group), so this is a redelivery
      // racing the invocation it replaced: that one owns the cursor and carries on.
      return dropped(deps, task, 'another invocation moved the cursor');
    }
    cursor = { ...next, version: cursor.version + 1 };
    slice = { ...NO_STATS };
    if (n < page.length) break;
  }

  if (!cursor.done) {
    await deps.tasks.send([
      {
        task: {
          schemaVersion: 1,
          kind: 'reconcile-task',
          passId: task.passId,
          cluster: task.cluster,
          ...(cursor.startAfter !== undefined && { startAfter: cursor.startAfter }),
          slice: task.slice + 1,
        },
        target,
      },
    ]);
    await touchPass(deps, task.passId, new Date(clock()));
    return { outcome: 'continued', checked, startAfter: cursor.startAfter };
  }
  const passComplete = await finishCluster(deps, task.passId, pk, cursor.stats, new Date(clock()));
  return { outcome: 'cluster-done', checked, passComplete };
}

async function checkPrincipal(
  deps: ReconcileTaskDeps,
  target: ClusterTarget,
  key: string,
  principalArn: string,
  now: Date,
): Promise<ClusterStats> {
  const stats = { ...NO_STATS };
  try {
    const record = await deps.ledger.load(key, principalArn);
    // Its expiry is overdue, so the scheduled run re-queued it: EKS still holding the access is the
    // expiry's to remove, not drift.
    if (hasOverdueGrant(record, now)) {
      stats.expiring = 1;
      return stats;
    }
    const current = await deps.eks.readCurrent(target, principalArn);
    const plan = planChanges(current, computeDesired(record, now));
    stats.principalsChecked = 1;
    if (plan.changes.length === 0) return stats;
    stats.drifted = 1;
    await deps.audit.publish(driftRecord(target.alias, principalArn, plan.changes, now));
    if (deps.repairDrift) {
      await deps.enqueue(convergeRequest(target.alias, principalArn, now), false);
      stats.repairsEnqueued = 1;
    }
  } catch (err) {
    stats.errors = 1;
    deps.logger.error('could not check a principal for drift', {
      clusterName: target.alias,
      principalArn,
      error: (err as Error).message,
    });
  }
  return stats;
}

function hasOverdueGrant(record: PrincipalRecord, now: Date): boolean {
  return record.grants.some(
    (g) => g.status === 'active' && g.expiresAt !== undefined && Date.parse(g.expiresAt) <= now.getTime(),
  );
}

/** Records the cluster in its pass; the last one records the run for `status`. True when the pass completed. */
async function finishCluster(
  deps: ReconcileTaskDeps,
  passId: string,
  pk: string,
  stats: ClusterStats,
  now: Date,
): Promise<boolean> {
  // Clusters of other account-regions finish concurrently: a lost conditional put re-reads and retries.
  // Every lost put means another writer's put won, and each cluster completes once (plus a bounded
  // number of progress touches), so 2 × clusters + 10 rounds always suffice; the fleet simulation's 50
  // account-regions finishing at the same instant needed more than a fixed 20.
  let rounds = 20;
  for (let attempt = 0; attempt < rounds; attempt++) {
    const pass = await deps.state.getPass();
    if (pass) rounds = Math.max(rounds, 2 * pass.clusters.length + 10);
    if (!pass || pass.passId !== passId || pass.done[pk]) return false;
    const next = completeCluster(pass, pk, stats, now);
    if (!(await deps.state.putPass(next, pass.version))) continue;
    if (!next.finishedAt) return false;
    const run = passRun(next);
    deps.logger.info('reconcile pass complete', { passId, ...run.report });
    try {
      await deps.ledger.recordReconcileRun(run);
    } catch (err) {
      // Best effort, as before: `status` shows the last run, and a failed write must not redo the pass.
      deps.logger.warn('could not record the reconcile run', { error: (err as Error).message });
    }
    return true;
  }
  throw new Error(`could not record cluster ${pk} in pass ${passId}: too many concurrent updates`);
}

/** Best effort: progress keeps a long pass from looking abandoned (core passDecision). */
async function touchPass(deps: ReconcileTaskDeps, passId: string, now: Date): Promise<void> {
  const pass = await deps.state.getPass();
  if (!pass || pass.passId !== passId || pass.finishedAt) return;
  // A lost race means another task just wrote progress: good enough.
  await deps.state.putPass({ ...pass, progressAt: now.toISOString() }, pass.version);
}

function dropped(deps: ReconcileTaskDeps, task: ReconcileTask, reason: string): TaskOutcome {
  deps.logger.info('reconcile task dropped', { passId: task.passId, clusterName: task.cluster, reason });
  return { outcome: 'dropped', reason };
}

export function driftRecord(
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
export function convergeRequest(clusterName: string, principalArn: string, now: Date): AccessRequest {
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

/** Runs `fn` over items with at most `limit` in flight, starting them in order. */
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
