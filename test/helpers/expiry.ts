/**
 * Helpers for the expiry, reconciler and convergence tests: wait for the Scheduler emulator's
 * real firing, count EKS writes, and build the real reconciler (scheduled fan-out + reconcile tasks)
 * against a harness's emulators.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EKSClient } from '@aws-sdk/client-eks';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { STSClient } from '@aws-sdk/client-sts';
import { LedgerAdapter } from '../../functions/adapters/ledger.js';
import type { Credentials } from '../../functions/adapters/target-clients.js';
import type { ReconcilerConfig } from '../../functions/config.js';
import type { ClusterTarget } from '../../functions/core/cluster-target.js';
import type { TaskOutcome } from '../../functions/service/reconcile-task.js';
import { createReconcileTaskConsumer } from '../../functions/service/reconcile-task-wiring.js';
import { createReconciler } from '../../functions/service/reconciler-wiring.js';
import { LOCAL_IDENTITIES } from '../../infra/local/identities.js';
import { createSqsRunner } from '../../infra/local/lambda-runner.js';
import { createQueues, type QueuePair } from '../../infra/local/sqs.js';
import { EXAMPLE_POLICY_PATH, policyFileToJson } from '../../infra/policy-file.js';
import { ns, VIEW } from './fixtures.js';
import { CREDENTIALS, captureLogger, type Harness, REGION } from './harness.js';

// The one list of EKS write operations and its filter live with the harness; re-exported for the
// reconciler tests and the bench that import them from here.
export { EKS_WRITES, eksWrites } from './harness.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs the real worker on the queue until `done()` holds. Schedules fire on the Scheduler
 * emulator's own (real) clock, so `drain()` alone would return before they do. `maxMs` only
 * bounds a hung test; nothing asserts how long anything took.
 */
export async function pumpUntil(h: Harness, done: () => boolean, what: string, maxMs = 30_000) {
  const giveUp = Date.now() + maxMs;
  while (!done()) {
    if (Date.now() > giveUp) throw new Error(`gave up waiting for ${what}`);
    const polled = await h.runner.pollOnce();
    if (polled.received === 0) await sleep(100);
  }
}

/** Waits until `requestId` has at least `count` audit records and returns them. */
export async function auditsOnceThere(h: Harness, requestId: string, count = 1) {
  await pumpUntil(h, () => h.auditsFor(requestId).length >= count, `${count} audit(s) of ${requestId}`);
  return h.auditsFor(requestId);
}

export function ledgerOf(h: Harness): LedgerAdapter {
  return new LedgerAdapter(h.aws.dynamodb, h.config.ledgerTable);
}

/**
 * A principal this system manages: an empty baseline (nothing before us) and one active ticket grant of
 * View on team-a, written straight to the ledger (the reconciler tests and the scale and fleet benches).
 */
export async function seedActiveGrant(
  ledger: LedgerAdapter,
  key: string,
  principalArn: string,
  grant: { grantId: string; createdAt: string; kubernetesGroups?: string[]; expiresAt?: string },
): Promise<void> {
  const { grantId, createdAt, kubernetesGroups = [], expiresAt } = grant;
  await ledger.captureBaseline(key, principalArn, { exists: false, kubernetesGroups: [], policies: [] });
  await ledger.insertGrant(key, principalArn, {
    grantId,
    requestId: grantId,
    source: 'ticket',
    policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    kubernetesGroups,
    status: 'active',
    createdAt,
    version: 1,
    ...(expiresAt && { expiresAt }),
  });
}

let policyJson: Promise<string> | undefined;

/** The Lambda bundle carries the policy as JSON (the reconciler reads JSON only): write the example once. */
export function examplePolicyJsonPath(): Promise<string> {
  policyJson ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'eks-access-grants-policy-'));
    const path = join(dir, 'policy.json');
    await writeFile(path, await policyFileToJson(EXAMPLE_POLICY_PATH));
    return path;
  })();
  return policyJson;
}

export interface ReconcilerOptions {
  repairDrift?: boolean;
  concurrency?: number;
  now?: () => Date;
  /** Sees every EKS request the reconcile tasks make in the home account-region (e.g. to measure concurrency). */
  eksClient?: EKSClient;
  /** Clients of other account-regions (each gets its own budget). */
  eksFor?: (target: ClusterTarget) => EKSClient;
  /** The per-account-region budget; default far above what loopback serves, i.e. unbudgeted. */
  eksCallsPerSecond?: number;
  pageSize?: number;
  /** The task function's timeout as the local Lambda runner plays it (default 60 s). */
  taskTimeoutMs?: number;
  taskMarginMs?: number;
  /** Task consumers side by side (Lambda scaling out over message groups; default 4). */
  pollers?: number;
  policyPath?: string;
  /** Sees each task's outcome. */
  onOutcome?: (outcome: TaskOutcome) => void;
  /** The SQS client the reconciler functions use (default the harness's), e.g. to make a send fail. */
  sqs?: SQSClient;
  /**
   * Reach other accounts as deployed, through their target role (TARGET_ROLE_NAME `targetRoleName`)
   * assumed with this STS client, on the harness's EKS emulator; instead of `eksFor`.
   */
  targetRoles?: { sts: STSClient; targetRoleName: string };
}

/** What a reconciler run reports: the completed pass's record, as `status` shows it. */
export type ReconcileReport = {
  expiriesEnqueued: number;
  principalsChecked: number;
  drifted: number;
  repairsEnqueued: number;
  errors: number;
  truncated: boolean;
  clusters: number;
  slices: number;
  coverageSeconds: number;
};

const reconcileQueues = new WeakMap<Harness, Promise<QueuePair>>();
const DEFAULT_TASK_TIMEOUT_MS = 60_000;

/**
 * The harness's reconcile queue (and its DLQ), created on first use. Its visibility timeout outlasts the
 * task function's timeout, as deployed: otherwise SQS hands a running task to a second consumer.
 */
export function reconcileQueueOf(h: Harness, taskTimeoutMs = DEFAULT_TASK_TIMEOUT_MS): Promise<QueuePair> {
  let q = reconcileQueues.get(h);
  if (!q) {
    const visibilityTimeoutSeconds = Math.ceil((taskTimeoutMs * 1.5) / 1000);
    q = createQueues(h.aws.sqs, { name: 'reconcile', visibilityTimeoutSeconds, maxReceiveCount: 3 });
    reconcileQueues.set(h, q);
  }
  return q;
}

export async function reconcilerConfigFor(
  h: Harness,
  opts: ReconcilerOptions = {},
): Promise<ReconcilerConfig> {
  return {
    region: REGION,
    requestQueueUrl: h.aws.queueUrl,
    breakGlassQueueUrl: h.aws.queueUrl,
    ledgerTable: h.config.ledgerTable,
    auditBusName: h.config.auditBusName,
    policyPath: opts.policyPath ?? (await examplePolicyJsonPath()),
    repairDrift: opts.repairDrift ?? false,
    concurrency: opts.concurrency ?? 16,
    eksMaxAttempts: 4,
    reconcileQueueUrl: (await reconcileQueueOf(h, opts.taskTimeoutMs)).queueUrl,
    eksCallsPerSecond: opts.eksCallsPerSecond ?? 10_000,
    pageSize: opts.pageSize ?? 100,
    staleSeconds: 900,
    taskMarginMs: opts.taskMarginMs ?? 10_000,
    ...(opts.targetRoles && { targetRoleName: opts.targetRoles.targetRoleName }),
    // As deployed (RECONCILE_TASK_SENDERS): the task consumer runs only tasks the reconciler role sent.
    taskSenders: [LOCAL_IDENTITIES.reconciler.roleId],
  };
}

/**
 * The real reconciler wired to the harness's emulators over HTTP: `run()` is the scheduled invocation
 * (createReconciler) followed by the reconcile-task consumer (createReconcileTaskConsumer) on the
 * reconcile queue, played by the local Lambda runner until the queue is idle; it returns the pass's
 * record as `status` would show it.
 */
export async function reconcilerFor(h: Harness, opts: ReconcilerOptions = {}) {
  const config = await reconcilerConfigFor(h, opts);
  const queue = await reconcileQueueOf(h, opts.taskTimeoutMs);
  const logger = captureLogger();
  const eks =
    opts.eksClient ??
    new EKSClient({ region: REGION, endpoint: h.eks.endpoint, credentials: CREDENTIALS, maxAttempts: 4 });
  const clients = {
    eks,
    // The reconciler's own identity (C3): the worker trusts `reconcile` and `expiry` requests only from it.
    sqs: opts.sqs ?? h.aws.sqsAs('reconciler'),
    dynamodb: h.aws.dynamodb,
    // The reconciler publishes `drift` records as itself (the local bus tells publishers apart).
    eventbridge: h.aws.eventbridgeAs('reconciler'),
    // Never the SDK's default endpoints: a cluster of another account-region that a test did not
    // wire reaches the harness's emulator (where it does not exist) rather than AWS.
    ...(opts.targetRoles
      ? {
          sts: opts.targetRoles.sts,
          newEksClient: (region: string, credentials?: () => Promise<Credentials>) =>
            new EKSClient({
              region,
              endpoint: h.eks.endpoint,
              credentials: credentials ?? CREDENTIALS,
              maxAttempts: 4,
            }),
        }
      : {
          eksFor:
            opts.eksFor ??
            ((target: ClusterTarget) =>
              new EKSClient({
                region: target.region,
                endpoint: h.eks.endpoint,
                credentials: CREDENTIALS,
                maxAttempts: 4,
              })),
        }),
  };
  const scheduled = createReconciler(config, logger, clients, opts.now);
  const clock = opts.now ? () => (opts.now as () => Date)().getTime() : undefined;
  const consume = createReconcileTaskConsumer(config, logger, clients, {
    ...(clock && { clock }),
    ...(opts.onOutcome && { onOutcome: opts.onOutcome }),
  });
  const margin = config.taskMarginMs;
  const runner = createSqsRunner({
    sqs: h.aws.sqsAs('reconciler'),
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    handler: (event, context) =>
      consume(event, () => (clock ? clock() : Date.now()) + context.getRemainingTimeInMillis() - margin),
    batchSize: 1,
    functionTimeoutMs: opts.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS,
    concurrency: opts.pollers ?? 4,
    functionName: 'reconcileTask',
  });
  const ledger = ledgerOf(h);
  return {
    logger,
    config,
    queue,
    /** The scheduled invocation alone. */
    schedule: scheduled,
    /** Runs reconcile tasks until the reconcile queue is idle. */
    drainTasks: (maxMs = 600_000) => runner.runUntilIdle({ maxMs }),
    async run(): Promise<ReconcileReport> {
      await scheduled();
      const summary = await runner.runUntilIdle({ maxMs: 600_000 });
      if (!summary.idle) throw new Error('the reconcile queue did not go idle');
      const last = await ledger.lastReconcileRun();
      if (!last) {
        const lines = logger.lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(l.extra)}`);
        throw new Error(`no reconcile pass was recorded:\n${lines.join('\n').slice(0, 4000)}`);
      }
      return last.report as unknown as ReconcileReport;
    },
  };
}
