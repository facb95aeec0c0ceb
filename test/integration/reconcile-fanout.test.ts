/**
 * Issue 13 item 4: the reconciler's fan-out on the local stack over HTTP. The scheduled run starts a
 * pass (one task per cluster on the reconcile queue); the reconcile-task consumer (its Lambda wiring,
 * played by the local runner) walks each cluster from a cursor under a per-account-region EKS call
 * budget. Two account-regions: the harness's EKS emulator (the deployment's own) and a second emulator
 * standing for account 444455556666 in eu-west-1.
 *
 * No wall-clock assertions: the budget is checked by counting the calls that reached each emulator in
 * every one-second window, and "cut short" follows from the budget itself (a slice cannot check more
 * principals than its time allows at R calls/s).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EKSClient } from '@aws-sdk/client-eks';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ReconcileStateAdapter } from '../../functions/adapters/reconcile-state.js';
import { ClusterDirectory } from '../../functions/core/cluster-target.js';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import { cursorKey } from '../../functions/core/reconcile-task.js';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import type { TaskOutcome } from '../../functions/service/reconcile-task.js';
import { mapBounded } from '../../functions/service/reconciler.js';
import { type EksEmulator, startEksEmulator } from '../../infra/local/eks-emulator.js';
import { credentialsOf } from '../../infra/local/identities.js';
import { EXAMPLE_POLICY_PATH, policyFileToJson } from '../../infra/policy-file.js';
import {
  eksWrites,
  ledgerOf,
  type ReconcilerOptions,
  reconcilerFor,
  seedActiveGrant,
} from '../helpers/expiry.js';
import { ns, VIEW } from '../helpers/fixtures.js';
import { CREDENTIALS, type Harness, REGION, startHarness } from '../helpers/harness.js';

const REMOTE = { account: '444455556666', region: 'eu-west-1' };
const HOME_ACCOUNT = '123456789012'; // local-aws-sqs puts it in every queue URL: the deployment's own account
const READS = new Set(['DescribeAccessEntry', 'ListAssociatedAccessPolicies']);

/** The example policy plus two clusters in another account-region, with dev's rules. */
async function fleetPolicyPath(): Promise<{ path: string; policy: GuardrailPolicy }> {
  const policy = JSON.parse(await policyFileToJson(EXAMPLE_POLICY_PATH)) as GuardrailPolicy;
  const dev = policy.clusters.dev;
  if (!dev) throw new Error('the example policy has no dev cluster');
  const clusters: Record<string, unknown> = { dev: policy.clusters.dev, prod: policy.clusters.prod };
  for (const alias of ['alpha', 'beta']) clusters[alias] = { ...dev, ...REMOTE };
  const fleet = { ...policy, clusters } as GuardrailPolicy;
  const dir = await mkdtemp(join(tmpdir(), 'eks-access-grants-fleet-'));
  const path = join(dir, 'policy.json');
  await writeFile(path, JSON.stringify(fleet));
  return { path, policy: fleet };
}

describe('reconcile fan-out on the local stack', () => {
  let h: Harness;
  let remote: EksEmulator;
  let policyPath: string;
  let directory: ClusterDirectory;
  const clients: EKSClient[] = [];

  beforeEach(async () => {
    h = await startHarness();
    remote = await startEksEmulator({
      clusters: [{ name: 'alpha' }, { name: 'beta' }],
      accountId: REMOTE.account,
      region: REMOTE.region,
    });
    const fleet = await fleetPolicyPath();
    policyPath = fleet.path;
    directory = new ClusterDirectory(fleet.policy, { account: HOME_ACCOUNT, region: REGION });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await remote.close();
    await h.close();
  });

  const emulatorOf = (alias: string) =>
    directory.resolve(alias)?.account === REMOTE.account ? remote : h.eks;
  const principalsOf = (alias: string, count: number) =>
    Array.from(
      { length: count },
      (_, i) => `arn:aws:iam::111122223333:role/fleet/${alias}-${String(i).padStart(3, '0')}`,
    );

  /** Each principal: a ledger baseline and one active grant, and a matching entry in its cluster. */
  async function seed(counts: Record<string, number>) {
    const ledger = ledgerOf(h);
    const createdAt = new Date().toISOString();
    for (const [alias, count] of Object.entries(counts)) {
      const key = directory.keyOf(alias);
      await mapBounded(principalsOf(alias, count), 16, async (principalArn) => {
        await seedActiveGrant(ledger, key, principalArn, {
          grantId: `req-${alias}-${principalArn.slice(-3)}`,
          createdAt,
        });
        emulatorOf(alias).seedEntry(directory.resolve(alias)?.name ?? alias, {
          principalArn,
          tags: { [MANAGED_TAG_KEY]: 'true' },
          policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
        });
      });
    }
    h.eks.resetCalls();
    remote.resetCalls();
  }

  function reconciler(opts: ReconcilerOptions = {}) {
    const client = (endpoint: string, region: string) => {
      const c = new EKSClient({ region, endpoint, credentials: CREDENTIALS, maxAttempts: 4 });
      clients.push(c);
      return c;
    };
    return reconcilerFor(h, {
      policyPath,
      eksClient: client(h.eks.endpoint, REGION),
      eksFor: (target) => {
        expect(target).toMatchObject(REMOTE);
        return client(remote.endpoint, target.region);
      },
      ...opts,
    });
  }

  /** DescribeAccessEntry calls per principal, over both emulators. */
  const describes = () => {
    const out = new Map<string, number>();
    for (const c of [...h.eks.calls(), ...remote.calls()]) {
      if (c.operation !== 'DescribeAccessEntry') continue;
      const k = `${c.clusterName}\n${c.principalArn}`;
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  };

  function expectEveryPrincipalReadOnce(counts: Record<string, number>) {
    const seen = describes();
    const expected = new Map<string, number>();
    for (const [alias, count] of Object.entries(counts)) {
      for (const p of principalsOf(alias, count)) expected.set(`${directory.resolve(alias)?.name}\n${p}`, 1);
    }
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(expected));
  }

  test('one pass covers every cluster of every account-region, each principal read once, nothing written', async () => {
    const counts = { dev: 12, prod: 7, alpha: 9, beta: 5 };
    await seed(counts);
    const outcomes: TaskOutcome[] = [];
    const r = await reconciler({ onOutcome: (o) => outcomes.push(o) });
    const report = await r.run();
    expect(report).toMatchObject({
      clusters: 4,
      principalsChecked: 33,
      drifted: 0,
      errors: 0,
      truncated: false,
    });
    expect(report.coverageSeconds).toBeGreaterThan(0);
    expectEveryPrincipalReadOnce(counts);
    expect([...h.eks.calls(), ...remote.calls()].every((c) => READS.has(c.operation))).toBe(true);
    expect(eksWrites(h)).toEqual([]);
    // Every cluster finished exactly once; the last one completed the pass.
    const done = outcomes.filter((o) => o.outcome === 'cluster-done');
    expect(done).toHaveLength(4);
    expect(done.filter((o) => o.outcome === 'cluster-done' && o.passComplete)).toHaveLength(1);
    // Each cluster's cursor holds its own count; remote cursors carry their account and region.
    const state = new ReconcileStateAdapter(h.aws.dynamodb, h.config.ledgerTable);
    for (const [alias, count] of Object.entries(counts)) {
      const target = directory.resolve(alias);
      if (!target) throw new Error(alias);
      const cursor = await state.getCursor(cursorKey(target));
      expect(cursor, alias).toMatchObject({ done: true, stats: { principalsChecked: count } });
    }
    expect(cursorKey(directory.resolve('alpha') as never)).toBe('RECONCILE#444455556666#eu-west-1#alpha');

    // The next scheduled run starts a new pass (the last one completed) and covers everything again.
    h.eks.resetCalls();
    remote.resetCalls();
    const again = await r.run();
    expect(again).toMatchObject({ clusters: 4, principalsChecked: 33 });
    expectEveryPrincipalReadOnce(counts);
  });

  test('a scheduled run while a pass is running starts nothing new', async () => {
    await seed({ dev: 3 });
    const r = await reconciler();
    const first = await r.schedule();
    expect(first).toMatchObject({ pass: 'started', tasksEnqueued: 4 });
    const second = await r.schedule();
    expect(second).toMatchObject({ pass: 'running', passId: first.passId, tasksEnqueued: 0 });
    await r.drainTasks();
    const third = await r.schedule();
    expect(third.pass).toBe('started');
    expect(third.passId).not.toBe(first.passId);
    await r.drainTasks();
  });

  test('a task cut short by its deadline continues from its cursor and the pass completes', async () => {
    // At 20 calls/s a slice of about 3 s (8 s timeout, 5 s kept back) checks at most ~30 principals
    // (2 reads each), so 70 on dev need at least 3 slices, whatever the machine's speed.
    const counts = { dev: 70, alpha: 40 };
    await seed(counts);
    const outcomes: TaskOutcome[] = [];
    const r = await reconciler({
      eksCallsPerSecond: 20,
      taskTimeoutMs: 8000,
      taskMarginMs: 5000,
      pageSize: 10,
      onOutcome: (o) => outcomes.push(o),
    });
    const report = await r.run();
    expect(report).toMatchObject({ clusters: 4, principalsChecked: 110, errors: 0, truncated: false });
    const continued = outcomes.filter((o) => o.outcome === 'continued');
    expect(continued.length).toBeGreaterThanOrEqual(3);
    expect(report.slices).toBe(4 + continued.length);
    // Resumed, not restarted: every principal was read exactly once across the slices.
    expectEveryPrincipalReadOnce(counts);
  });

  test('an invocation that dies after checkpointing is redelivered and resumes from the cursor', async () => {
    const counts = { dev: 50 };
    await seed(counts);
    // The first continuation send fails: the invocation fails, SQS redelivers its task after the
    // visibility timeout, and the redelivery must start where the cursor says, not where the message does.
    const sqs = new SQSClient({
      region: REGION,
      endpoint: h.aws.endpoints.sqs,
      credentials: credentialsOf('reconciler'),
    });
    let failed = 0;
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Entries?: { MessageBody?: string }[] };
        const slice = input.Entries?.map((e) => JSON.parse(e.MessageBody ?? '{}').slice as number) ?? [];
        if (failed === 0 && slice.some((s) => s > 0)) {
          failed += 1;
          throw Object.assign(new Error('injected: SQS unavailable'), { name: 'ServiceUnavailable' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failFirstContinuation' },
    );
    const outcomes: TaskOutcome[] = [];
    const r = await reconciler({
      sqs,
      eksCallsPerSecond: 20,
      taskTimeoutMs: 6000,
      taskMarginMs: 3000,
      pageSize: 10,
      onOutcome: (o) => outcomes.push(o),
    });
    const report = await r.run();
    sqs.destroy();
    expect(failed).toBe(1);
    expect(report).toMatchObject({ principalsChecked: 50, errors: 0, truncated: false });
    expect(r.logger.lines.some((l) => /SQS will redeliver/.test(l.message))).toBe(true);
    expectEveryPrincipalReadOnce(counts);
  });

  test('keeps each account-region under its budget, counted at the emulators per one-second window', async () => {
    const R = 10;
    const counts = { dev: 25, prod: 25, alpha: 25, beta: 25 };
    await seed(counts);
    const r = await reconciler({ eksCallsPerSecond: R, pageSize: 20 });
    const report = await r.run();
    expect(report).toMatchObject({ clusters: 4, principalsChecked: 100, errors: 0 });

    /** The most calls that arrived within any `ms`-long window, and the arrivals' count and span. */
    const busiest = (arrivals: number[], ms: number) => {
      const at = [...arrivals].sort((a, b) => a - b);
      let max = 0;
      let lo = 0;
      for (let hi = 0; hi < at.length; hi++) {
        while ((at[hi] as number) - (at[lo] as number) >= ms) lo++;
        max = Math.max(max, hi - lo + 1);
      }
      return { max, count: at.length, span: ((at.at(-1) ?? 0) - (at[0] ?? 0)) / 1000 };
    };
    for (const emulator of [h.eks, remote]) {
      const arrivals = emulator.calls().map((c) => c.at);
      const second = busiest(arrivals, 1000);
      const five = busiest(arrivals, 5000);
      expect(second.count).toBe(100); // 50 principals × (Describe + ListAssociated)
      // The budget lets at most burst (R/10, at least 1) + R × t calls start in t seconds. Arrival at the
      // emulator adds the client's jitter (an event-loop stall on a busy machine delivers queued calls
      // together), which weighs less the longer the window: ratios to R, looser for one second.
      expect(second.max / R).toBeLessThanOrEqual(2);
      expect(five.max / (5 * R)).toBeLessThanOrEqual(1.25);
      // Over the whole pass, no more than R per second on average.
      expect((second.count - 1) / second.span / R).toBeLessThanOrEqual(1.1);
    }
    // The two account-regions were walked side by side, each at its own budget.
    const first = (e: EksEmulator) => Math.min(...e.calls().map((c) => c.at));
    const last = (e: EksEmulator) => Math.max(...e.calls().map((c) => c.at));
    expect(first(remote)).toBeLessThan(last(h.eks));
    expect(first(h.eks)).toBeLessThan(last(remote));
  });
});
