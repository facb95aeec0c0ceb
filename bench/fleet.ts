/**
 * Fleet (issue 13 item 6): how long one full reconcile pass takes against its floor, the slowest
 * account-region's 2 × entries ÷ R (two reads per entry, R calls/s per account-region).
 *
 * - Measured: the real scheduled reconciler and reconcile-task consumer (their Lambda wiring, the local
 *   Lambda runner on a real FIFO queue) over loopback EKS emulators, one per account-region, at a small
 *   scale; coverage is the pass's own record (`coverageSeconds`, as `status` shows it).
 * - Simulated: the same fan-out code on a virtual clock (bench/fleet-sim.ts) up to 1,000 clusters ×
 *   3,000 entries over 50 account-regions, with the deployed timeout, margin, concurrency and budget.
 *
 * Rows: {name, clusters, entries (per cluster), accountRegions, coverageSeconds, floorSeconds}; target
 * coverage ≤ 1.25 × floor at every scale.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EKSClient } from '@aws-sdk/client-eks';
import { ClusterDirectory } from '../functions/core/cluster-target.js';
import type { GuardrailPolicy } from '../functions/core/policy.js';
import { MANAGED_TAG_KEY } from '../functions/core/types.js';
import { mapBounded } from '../functions/service/reconciler.js';
import { type EksEmulator, startEksEmulator } from '../infra/local/eks-emulator.js';
import { EXAMPLE_POLICY_PATH, policyFileToJson } from '../infra/policy-file.js';
import { ROOT } from '../infra/scripts/build.js';
import { ledgerOf, reconcilerFor, seedActiveGrant } from '../test/helpers/expiry.js';
import { ns, VIEW } from '../test/helpers/fixtures.js';
import { CREDENTIALS, REGION, startHarness } from '../test/helpers/harness.js';
import { type FleetScale, type SimOptions, type SimResult, simulateFleet } from './fleet-sim.js';
import { round, type SummaryRow } from './lib/report.js';
import { shippedReconcilerConfig } from './lib/shipped.js';

export interface FleetRow {
  name: string;
  clusters: number;
  entries: number;
  accountRegions: number;
  coverageSeconds: number;
  floorSeconds: number;
}

export interface FleetResult {
  ratePerSecond: number;
  rows: FleetRow[];
  measured: (FleetRow & {
    ratePerSecond: number;
    principalsChecked: number;
    slices: number;
    wallSeconds: number;
  })[];
  simulated: SimResult[];
  simulation: SimOptions;
}

const TARGET = 1.25;
/** The local runner's account: the deployment's own account-region is the harness's emulator. */
const HOME_ACCOUNT = '123456789012';
const REMOTE_REGIONS = ['eu-west-1', 'ap-southeast-2'];

/** Measured scales: each account-region holds 2 clusters × 100 entries, i.e. a 20 s floor at R = 20/s. */
const MEASURED: FleetScale[] = [
  { name: 'loopback, 2 account-regions', clusters: 4, entries: 100, accountRegions: 2 },
  { name: 'loopback, 3 account-regions', clusters: 6, entries: 100, accountRegions: 3 },
];

export const SIMULATED: FleetScale[] = [
  { name: 'simulated, 10 × 300', clusters: 10, entries: 300, accountRegions: 5 },
  { name: 'simulated, 100 × 1,000', clusters: 100, entries: 1000, accountRegions: 20 },
  { name: 'simulated, 1,000 × 3,000', clusters: 1000, entries: 3000, accountRegions: 50 },
];

export async function fleet(opts: { log: (s: string) => void }): Promise<FleetResult> {
  const shipped = await shippedSettings();
  const measured: FleetResult['measured'] = [];
  for (const scale of MEASURED) {
    measured.push(await measure(scale, shipped.ratePerSecond, opts.log));
  }
  const simulation: SimOptions = {
    ratePerSecond: shipped.ratePerSecond,
    taskTimeoutMs: shipped.taskTimeoutSeconds * 1000,
    taskMarginMs: shipped.taskMarginMs,
    concurrency: shipped.concurrency,
    pageSize: shipped.pageSize,
    maxConsumers: shipped.maxConsumers,
    eksLatencyMs: 30,
    awsLatencyMs: 5,
    deliveryMs: 200,
    quantumMs: 10,
  };
  const simulated: SimResult[] = [];
  for (const scale of SIMULATED) {
    const r = await simulateFleet(scale, simulation);
    opts.log(
      `fleet: ${scale.name}: coverage ${round(r.coverageSeconds, 1)} s, floor ${r.floorSeconds} s (${round(r.coverageSeconds / r.floorSeconds, 3)}×), ${r.invocations} invocations, ${r.throttled} throttled, simulated in ${round(r.wallSeconds, 1)} s`,
    );
    simulated.push({
      ...r,
      coverageSeconds: round(r.coverageSeconds, 1),
      wallSeconds: round(r.wallSeconds, 1),
    });
  }
  const row = (r: FleetRow): FleetRow => ({
    name: r.name,
    clusters: r.clusters,
    entries: r.entries,
    accountRegions: r.accountRegions,
    coverageSeconds: r.coverageSeconds,
    floorSeconds: r.floorSeconds,
  });
  return {
    ratePerSecond: shipped.ratePerSecond,
    rows: [...measured.map(row), ...simulated.map(row)],
    measured,
    simulated,
    simulation,
  };
}

async function measure(scale: FleetScale, R: number, log: (s: string) => void) {
  const h = await startHarness();
  const emulators: EksEmulator[] = [h.eks];
  const clients: EKSClient[] = [];
  try {
    for (const region of REMOTE_REGIONS.slice(0, scale.accountRegions - 1)) {
      emulators.push(await startEksEmulator({ accountId: '444455556666', region }));
    }
    const ars = emulators.map((e, i) =>
      i === 0
        ? { account: HOME_ACCOUNT, region: REGION, emulator: e }
        : { account: '444455556666', region: e.region, emulator: e },
    );
    // The example policy's dev rules for every cluster; cluster c lives in account-region c mod n.
    const base = JSON.parse(await policyFileToJson(EXAMPLE_POLICY_PATH)) as GuardrailPolicy;
    const clusters: Record<string, unknown> = {};
    for (let c = 0; c < scale.clusters; c++) {
      const ar = ars[c % ars.length] as (typeof ars)[number];
      ar.emulator.addCluster(`fleet-${c}`);
      clusters[`fleet-${c}`] = { ...base.clusters.dev, account: ar.account, region: ar.region };
    }
    const policy = { ...base, clusters } as GuardrailPolicy;
    const dir = await mkdtemp(join(tmpdir(), 'eks-access-grants-fleet-bench-'));
    const policyPath = join(dir, 'policy.json');
    await writeFile(policyPath, JSON.stringify(policy));
    const directory = new ClusterDirectory(policy, { account: HOME_ACCOUNT, region: REGION });

    const seedStarted = performance.now();
    const ledger = ledgerOf(h);
    const createdAt = new Date().toISOString();
    for (let c = 0; c < scale.clusters; c++) {
      const alias = `fleet-${c}`;
      const emulator = (ars[c % ars.length] as (typeof ars)[number]).emulator;
      const principals = Array.from(
        { length: scale.entries },
        (_, i) => `arn:aws:iam::111122223333:role/fleet/p-${String(i).padStart(4, '0')}`,
      );
      await mapBounded(principals, 32, async (principalArn) => {
        await seedActiveGrant(ledger, directory.keyOf(alias), principalArn, {
          grantId: `g-${alias}`,
          createdAt,
        });
        emulator.seedEntry(alias, {
          principalArn,
          tags: { [MANAGED_TAG_KEY]: 'true' },
          policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
        });
      });
    }
    log(
      `fleet: ${scale.name}: seeded ${scale.clusters * scale.entries} principals in ${round((performance.now() - seedStarted) / 1000, 1)} s`,
    );
    for (const e of emulators) e.resetCalls();

    const clientOf = (e: EksEmulator) => {
      const c = new EKSClient({
        region: e.region,
        endpoint: e.endpoint,
        credentials: CREDENTIALS,
        maxAttempts: 4,
      });
      clients.push(c);
      return c;
    };
    const r = await reconcilerFor(h, {
      policyPath,
      eksCallsPerSecond: R,
      eksClient: clientOf(h.eks),
      eksFor: (target) => clientOf(ars.find((a) => a.region === target.region)?.emulator ?? h.eks),
      pollers: scale.accountRegions,
      // The deployed margin; a 60 s slice (the default here) leaves each cluster of 100 entries one slice.
      taskMarginMs: 10_000,
    });
    const started = performance.now();
    const report = await r.run();
    const wallSeconds = (performance.now() - started) / 1000;
    const floorSeconds = (2 * (scale.clusters / scale.accountRegions) * scale.entries) / R;
    log(
      `fleet: ${scale.name}: coverage ${report.coverageSeconds} s, floor ${floorSeconds} s (${round(report.coverageSeconds / floorSeconds, 3)}×), ${report.principalsChecked} checked`,
    );
    return {
      ...scale,
      coverageSeconds: round(report.coverageSeconds, 2),
      floorSeconds,
      ratePerSecond: R,
      principalsChecked: report.principalsChecked,
      slices: report.slices,
      wallSeconds: round(wallSeconds, 2),
    };
  } finally {
    for (const c of clients) c.destroy();
    for (const e of emulators.slice(1)) await e.close();
    await h.close();
  }
}

/** The deployed settings: config defaults (loadReconcilerConfig) and serverless.yml's timeout and concurrency. */
async function shippedSettings() {
  const config = shippedReconcilerConfig();
  const yml = await readFile(join(ROOT, 'serverless.yml'), 'utf8');
  const number = (re: RegExp, what: string) => {
    const m = re.exec(yml);
    if (!m?.[1]) throw new Error(`serverless.yml: no ${what}`);
    return Number(m[1]);
  };
  return {
    ratePerSecond: config.eksCallsPerSecond,
    taskMarginMs: config.taskMarginMs,
    concurrency: config.concurrency,
    pageSize: config.pageSize,
    taskTimeoutSeconds: number(/^ {2}reconcileTaskTimeout: (\d+)\s*$/m, 'custom.reconcileTaskTimeout'),
    maxConsumers: number(
      /^ {4}reconcileMaximumConcurrency: (\d+)\s*$/m,
      'params.default.reconcileMaximumConcurrency',
    ),
  };
}

export function fleetSummary(result: FleetResult): SummaryRow[] {
  return result.rows.map((r) => {
    const ratio = r.coverageSeconds / r.floorSeconds;
    return {
      benchmark: 'fleet',
      case: `${r.name}: ${r.clusters} clusters × ${r.entries.toLocaleString('en-US')} entries, ${r.accountRegions} account-regions, R = ${result.ratePerSecond}/s`,
      figure: `coverage ${r.coverageSeconds.toLocaleString('en-US')} s = ${ratio.toFixed(3)} × floor (${r.floorSeconds.toLocaleString('en-US')} s)`,
      target: `≤ ${TARGET} × floor`,
      status: ratio <= TARGET ? 'pass' : 'FAIL',
    };
  });
}
