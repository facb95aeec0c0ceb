/**
 * The reconciler's fan-out (issue 13), as data and pure transitions; the service loads, applies and
 * saves (DESIGN.md style 11).
 *
 * - A **pass** is started by the scheduled reconciler: one task per cluster of the policy goes to the
 *   reconcile queue. The pass completes when every cluster's task chain has walked all of its managed
 *   principals; its start-to-finish time is the coverage time `status` and the benchmark report.
 * - A **task** checks one cluster from a cursor until its invocation's deadline, then re-enqueues its
 *   continuation. The **cursor** (one ledger item per cluster) is the source of truth: a redelivered or
 *   duplicated task resumes from it, not from the principal its message names, so nothing is walked
 *   twice and a cut-short invocation loses nothing it saved.
 * - Tasks of one account-region share one FIFO message group, so SQS hands them to one consumer at a
 *   time and the per-account-region EKS budget (core/token-bucket.ts) can be kept in that consumer's
 *   memory, exactly, with no shared counter to coordinate (README "Reconcile at fleet scale").
 */
import type { ClusterTarget } from './cluster-target.js';

export interface ReconcileTask {
  schemaVersion: 1;
  kind: 'reconcile-task';
  passId: string;
  /** The policy alias (what requests and audit records call the cluster). */
  cluster: string;
  /** Resume after this principal ARN (absent: from the first). Informative: the cursor item wins. */
  startAfter?: string;
  /** 0 for the task the pass started, +1 for each continuation. */
  slice: number;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ALIAS = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;

export type ParsedTask = { ok: true; task: ReconcileTask } | { ok: false; reason: string };

/** Parse at the edge: a reconcile-queue body → a typed task, or why not. Unknown fields are refused. */
export function parseReconcileTask(body: string): ParsedTask {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'body is not JSON' };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    return { ok: false, reason: 'not an object' };
  const o = raw as Record<string, unknown>;
  const known = new Set(['schemaVersion', 'kind', 'passId', 'cluster', 'startAfter', 'slice']);
  const unknown = Object.keys(o).filter((k) => !known.has(k));
  if (unknown.length > 0) return { ok: false, reason: `unknown field(s) ${unknown.join(', ')}` };
  if (o.schemaVersion !== 1 || o.kind !== 'reconcile-task')
    return { ok: false, reason: 'not a reconcile task v1' };
  if (typeof o.passId !== 'string' || !ID.test(o.passId)) return { ok: false, reason: 'bad passId' };
  if (typeof o.cluster !== 'string' || !ALIAS.test(o.cluster)) return { ok: false, reason: 'bad cluster' };
  if (o.startAfter !== undefined && (typeof o.startAfter !== 'string' || o.startAfter.length > 2048)) {
    return { ok: false, reason: 'bad startAfter' };
  }
  if (typeof o.slice !== 'number' || !Number.isInteger(o.slice) || o.slice < 0) {
    return { ok: false, reason: 'bad slice' };
  }
  return {
    ok: true,
    task: {
      schemaVersion: 1,
      kind: 'reconcile-task',
      passId: o.passId,
      cluster: o.cluster,
      ...(o.startAfter !== undefined && { startAfter: o.startAfter as string }),
      slice: o.slice,
    },
  };
}

/**
 * The FIFO group of a cluster's tasks: its account-region. EKS limits requests per account and region,
 * and a group is delivered to one consumer at a time, so one budget per group is one budget per limit.
 */
export function reconcileGroupId(target: Pick<ClusterTarget, 'account' | 'region'>): string {
  return `reconcile-${target.account}-${target.region}`;
}

/** The ledger partition key of a cluster's cursor (the reconciler's IAM allows `RECONCILE#*` only). */
export function cursorKey(target: Pick<ClusterTarget, 'account' | 'region' | 'name'>): string {
  return `RECONCILE#${target.account}#${target.region}#${target.name}`;
}

export interface ClusterStats {
  principalsChecked: number;
  drifted: number;
  repairsEnqueued: number;
  errors: number;
  /** Principals with an overdue active grant: their expiry is queued, drift would be a false alarm. */
  expiring: number;
  /** Invocations the cluster took (1 + continuations). */
  slices: number;
}

export const NO_STATS: ClusterStats = Object.freeze({
  principalsChecked: 0,
  drifted: 0,
  repairsEnqueued: 0,
  errors: 0,
  expiring: 0,
  slices: 0,
});

export function addStats(a: ClusterStats, b: ClusterStats): ClusterStats {
  return {
    principalsChecked: a.principalsChecked + b.principalsChecked,
    drifted: a.drifted + b.drifted,
    repairsEnqueued: a.repairsEnqueued + b.repairsEnqueued,
    errors: a.errors + b.errors,
    expiring: a.expiring + b.expiring,
    slices: a.slices + b.slices,
  };
}

/** Where one cluster's walk of one pass stands. Saved after every page of principals. */
export interface ReconcileCursor {
  pk: string;
  passId: string;
  /** The last principal checked, in the ledger's (sorted) order; absent = none yet. */
  startAfter?: string;
  done: boolean;
  stats: ClusterStats;
  updatedAt: string;
  /** Optimistic-concurrency counter of the item (0 = not stored yet). */
  version: number;
}

export function freshCursor(pk: string, passId: string, now: Date): ReconcileCursor {
  return { pk, passId, done: false, stats: { ...NO_STATS }, updatedAt: now.toISOString(), version: 0 };
}

/** One cluster as the pass lists it. */
export interface PassCluster {
  alias: string;
  pk: string;
}

export interface ReconcilePass {
  passId: string;
  startedAt: string;
  clusters: PassCluster[];
  /** Cursor pk → the cluster's totals, once its walk finished. */
  done: Record<string, ClusterStats & { finishedAt: string }>;
  expiriesEnqueued: number;
  /** Last time any task of the pass saved progress: a pass silent for too long is abandoned. */
  progressAt: string;
  finishedAt?: string;
  version: number;
}

export function newPass(
  passId: string,
  clusters: PassCluster[],
  expiriesEnqueued: number,
  now: Date,
): ReconcilePass {
  const at = now.toISOString();
  return {
    passId,
    startedAt: at,
    clusters,
    done: {},
    expiriesEnqueued,
    progressAt: at,
    ...(clusters.length === 0 && { finishedAt: at }),
    version: 0,
  };
}

/**
 * What the scheduled run does about the current pass: start a new one when there is none, the last
 * completed, or it made no progress for `staleMs` (its tasks died in the DLQ, or the policy changed
 * under it); otherwise leave it running. A pass outliving the schedule's period is normal at fleet
 * scale (a 3,000-entry cluster alone needs 300 s at 20 calls/s), so periods do not start passes.
 */
export function passDecision(
  pass: ReconcilePass | undefined,
  now: Date,
  staleMs: number,
): 'start' | 'running' | 'abandon-and-start' {
  if (!pass || pass.finishedAt) return 'start';
  return now.getTime() - Date.parse(pass.progressAt) > staleMs ? 'abandon-and-start' : 'running';
}

/** The pass with one cluster finished (idempotent: a cluster counts once). */
export function completeCluster(
  pass: ReconcilePass,
  pk: string,
  stats: ClusterStats,
  now: Date,
): ReconcilePass {
  if (pass.done[pk]) return pass;
  const done = { ...pass.done, [pk]: { ...stats, finishedAt: now.toISOString() } };
  const complete = pass.clusters.every((c) => done[c.pk] !== undefined);
  return {
    ...pass,
    done,
    progressAt: now.toISOString(),
    ...(complete && { finishedAt: now.toISOString() }),
  };
}

/**
 * The record `status` shows as lastReconcile (adapters/ledger.ts ReconcileRun): same fields as the
 * single-invocation reconciler wrote (at, finishedAt, report with its counters and `truncated`), plus
 * the pass's size and its coverage time.
 */
export function passRun(pass: ReconcilePass): {
  at: string;
  finishedAt: string;
  report: Record<string, number | boolean>;
} {
  const totals = Object.values(pass.done).reduce<ClusterStats>((a, b) => addStats(a, b), { ...NO_STATS });
  const finishedAt = pass.finishedAt ?? pass.progressAt;
  return {
    at: pass.startedAt,
    finishedAt,
    report: {
      expiriesEnqueued: pass.expiriesEnqueued,
      principalsChecked: totals.principalsChecked,
      drifted: totals.drifted,
      repairsEnqueued: totals.repairsEnqueued,
      errors: totals.errors,
      truncated: pass.finishedAt === undefined,
      clusters: pass.clusters.length,
      slices: totals.slices,
      coverageSeconds: (Date.parse(finishedAt) - Date.parse(pass.startedAt)) / 1000,
    },
  };
}

/** How many leading items are done: the cursor may only move past a contiguous prefix. */
export function donePrefix(done: readonly boolean[]): number {
  const i = done.indexOf(false);
  return i === -1 ? done.length : i;
}
