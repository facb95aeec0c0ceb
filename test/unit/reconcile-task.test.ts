import { describe, expect, test } from 'vitest';
import {
  completeCluster,
  cursorKey,
  donePrefix,
  NO_STATS,
  newPass,
  parseReconcileTask,
  passDecision,
  passRun,
  reconcileGroupId,
} from '../../functions/core/reconcile-task.js';
import { TokenBucket } from '../../functions/core/token-bucket.js';

/** A virtual clock: sleeping advances it, so the bucket's pacing is exact and instant. */
function virtualClock() {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
}

describe('token bucket', () => {
  test('starts empty and lets no more than burst + rate × t calls start in t seconds', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket({ ratePerSecond: 20, burst: 2, clock: clock.now, sleep: clock.sleep });
    const starts: number[] = [];
    for (let i = 0; i < 100; i++) {
      await bucket.take();
      starts.push(clock.now());
    }
    // Empty at start: the first call waits 1/R, then one every 50 ms.
    expect(starts[0]).toBe(50);
    expect(starts[99]).toBeCloseTo(5000, 6);
    expect(bucket.calls).toBe(100);
  });

  test('serves concurrent callers in arrival order, each waiting its share', async () => {
    const clock = { now: () => 0 };
    const waits: number[] = [];
    const bucket = new TokenBucket({
      ratePerSecond: 10,
      burst: 1,
      initialTokens: 1,
      clock: clock.now,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await Promise.all(Array.from({ length: 4 }, () => bucket.take()));
    // The first takes the token; the next three are reserved 100, 200, 300 ms out.
    expect(waits).toEqual([100, 200, 300]);
  });

  test('refills up to its burst while idle, never beyond', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket({ ratePerSecond: 100, burst: 5, clock: clock.now, sleep: clock.sleep });
    await clock.sleep(60_000);
    const before = clock.now();
    for (let i = 0; i < 5; i++) await bucket.take();
    expect(clock.now()).toBe(before);
    await bucket.take();
    expect(clock.now()).toBeCloseTo(before + 10, 6);
  });
});

describe('reconcile task contract', () => {
  const task = { schemaVersion: 1, kind: 'reconcile-task', passId: 'pass-1', cluster: 'dev', slice: 0 };

  test('parses a task and refuses unknown fields, bad ids and bad slices', () => {
    expect(parseReconcileTask(JSON.stringify(task))).toEqual({ ok: true, task });
    expect(
      parseReconcileTask(JSON.stringify({ ...task, startAfter: 'arn:aws:iam::1:role/x', slice: 3 })),
    ).toMatchObject({
      ok: true,
      task: { startAfter: 'arn:aws:iam::1:role/x', slice: 3 },
    });
    expect(parseReconcileTask(JSON.stringify({ ...task, extra: 1 }))).toMatchObject({ ok: false });
    expect(parseReconcileTask(JSON.stringify({ ...task, passId: 'a b' }))).toMatchObject({ ok: false });
    expect(parseReconcileTask(JSON.stringify({ ...task, cluster: '-x' }))).toMatchObject({ ok: false });
    expect(parseReconcileTask(JSON.stringify({ ...task, slice: -1 }))).toMatchObject({ ok: false });
    expect(parseReconcileTask('not json')).toMatchObject({ ok: false });
  });

  test('groups tasks by account-region and keys cursors by account, region and cluster', () => {
    const a = { alias: 'staging', name: 'stg', account: '444455556666', region: 'eu-west-1' };
    expect(reconcileGroupId(a)).toBe('reconcile-444455556666-eu-west-1');
    expect(reconcileGroupId({ account: a.account, region: a.region })).toBe(reconcileGroupId(a));
    expect(cursorKey(a)).toBe('RECONCILE#444455556666#eu-west-1#stg');
  });

  test('a pass completes once every cluster is done, counting each cluster once', () => {
    const t0 = new Date('2026-12-02T10:00:00Z');
    const pass = newPass(
      'p',
      [
        { alias: 'a', pk: 'A' },
        { alias: 'b', pk: 'B' },
      ],
      2,
      t0,
    );
    const stats = { ...NO_STATS, principalsChecked: 5, drifted: 1, slices: 2 };
    const one = completeCluster(pass, 'A', stats, new Date('2026-12-02T10:01:00Z'));
    expect(one.finishedAt).toBeUndefined();
    expect(completeCluster(one, 'A', stats, new Date())).toBe(one);
    const two = completeCluster(
      one,
      'B',
      { ...NO_STATS, principalsChecked: 3, slices: 1 },
      new Date('2026-12-02T10:05:00Z'),
    );
    expect(two.finishedAt).toBe('2026-12-02T10:05:00.000Z');
    expect(passRun(two)).toEqual({
      at: '2026-12-02T10:00:00.000Z',
      finishedAt: '2026-12-02T10:05:00.000Z',
      report: {
        expiriesEnqueued: 2,
        principalsChecked: 8,
        drifted: 1,
        repairsEnqueued: 0,
        errors: 0,
        truncated: false,
        clusters: 2,
        slices: 3,
        coverageSeconds: 300,
      },
    });
  });

  test('starts a pass when none runs, leaves a live one alone and abandons a silent one', () => {
    const t0 = new Date('2026-12-02T10:00:00Z');
    const pass = newPass('p', [{ alias: 'a', pk: 'A' }], 0, t0);
    expect(passDecision(undefined, t0, 900_000)).toBe('start');
    expect(passDecision(pass, new Date(t0.getTime() + 600_000), 900_000)).toBe('running');
    expect(passDecision(pass, new Date(t0.getTime() + 901_000), 900_000)).toBe('abandon-and-start');
    expect(passDecision(completeCluster(pass, 'A', NO_STATS, t0), t0, 900_000)).toBe('start');
  });

  test('the cursor moves only past a contiguous prefix of checked principals', () => {
    expect(donePrefix([true, true, false, true])).toBe(2);
    expect(donePrefix([true, true])).toBe(2);
    expect(donePrefix([false, true])).toBe(0);
    expect(donePrefix([])).toBe(0);
  });
});
