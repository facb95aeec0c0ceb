/**
 * Issue 3: the reconciler (the Lambdas' own wiring: the scheduled createReconciler and the reconcile
 * tasks of createReconcileTaskConsumer, issue 13) against the emulators over HTTP: the safety net for
 * lost expiry schedules, drift reports that never write EKS, opt-in drift repair through the worker,
 * and a 3,000-principal cluster. Each `run()` is one full pass (test/helpers/expiry.ts).
 */
import {
  BatchWriteItemCommand,
  type BatchWriteItemCommandInput,
  type BatchWriteItemCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { AssociateAccessPolicyCommand, EKSClient } from '@aws-sdk/client-eks';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { baselineItem, grantItem } from '../../functions/adapters/ledger.js';
import { scheduleName } from '../../functions/adapters/scheduler.js';
import type { Grant } from '../../functions/core/ledger.js';
import { type AccessRequest, MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { mapBounded } from '../../functions/service/reconciler.js';
import { eksWrites, ledgerOf, reconcilerFor, sleep } from '../helpers/expiry.js';
import { ns, VIEW } from '../helpers/fixtures.js';
import { CREDENTIALS, type Harness, REGION, startHarness } from '../helpers/harness.js';
import { countInFlight } from '../helpers/in-flight.js';

const ADMIN_VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy';
const READS = new Set(['DescribeAccessEntry', 'ListAssociatedAccessPolicies']);

function devGrant(requestId: string, principalArn: string, over: Partial<AccessRequest> = {}): AccessRequest {
  return {
    schemaVersion: 1,
    requestId,
    action: 'grant',
    source: 'ticket',
    clusterName: 'dev',
    principalArn,
    accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
    requestedBy: 'alice@example.com',
    ticket: 'OPS-301',
    ...over,
  };
}

describe('reconciler against the emulators over HTTP', () => {
  let h: Harness;
  let eks: EKSClient;
  beforeEach(async () => {
    // Nothing here is meant to be retried: a visibility timeout a busy machine cannot outlast would only
    // redeliver messages mid-batch and add `unchanged` records.
    h = await startHarness({ visibilityTimeoutSeconds: 30 });
    eks = new EKSClient({ region: REGION, endpoint: h.eks.endpoint, credentials: CREDENTIALS });
  });
  afterEach(async () => {
    eks.destroy();
    await h.close();
  });

  const entryOf = (principalArn: string) =>
    h.eks.snapshot('dev').find((e) => e.principalArn === principalArn);

  test('a lost schedule is caught: the reconciler enqueues the expiry and the worker expires the grant', async () => {
    const LOST = 'arn:aws:iam::111122223333:role/lost-schedule';
    const LATER = 'arn:aws:iam::111122223333:role/not-yet-due';
    // The outage starts now: schedules are created but never fire (on a busy machine the 2 s one could
    // otherwise fire before the drain returns).
    h.aws.schedulerEmulator.pause();
    await h.send(devGrant('req-lost', LOST, { duration: 'PT2S' }));
    await h.send(devGrant('req-later', LATER, { duration: 'PT1H' }));
    await h.drain();
    expect(h.aws.schedulerEmulator.schedules()).toHaveLength(2);

    // Scheduler outage: the schedules are gone and the grant's time passes with nothing firing.
    h.aws.schedulerEmulator.dropAll();
    const expiresAt = Date.parse(h.auditsFor('req-lost')[0]?.expiresAt ?? '');
    await sleep(Math.max(0, expiresAt - Date.now()) + 200);
    await h.drain();
    expect(h.auditsFor(scheduleName('req-lost'))).toEqual([]);
    expect(entryOf(LOST)?.policies).toEqual([{ policyArn: VIEW, accessScope: ns('team-a') }]);

    const { run, logger } = await reconcilerFor(h);
    const report = await run();
    expect(report).toMatchObject({ expiriesEnqueued: 1, drifted: 0, errors: 0, truncated: false });
    expect(logger.lines.some((l) => l.level === 'warn' && /expiry enqueued/.test(l.message))).toBe(true);
    expect(await h.queueDepth()).toBe(1);

    await h.drain();
    expect(h.auditsFor(scheduleName('req-lost'))).toMatchObject([
      { outcome: 'expired', grantId: 'req-lost', source: 'expiry' },
    ]);
    expect(entryOf(LOST)).toBeUndefined();
    expect(entryOf(LATER)?.policies).toEqual([{ policyArn: VIEW, accessScope: ns('team-a') }]);

    // Nothing left to do on the next run.
    const again = await (await reconcilerFor(h)).run();
    expect(again).toMatchObject({ expiriesEnqueued: 0, drifted: 0, errors: 0 });
    expect(await h.queueDepth()).toBe(0);
  });

  describe('drift', () => {
    const MANAGED = 'arn:aws:iam::111122223333:role/managed';
    const UNMANAGED = 'arn:aws:iam::111122223333:role/someone-elses';

    beforeEach(async () => {
      h.eks.seedEntry('dev', {
        principalArn: UNMANAGED,
        policies: [{ policyArn: VIEW, accessScope: ns('team-x') }],
      });
      await h.send(devGrant('req-managed', MANAGED));
      await h.drain();
      // A human widens the managed policy's scope and adds a policy no grant ever named.
      await eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: MANAGED,
          policyArn: VIEW,
          accessScope: { type: 'namespace', namespaces: ['team-a', 'team-z'] },
        }),
      );
      await eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: MANAGED,
          policyArn: ADMIN_VIEW,
          accessScope: { type: 'cluster' },
        }),
      );
      h.eks.resetCalls();
    });

    test('a human scope change is reported as a `drift` audit and not written back by default', async () => {
      const before = h.eks.snapshot('dev');
      const { run } = await reconcilerFor(h);
      const report = await run();
      expect(report).toMatchObject({ principalsChecked: 1, drifted: 1, repairsEnqueued: 0, errors: 0 });

      const drift = h.audits().filter((a) => a.outcome === 'drift');
      expect(drift).toHaveLength(1);
      expect(drift[0]).toMatchObject({
        principalArn: MANAGED,
        clusterName: 'dev',
        source: 'reconcile',
        reason: { code: 'DRIFT' },
      });
      // Only the managed policy's scope is drift; the policy the human added is not ours to judge.
      expect(drift[0]?.changes).toEqual([
        {
          operation: 'AssociateAccessPolicy',
          policyArn: VIEW,
          before: ns('team-a', 'team-z'),
          after: ns('team-a'),
          status: 'planned',
        },
      ]);

      // The reconciler only reads, and only principals this system manages.
      const calls = h.eks.calls();
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.every((c) => READS.has(c.operation))).toBe(true);
      expect(calls.every((c) => c.principalArn === MANAGED)).toBe(true);
      expect(h.eks.snapshot('dev')).toEqual(before);
      expect(await h.queueDepth()).toBe(0);
    });

    test('with repairDrift it enqueues a converge request that the worker applies', async () => {
      const { run } = await reconcilerFor(h, { repairDrift: true });
      const report = await run();
      expect(report).toMatchObject({ drifted: 1, repairsEnqueued: 1, errors: 0 });
      expect(eksWrites(h)).toEqual([]);
      expect(await h.queueDepth()).toBe(1);

      await h.drain();
      expect(entryOf(MANAGED)?.policies).toEqual([
        { policyArn: ADMIN_VIEW, accessScope: { type: 'cluster', namespaces: [] } },
        { policyArn: VIEW, accessScope: ns('team-a') },
      ]);
      const repair = h.audits().find((a) => a.source === 'reconcile' && a.outcome !== 'drift');
      expect(repair).toMatchObject({ principalArn: MANAGED, outcome: 'repaired' });
      expect(repair?.changes).toMatchObject([
        { operation: 'AssociateAccessPolicy', policyArn: VIEW, after: ns('team-a'), status: 'applied' },
      ]);
      expect(eksWrites(h).map((c) => [c.operation, c.principalArn])).toEqual([
        ['AssociateAccessPolicy', MANAGED],
      ]);
      expect(entryOf(UNMANAGED)?.policies).toEqual([{ policyArn: VIEW, accessScope: ns('team-x') }]);

      const again = await (await reconcilerFor(h, { repairDrift: true })).run();
      expect(again).toMatchObject({ drifted: 0, repairsEnqueued: 0 });
    });
  });

  test('checks 3,000 managed principals on one cluster with bounded concurrency and finds no drift', async () => {
    const COUNT = 3000;
    const CONCURRENCY = 16;
    const principals = Array.from(
      { length: COUNT },
      (_, i) => `arn:aws:iam::111122223333:role/scale/p-${String(i).padStart(4, '0')}`,
    );
    const createdAt = new Date().toISOString();
    // Seeded in batches of 25 items: one conditional put per item (6,000 calls) took most of the test's
    // time on a busy machine, and seeding is not what this test is about.
    const items = principals.flatMap((principalArn) => {
      const grantId = `req-scale-${principalArn.slice(-4)}`;
      const grant: Grant = {
        grantId,
        requestId: grantId,
        source: 'ticket',
        policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
        kubernetesGroups: ['team-a-readers'],
        status: 'active',
        createdAt,
        version: 1,
      };
      h.eks.seedEntry('dev', {
        principalArn,
        kubernetesGroups: ['team-a-readers'],
        tags: { [MANAGED_TAG_KEY]: 'true' },
        policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
      });
      return [
        baselineItem('dev', principalArn, { exists: false, kubernetesGroups: [], policies: [] }),
        grantItem('dev', principalArn, grant),
      ];
    });
    const chunks = Array.from({ length: Math.ceil(items.length / 25) }, (_, i) =>
      items.slice(i * 25, i * 25 + 25),
    );
    await mapBounded(chunks, 4, async (chunk) => {
      let unprocessed: BatchWriteItemCommandInput['RequestItems'] = {
        [h.config.ledgerTable]: chunk.map((Item) => ({ PutRequest: { Item } })),
      };
      while (unprocessed && Object.keys(unprocessed).length > 0) {
        const out: BatchWriteItemCommandOutput = await h.aws.dynamodb.send(
          new BatchWriteItemCommand({ RequestItems: unprocessed }),
        );
        unprocessed = out.UnprocessedItems;
      }
    });
    // The reconciler finds them through the ledger adapter's own queries, as in production.
    expect(await ledgerOf(h).listPrincipals('dev')).toHaveLength(COUNT);

    const counted = new EKSClient({ region: REGION, endpoint: h.eks.endpoint, credentials: CREDENTIALS });
    const inFlight = countInFlight(counted);

    const { run } = await reconcilerFor(h, { concurrency: CONCURRENCY, eksClient: counted });
    const started = Date.now();
    const report = await run();
    console.info(`reconciled ${report.principalsChecked} principals in ${Date.now() - started} ms`);
    counted.destroy();

    expect(report).toMatchObject({
      expiriesEnqueued: 0,
      principalsChecked: COUNT,
      drifted: 0,
      repairsEnqueued: 0,
      errors: 0,
      truncated: false,
      // Every cluster of the sample policy (dev, prod, staging) is walked; only dev has entries.
      clusters: 3,
    });
    expect(inFlight.max()).toBeGreaterThan(1);
    expect(inFlight.max()).toBeLessThanOrEqual(CONCURRENCY);
    expect(h.audits().filter((a) => a.outcome === 'drift')).toEqual([]);
    expect(h.eks.calls().filter((c) => c.operation === 'DescribeAccessEntry')).toHaveLength(COUNT);
    expect(eksWrites(h)).toEqual([]);
    // A ceiling for a stuck run: 9,000 calls through emulators sharing this process and 2 busy cores.
  }, 900_000);
});
