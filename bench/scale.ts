/**
 * Scale: one reconcile pass (createReconciler, the Lambda's own wiring) over a cluster with 3,000 managed
 * access entries and no drift, while the ledger also holds other clusters' rows, as a ledger serving about
 * 100 clusters would. Reports the pass's wall time, what it found, the EKS and DynamoDB calls it made, its
 * memory, and the share of a Lambda timeout it used.
 *
 * Wall time is absolute and only a report (no target): it is also given as a ratio to the same EKS reads
 * made with the plain SDK at the same concurrency in the same run (the "floor"), which survives a noisy
 * machine. The emulators run in this process, so memory figures include their share of the work.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  DescribeAccessEntryCommand,
  EKSClient,
  type EKSClientConfig,
  ListAssociatedAccessPoliciesCommand,
} from '@aws-sdk/client-eks';
import { LedgerAdapter } from '../functions/adapters/ledger.js';
import { MANAGED_TAG_KEY } from '../functions/core/types.js';
import { mapBounded } from '../functions/service/reconciler.js';
import { ROOT } from '../infra/scripts/build.js';
import { eksWrites, type ReconcileReport, reconcilerFor, seedActiveGrant } from '../test/helpers/expiry.js';
import { ns, VIEW } from '../test/helpers/fixtures.js';
import { CREDENTIALS, type Harness, REGION, startHarness } from '../test/helpers/harness.js';
import { countInFlight } from '../test/helpers/in-flight.js';
import { round, type SummaryRow } from './lib/report.js';
import { shippedReconcilerConfig } from './lib/shipped.js';

const CLUSTER = 'dev';
const PRINCIPALS = 3000;
// 100 clusters' worth of ledger: the measured cluster plus 99 that are not in the policy, so the
// reconciler never lists them; they only make the table and its indexes as large as they would be.
// 150 each, not 300: dynalite takes 1.5–1.8 ms per put on 2 cores, and 300 (or 200) each kept this
// section near 2½ minutes, most of it seeding.
const OTHER_CLUSTERS = 99;
const PER_OTHER_CLUSTER = 150;
// Every third other-cluster grant is time-boxed, not yet due: the expiry index holds them but the sweep's
// key condition (expiry ≤ now) must skip them.
const TIME_BOXED_EVERY = 3;
const SEED_CONCURRENCY = 32;
const LAMBDA_MAX_SECONDS = 900;
/** EKS answer time in the realistic pass, as in the throughput benchmark. */
const LATENCY_MS = { min: 20, max: 60 };

export interface MemoryFigures {
  beforeMiB: number;
  afterMiB: number;
  /** Highest value sampled every 25 ms during the pass. */
  peakMiB: number;
  peakDeltaMiB: number;
}

export interface ScalePass {
  case: string;
  latencyMs: { min: number; max: number } | null;
  wallSeconds: number;
  /** The same Describe + ListAssociated per principal, plain SDK, same concurrency, same run. */
  floorSeconds: number;
  ratioToFloor: number;
  fractionOfLambdaMax: number;
  fractionOfDeployedTimeout: number;
  report: ReconcileReport;
  eksCalls: Record<string, number>;
  eksWrites: number;
  dynamoCalls: Record<string, number>;
  maxEksInFlight: number;
  rss: MemoryFigures;
  heapUsed: MemoryFigures;
}

export interface ScaleResult {
  seeded: {
    cluster: string;
    principals: number;
    otherClusters: number;
    principalsPerOtherCluster: number;
    otherTimeBoxedNotDue: number;
    /** Baseline + one grant per principal. */
    ledgerItems: number;
    seedSeconds: number;
  };
  concurrency: number;
  deployedTimeoutSeconds: number;
  lambdaMaxSeconds: number;
  passes: ScalePass[];
}

export async function scale(opts: { log: (s: string) => void }): Promise<ScaleResult> {
  const concurrency = shippedConcurrency();
  const deployedTimeoutSeconds = await deployedReconcilerTimeout();
  const h = await startHarness();
  try {
    const seedStarted = performance.now();
    const principals = Array.from(
      { length: PRINCIPALS },
      (_, i) => `arn:aws:iam::111122223333:role/scale/p-${String(i).padStart(4, '0')}`,
    );
    await seedLedger(h, CLUSTER, principals, () => undefined);
    for (const principalArn of principals) {
      h.eks.seedEntry(CLUSTER, {
        principalArn,
        kubernetesGroups: ['team-a-readers'],
        tags: { [MANAGED_TAG_KEY]: 'true' },
        policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
      });
    }
    opts.log(`scale: seeded ${PRINCIPALS} principals on ${CLUSTER}`);
    let timeBoxed = 0;
    const due = new Date(Date.now() + 8 * 3_600_000).toISOString();
    for (let c = 1; c <= OTHER_CLUSTERS; c++) {
      const others = Array.from(
        { length: PER_OTHER_CLUSTER },
        (_, i) => `arn:aws:iam::111122223333:role/scale/p-${String(i).padStart(4, '0')}`,
      );
      await seedLedger(h, `other-${String(c).padStart(3, '0')}`, others, (i) => {
        if (i % TIME_BOXED_EVERY !== 0) return undefined;
        timeBoxed++;
        return due;
      });
      if (c % 10 === 0) opts.log(`scale: seeded ${c} of ${OTHER_CLUSTERS} other clusters`);
    }
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const seeded = {
      cluster: CLUSTER,
      principals: PRINCIPALS,
      otherClusters: OTHER_CLUSTERS,
      principalsPerOtherCluster: PER_OTHER_CLUSTER,
      otherTimeBoxedNotDue: timeBoxed,
      ledgerItems: 2 * (PRINCIPALS + OTHER_CLUSTERS * PER_OTHER_CLUSTER),
      seedSeconds: round(seedSeconds, 1),
    };
    opts.log(`scale: seeding took ${seeded.seedSeconds} s (${seeded.ledgerItems} ledger items)`);

    const dynamoCalls = countDynamoCalls(h);
    const passes: ScalePass[] = [];
    for (const latencyMs of [null, LATENCY_MS]) {
      if (latencyMs) h.eks.setFaults({ latencyMs });
      else h.eks.clearFaults();
      const floorSeconds = await eksReadFloor(h, principals, concurrency);

      h.eks.resetCalls();
      dynamoCalls.reset();
      const eks = new EKSClient({ ...eksConfig(h), maxAttempts: 4 });
      const inFlight = countInFlight(eks);
      const { run } = await reconcilerFor(h, { concurrency, eksClient: eks });
      const memory = sampleMemory();
      const started = performance.now();
      const report = await run();
      const wallSeconds = (performance.now() - started) / 1000;
      const { rss, heapUsed } = memory.stop();
      eks.destroy();

      const calls = h.eks.calls();
      const eksCalls: Record<string, number> = {};
      for (const c of calls) eksCalls[c.operation] = (eksCalls[c.operation] ?? 0) + 1;
      const pass: ScalePass = {
        case: latencyMs ? `EKS latency ${latencyMs.min}–${latencyMs.max} ms` : 'loopback EKS (no latency)',
        latencyMs,
        wallSeconds: round(wallSeconds, 2),
        floorSeconds: round(floorSeconds, 2),
        ratioToFloor: round(wallSeconds / floorSeconds, 2),
        fractionOfLambdaMax: round(wallSeconds / LAMBDA_MAX_SECONDS, 4),
        fractionOfDeployedTimeout: round(wallSeconds / deployedTimeoutSeconds, 4),
        report,
        eksCalls,
        eksWrites: eksWrites(h).length,
        dynamoCalls: dynamoCalls.snapshot(),
        maxEksInFlight: inFlight.max(),
        rss,
        heapUsed,
      };
      passes.push(pass);
      opts.log(
        `scale: ${pass.case}: ${pass.wallSeconds} s (floor ${pass.floorSeconds} s), ${report.principalsChecked} checked, ${report.drifted} drifted, ${calls.length} EKS calls`,
      );
    }
    h.eks.clearFaults();
    return {
      seeded,
      concurrency,
      deployedTimeoutSeconds,
      lambdaMaxSeconds: LAMBDA_MAX_SECONDS,
      passes,
    };
  } finally {
    await h.close();
  }
}

export function scaleSummary(result: ScaleResult): SummaryRow[] {
  const s = result.seeded;
  const rows: SummaryRow[] = [
    {
      benchmark: 'scale',
      case: 'ledger seeded',
      figure: `${n(s.principals)} principals on ${s.cluster} + ${s.otherClusters} clusters × ${n(s.principalsPerOtherCluster)} (${n(s.otherTimeBoxedNotDue)} time-boxed, not due); ${n(s.ledgerItems)} items`,
      target: '100 clusters’ rows',
      status: 'info',
    },
    {
      benchmark: 'scale',
      case: 'reconcile concurrency',
      figure: `${result.concurrency} (RECONCILE_CONCURRENCY default); max ${Math.max(...result.passes.map((p) => p.maxEksInFlight))} EKS calls in flight`,
      target: 'bounded',
      status: result.passes.every((p) => p.maxEksInFlight <= result.concurrency) ? 'pass' : 'FAIL',
    },
  ];
  for (const p of result.passes) {
    const r = p.report;
    const total = Object.values(p.eksCalls).reduce((a, b) => a + b, 0);
    const correct =
      r.principalsChecked === s.principals &&
      r.drifted === 0 &&
      r.errors === 0 &&
      r.expiriesEnqueued === 0 &&
      !r.truncated &&
      p.eksWrites === 0;
    rows.push(
      {
        benchmark: 'scale',
        case: `reconcile ${n(s.principals)} entries, ${p.case}: result`,
        figure: `${n(r.principalsChecked)} checked, ${r.drifted} drift, ${r.errors} errors; ${n(total)} EKS calls (${p.eksWrites} writes), ${n(sum(p.dynamoCalls))} DynamoDB calls`,
        target: `${n(s.principals)} checked, 0 drift, 0 writes`,
        status: correct ? 'pass' : 'FAIL',
      },
      {
        benchmark: 'scale',
        case: `reconcile ${n(s.principals)} entries, ${p.case}: time`,
        figure: `${p.wallSeconds.toFixed(1)} s = ${pct(p.fractionOfLambdaMax)} of ${result.lambdaMaxSeconds} s, ${pct(p.fractionOfDeployedTimeout)} of ${result.deployedTimeoutSeconds} s; ${p.ratioToFloor.toFixed(2)}× the EKS reads alone`,
        target: 'report',
        status: 'info',
      },
      {
        benchmark: 'scale',
        case: `reconcile ${n(s.principals)} entries, ${p.case}: memory`,
        figure: `peak RSS +${p.rss.peakDeltaMiB} MiB (${p.rss.beforeMiB} → ${p.rss.peakMiB}), heapUsed +${p.heapUsed.peakDeltaMiB} MiB (${p.heapUsed.beforeMiB} → ${p.heapUsed.peakMiB})`,
        target: 'report',
        status: 'info',
      },
    );
  }
  return rows;
}

/** Baseline + one grant per principal, as the worker writes them, through the ledger adapter itself. */
async function seedLedger(
  h: Harness,
  clusterName: string,
  principals: string[],
  expiresAt: (i: number) => string | undefined,
): Promise<void> {
  const ledger = new LedgerAdapter(h.aws.dynamodb, h.config.ledgerTable);
  const createdAt = new Date().toISOString();
  await mapBounded(
    principals.map((p, i) => [p, i] as const),
    SEED_CONCURRENCY,
    async ([principalArn, i]) => {
      const until = expiresAt(i);
      await seedActiveGrant(ledger, clusterName, principalArn, {
        grantId: `req-scale-${clusterName}-${i}`,
        createdAt,
        kubernetesGroups: ['team-a-readers'],
        ...(until && { expiresAt: until }),
      });
    },
  );
}

/** The irreducible EKS work of a pass: each principal's entry and its policies, nothing else. */
async function eksReadFloor(h: Harness, principals: string[], concurrency: number): Promise<number> {
  const eks = new EKSClient({ ...eksConfig(h), maxAttempts: 4 });
  try {
    const started = performance.now();
    await mapBounded(principals, concurrency, async (principalArn) => {
      await eks.send(new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn }));
      await eks.send(new ListAssociatedAccessPoliciesCommand({ clusterName: CLUSTER, principalArn }));
    });
    return (performance.now() - started) / 1000;
  } finally {
    eks.destroy();
  }
}

function eksConfig(h: Harness): EKSClientConfig {
  return { region: REGION, endpoint: h.eks.endpoint, credentials: CREDENTIALS };
}

/** Counts DynamoDB commands by name on the harness's shared client (the reconciler uses the same one). */
function countDynamoCalls(h: Harness): { reset(): void; snapshot(): Record<string, number> } {
  let counts: Record<string, number> = {};
  h.aws.dynamodb.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCountDynamoCalls' },
  );
  return {
    reset: () => {
      counts = {};
    },
    snapshot: () => ({ ...counts }),
  };
}

// `npm run bench` runs node without --expose-gc; collecting before each pass keeps the previous pass's
// (and the seeding's) garbage out of its "before" figure.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function sampleMemory(): { stop(): { rss: MemoryFigures; heapUsed: MemoryFigures } } {
  gc();
  const before = process.memoryUsage();
  const peak = { rss: before.rss, heapUsed: before.heapUsed };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  };
  const timer = setInterval(sample, 25);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const after = process.memoryUsage();
      const figures = (b: number, a: number, p: number): MemoryFigures => ({
        beforeMiB: mib(b),
        afterMiB: mib(a),
        peakMiB: mib(p),
        peakDeltaMiB: mib(p - b),
      });
      return {
        rss: figures(before.rss, after.rss, peak.rss),
        heapUsed: figures(before.heapUsed, after.heapUsed, peak.heapUsed),
      };
    },
  };
}

/** The shipped default, read through the reconciler's own config loader (placeholders for the rest). */
function shippedConcurrency(): number {
  return shippedReconcilerConfig().concurrency;
}

/**
 * The reconcile-task function's timeout (serverless.yml `custom.reconcileTaskTimeout`): one invocation's
 * share of a pass, so the fraction follows the deployment. A longer pass continues in the next one.
 */
async function deployedReconcilerTimeout(): Promise<number> {
  const yml = await readFile(join(ROOT, 'serverless.yml'), 'utf8');
  const match = /^ {2}reconcileTaskTimeout: (\d+)\s*$/m.exec(yml);
  if (!match?.[1]) throw new Error('serverless.yml: no custom.reconcileTaskTimeout');
  return Number(match[1]);
}

const mib = (bytes: number) => round(bytes / 1024 / 1024, 1);
const n = (x: number) => x.toLocaleString('en-US');
const pct = (f: number) => `${(f * 100).toFixed(1)}%`;
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
