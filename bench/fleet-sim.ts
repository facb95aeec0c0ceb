/**
 * The fleet benchmark's simulation: the real fan-out code (startReconcilePass, runReconcileTask, the
 * pass and cursor transitions of core/reconcile-task.ts and the token bucket) on a virtual clock, with
 * in-memory stand-ins for what it calls: the ledger and the reconcile state (DynamoDB), the reconcile
 * queue with its FIFO groups and Lambda's one-consumer-per-group delivery, and EKS, which answers after
 * a latency and throttles anyone above R calls/s per account-region. Nothing in functions/ is faked.
 *
 * Why simulate: 1,000 clusters × 3,000 entries over 50 account-regions is 6 million EKS calls, 100
 * minutes of budget per account-region at R = 20/s. On a virtual clock the same code covers it in
 * seconds, and what it measures is the code's scheduling (how close the pass comes to the budget's
 * floor), not the machine.
 */
import { ClusterDirectory, type ClusterTarget } from '../functions/core/cluster-target.js';
import type { PrincipalRecord } from '../functions/core/ledger.js';
import type { GuardrailPolicy } from '../functions/core/policy.js';
import {
  type passRun,
  type ReconcileCursor,
  type ReconcilePass,
  type ReconcileTask,
  reconcileGroupId,
} from '../functions/core/reconcile-task.js';
import { eksCallBudget } from '../functions/core/token-bucket.js';
import type { AccessState } from '../functions/core/types.js';
import { type ReconcileTaskDeps, runReconcileTask } from '../functions/service/reconcile-task.js';
import { startReconcilePass } from '../functions/service/reconciler.js';
import { VirtualClock } from './lib/virtual-clock.js';

export interface FleetScale {
  name: string;
  clusters: number;
  /** Managed access entries per cluster. */
  entries: number;
  accountRegions: number;
}

export interface SimOptions {
  /** The budget per account-region (RECONCILE_EKS_CALLS_PER_SECOND). */
  ratePerSecond: number;
  /** The reconcile-task function's timeout and the margin it keeps (serverless.yml, config.ts). */
  taskTimeoutMs: number;
  taskMarginMs: number;
  concurrency: number;
  pageSize: number;
  /** Concurrent task invocations (reconcileMaximumConcurrency). */
  maxConsumers: number;
  /** EKS answer time per call. */
  eksLatencyMs: number;
  /** DynamoDB and SQS answer time per call. */
  awsLatencyMs: number;
  /** From a task's message becoming available to its invocation starting (poll + invoke). */
  deliveryMs: number;
  quantumMs: number;
}

export interface SimResult extends FleetScale {
  coverageSeconds: number;
  floorSeconds: number;
  principalsChecked: number;
  drifted: number;
  errors: number;
  invocations: number;
  eksCalls: number;
  /** Calls EKS refused for exceeding R/s in an account-region (the budget should make this 0). */
  throttled: number;
  /** Most calls any account-region made in one aligned second. */
  maxCallsInASecond: number;
  simulatedTurns: number;
  wallSeconds: number;
  /** CPU time the simulation took (user + system): what it costs on a machine shared with others. */
  cpuSeconds: number;
}

const T0 = Date.parse('2026-01-05T00:00:00.000Z');
const REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2', 'us-west-2'];
const VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
const POLICY = { policyArn: VIEW, accessScope: { type: 'namespace' as const, namespaces: ['team-a'] } };
const arnOf = (i: number) => `arn:aws:iam::111122223333:role/fleet/p-${String(i).padStart(5, '0')}`;
const indexOf = (arn: string) => Number(arn.slice(arn.lastIndexOf('-') + 1));

export async function simulateFleet(scale: FleetScale, o: SimOptions): Promise<SimResult> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const clock = new VirtualClock(T0);
  const now = () => new Date(clock.now());
  const accountOf = (a: number) => String(100000000000 + Math.floor(a / REGIONS.length));
  const clusters: Record<string, unknown> = {};
  const entriesByAr = new Map<string, number>();
  for (let c = 0; c < scale.clusters; c++) {
    const a = c % scale.accountRegions;
    const account = accountOf(a);
    const region = REGIONS[a % REGIONS.length] as string;
    clusters[`c${String(c).padStart(4, '0')}`] = { rules: {}, account, region };
    entriesByAr.set(`${account}:${region}`, (entriesByAr.get(`${account}:${region}`) ?? 0) + scale.entries);
  }
  const policy = { version: 1, clusters } as unknown as GuardrailPolicy;
  const directory = new ClusterDirectory(policy, { account: accountOf(0), region: REGIONS[0] as string });

  // ── DynamoDB: the ledger (every cluster key holds `entries` principals, each one active grant) ──
  // One record per cluster, handed out for each of its principals (the service only reads it): the
  // simulation's own allocations would otherwise dominate its cost.
  const records = new Map<string, PrincipalRecord>();
  const record = (key: string, principalArn: string): PrincipalRecord => {
    let r = records.get(key);
    if (!r) {
      r = newRecord(key, principalArn);
      records.set(key, r);
    }
    return r;
  };
  const newRecord = (key: string, principalArn: string): PrincipalRecord => ({
    clusterName: key,
    principalArn,
    baseline: { exists: false, kubernetesGroups: [], policies: [] },
    grants: [
      {
        grantId: 'g',
        requestId: 'g',
        source: 'ticket',
        policies: [POLICY],
        kubernetesGroups: [],
        status: 'active',
        createdAt: '2026-01-01T00:00:00.000Z',
        version: 1,
      },
    ],
  });
  let lastRun: ReturnType<typeof passRun> | undefined;
  const ledger = {
    // No latency of its own: a point read, overlapped with the EKS reads of the other lanes, and a
    // timer per principal would double the simulation's cost for no change in the result.
    async load(key: string, principalArn: string) {
      return record(key, principalArn);
    },
    async listPrincipalsPage(_key: string, startAfter: string | undefined, limit: number) {
      await clock.sleep(o.awsLatencyMs);
      const from = startAfter === undefined ? 0 : indexOf(startAfter) + 1;
      const out: string[] = [];
      for (let i = from; i < Math.min(scale.entries, from + limit); i++) out.push(arnOf(i));
      return out;
    },
    async recordReconcileRun(run: ReturnType<typeof passRun>) {
      await clock.sleep(o.awsLatencyMs);
      lastRun = run;
    },
    async listExpiredActive() {
      await clock.sleep(o.awsLatencyMs);
      return [];
    },
  };
  const cursors = new Map<string, ReconcileCursor>();
  let pass: ReconcilePass | undefined;
  // Conditional puts on `version`, as adapters/reconcile-state.ts does them. Stored objects are handed
  // out as they are: the service never mutates what it reads.
  const state = {
    async getCursor(pk: string) {
      await clock.sleep(o.awsLatencyMs);
      return cursors.get(pk);
    },
    async putCursor(cursor: ReconcileCursor, expected: number) {
      await clock.sleep(o.awsLatencyMs);
      if ((cursors.get(cursor.pk)?.version ?? 0) !== expected) return false;
      cursors.set(cursor.pk, { ...cursor, version: expected + 1 });
      return true;
    },
    async getPass() {
      await clock.sleep(o.awsLatencyMs);
      return pass;
    },
    async putPass(next: ReconcilePass, expected: number) {
      await clock.sleep(o.awsLatencyMs);
      if ((pass?.version ?? 0) !== expected) return false;
      pass = { ...next, version: expected + 1 };
      return true;
    },
  };

  // ── SQS FIFO + Lambda: one in-flight task per group, at most maxConsumers invocations ──
  const groups = new Map<string, ReconcileTask[]>();
  const busy = new Set<string>();
  const ready: string[] = [];
  const waiting: (() => void)[] = [];
  const wake = () => waiting.shift()?.();
  const tasks = {
    async send(entries: { task: ReconcileTask; target: ClusterTarget }[]) {
      await clock.sleep(o.awsLatencyMs);
      for (const { task, target } of entries) {
        const g = reconcileGroupId(target);
        const queue = groups.get(g) ?? [];
        queue.push(task);
        groups.set(g, queue);
        if (!busy.has(g) && !ready.includes(g)) {
          ready.push(g);
          wake();
        }
      }
    },
  };

  // ── EKS: latency, and a server-side limit of R calls/s per account-region (burst R) ──
  const answer: AccessState = {
    exists: true,
    type: 'STANDARD',
    kubernetesGroups: [],
    policies: [POLICY],
    tags: {},
  };
  // Per account-region: the reconciler's budget (as the task wiring builds it) and EKS's own limit.
  interface ArState {
    budget: ReturnType<typeof eksCallBudget>;
    tokens: number;
    at: number;
    /** Calls per aligned second since T0. */
    perSecond: number[];
  }
  const arStates = new WeakMap<ClusterTarget, ArState>();
  const byAr = new Map<string, ArState>();
  const stateOf = (target: ClusterTarget): ArState => {
    let s = arStates.get(target);
    if (!s) {
      const ar = `${target.account}:${target.region}`;
      s = byAr.get(ar);
      if (!s) {
        s = {
          budget: eksCallBudget(o.ratePerSecond, { clock: clock.now, sleep: clock.sleep }),
          tokens: o.ratePerSecond,
          at: clock.now(),
          perSecond: [],
        };
        byAr.set(ar, s);
      }
      arStates.set(target, s);
    }
    return s;
  };
  let eksCalls = 0;
  let throttled = 0;
  const call = async (s: ArState) => {
    await s.budget.take();
    const t = clock.now();
    s.tokens = Math.min(o.ratePerSecond, s.tokens + ((t - s.at) / 1000) * o.ratePerSecond);
    s.at = t;
    const second = Math.floor((t - T0) / 1000);
    s.perSecond[second] = (s.perSecond[second] ?? 0) + 1;
    eksCalls += 1;
    if (o.eksLatencyMs > 0) await clock.sleep(o.eksLatencyMs);
    if (s.tokens < 1) {
      throttled += 1;
      throw new Error('ThrottlingException: Rate exceeded');
    }
    s.tokens -= 1;
  };
  const eks = {
    async readCurrent(target: ClusterTarget, _principalArn: string) {
      const s = stateOf(target);
      await call(s); // DescribeAccessEntry
      await call(s); // ListAssociatedAccessPolicies
      return answer;
    },
  };

  let drifted = 0;
  const deps: ReconcileTaskDeps = {
    directory,
    ledger,
    state,
    eks,
    audit: {
      publish: async () => {
        drifted += 1;
      },
    },
    enqueue: async () => {},
    tasks,
    repairDrift: false,
    concurrency: o.concurrency,
    pageSize: o.pageSize,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    clock: clock.now,
  };

  let invocations = 0;
  const consumer = async () => {
    for (;;) {
      const g = ready.shift();
      if (g === undefined) {
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      const task = groups.get(g)?.shift();
      if (!task) continue;
      busy.add(g);
      await clock.sleep(o.deliveryMs);
      const deadline = clock.now() + o.taskTimeoutMs - o.taskMarginMs;
      invocations += 1;
      await runReconcileTask(deps, task, deadline);
      busy.delete(g);
      if ((groups.get(g)?.length ?? 0) > 0) {
        ready.push(g);
        wake();
      }
    }
  };
  for (let i = 0; i < o.maxConsumers; i++) void consumer();

  void startReconcilePass({
    ledger,
    state,
    tasks,
    enqueue: async () => {},
    directory,
    staleMs: 900_000,
    logger: deps.logger,
    now,
  });
  await clock.run(() => lastRun !== undefined, o.quantumMs);

  const run = lastRun as ReturnType<typeof passRun>;
  let maxCallsInASecond = 0;
  for (const s of byAr.values())
    for (const n of s.perSecond) if (n !== undefined && n > maxCallsInASecond) maxCallsInASecond = n;
  const floorSeconds = (2 * Math.max(...entriesByAr.values())) / o.ratePerSecond;
  return {
    ...scale,
    coverageSeconds: run.report.coverageSeconds as number,
    floorSeconds,
    principalsChecked: run.report.principalsChecked as number,
    drifted,
    errors: run.report.errors as number,
    invocations,
    eksCalls,
    throttled,
    maxCallsInASecond,
    simulatedTurns: clock.turns,
    wallSeconds: (performance.now() - started) / 1000,
    cpuSeconds: (() => {
      const used = process.cpuUsage(cpu);
      return (used.user + used.system) / 1e6;
    })(),
  };
}
