/**
 * Faults: thousands of requests through the real queue → runner → worker → EKS emulator path while EKS
 * answers ~20% of calls with 5xx, 429 or a lost response, and one invocation crashes partway through a
 * batch. Then the books must balance exactly and EKS must hold what an independent model says.
 *
 * "Exactly one terminal audit record per attempt cycle", as asserted below: an attempt cycle of a message
 * runs from its first delivery to the delivery whose handler run completes it (retries in between publish
 * nothing). A completed record inside an invocation whose result is lost (the deliberate crash, or a
 * timeout) comes back when SQS redelivers the message with the same id (its replay). A message whose record
 * reported a ledger change is marked in the ledger, so its replay publishes nothing and makes no EKS call
 * (`alreadyReported`); one that marked nothing (a `rejected`, an `unchanged` that recorded nothing) cannot be
 * told from a first delivery and publishes its record again, the same outcome and no EKS change. Each replay's
 * records are found by its message id (isRecordOfMessage), so per replayed message:
 *   first record `granted`/`revoked`/`failed` → no second record; `rejected` → one more `rejected`;
 *   `unchanged` → at most one more `unchanged`;
 * and per requestId: records = (times the request was sent) + (the second records of its replays), and
 *   outcomes = the model's outcome for each send + those second records' outcomes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type AuditRecord, isRecordOfMessage } from '../../functions/core/audit.js';
import {
  InvocationCrash,
  type InvocationTracking,
  injectLostResponses,
  type LoadStack,
  startLoadStack,
  trackInvocations,
} from '../helpers/load-stack.js';
import { accessOfSnapshot, canonical, type ModelOutcome, PrincipalModel } from './access-model.js';
import { FAULTS, SCALE, SEED, TEST_TIMEOUT_MS } from './scale.js';
import { EDIT, faultWorkload, seededRandom, VIEW, type Workload } from './workload.js';

const TERMINAL = new Set(['granted', 'unchanged', 'revoked', 'rejected', 'failed']);
// High enough that transient faults never exhaust a message's receives; a DLQ entry here is a finding.
const MAX_RECEIVE_COUNT = 50;
// Long enough for a batch to finish on a busy machine most of the time: the timeouts that still happen
// there are faults the books account for, but when nearly every invocation overruns, the run is mostly
// replays (the lost-invocation case is also pinned down deterministically at the end of this file).
const FUNCTION_TIMEOUT_MS = 10_000;

describe(`faults (${SCALE}: ${FAULTS.requests} requests, ${FAULTS.principals} principals)`, () => {
  let stack: LoadStack;
  let tracking: InvocationTracking;
  let workload: Workload;
  let audits: AuditRecord[];
  let dlq: string[];
  const lostResponses = { injected: 0 };
  let summary: { idle: boolean; batches: number };
  /** Per requestId: the outcomes of the second records its replays published. */
  const replayRecords = new Map<string, string[]>();
  /** Replays whose records break the rule in the file comment. */
  const replayViolations: string[] = [];

  beforeAll(async () => {
    const random = seededRandom(SEED);
    workload = faultWorkload(random, FAULTS);
    tracking = trackInvocations({
      functionTimeoutMs: FUNCTION_TIMEOUT_MS,
      crashAtInvocation: 3,
      crashAfterRecords: 4,
    });
    const faultRandom = seededRandom(SEED + 1);
    stack = await startLoadStack({
      concurrency: 4,
      maxReceiveCount: MAX_RECEIVE_COUNT,
      // Twice the function timeout, so a redelivery does not overlap its first run (the worker stops
      // working at its deadline, before the timeout); short enough that the crashed batch comes back soon.
      visibilityTimeoutSeconds: 20,
      // trackInvocations enforces the 10 s timeout with exact books; the runner's own must never fire.
      functionTimeoutMs: 10 * 60_000,
      config: { retryBaseSeconds: 1, retryMaxSeconds: 1, deadlineMarginMs: 1_500 },
      decorateEksClient: (client) =>
        injectLostResponses(client, { rate: 0.04, random: faultRandom, counter: lostResponses }),
      wrapHandler: tracking.wrap,
    });
    for (const p of workload.principals) if (p.seed) stack.h.eks.seedEntry(p.clusterName, p.seed);
    stack.h.eks.setFaults({
      errorRate: { '*': 0.12 },
      // The bucket throttles bursts of the 4 pollers; the sequence guarantees a few 429s even on a
      // machine too slow to fill the bucket.
      throttle: { ratePerSecond: 60, burst: 4 },
      errorSequence: [{ operation: '*', status: 429, count: 3 }],
      latencyMs: { min: 2, max: 20 },
      postCreateNotFoundMs: 30,
      random: faultRandom,
    });
    await stack.sendAll(workload.messages);
    summary = await stack.runner.runUntilIdle({ maxMs: TEST_TIMEOUT_MS - 60_000 });
    stack.h.eks.clearFaults();
    audits = stack.h.audits();
    dlq = await stack.h.dlqBodies();
    for (const { messageId, body } of tracking.replayed) {
      const { requestId } = JSON.parse(body) as { requestId: string };
      const own = audits.filter((a) => a.requestId === requestId && isRecordOfMessage(a, messageId));
      const [first, ...again] = own.map((a) => a.outcome);
      const allowed =
        first === 'rejected' ? [1] : first === 'unchanged' ? [0, 1] : first === undefined ? [] : [0];
      if (!allowed.includes(again.length) || again.some((o) => o !== first)) {
        replayViolations.push(
          `${requestId} (${messageId}): [${first}${again.map((o) => `, ${o}`).join('')}]`,
        );
      }
      replayRecords.set(requestId, [...(replayRecords.get(requestId) ?? []), ...again]);
    }

    const calls = stack.h.eks.calls();
    const count = (status: number) => calls.filter((c) => c.status === status).length;
    const faults = count(500) + count(429) + lostResponses.injected;
    console.info(
      `[faults ${SCALE}] ${workload.messages.length} messages in ${summary.batches} batches; EKS calls ${calls.length}: ` +
        `500=${count(500)} 429=${count(429)} lost-responses=${lostResponses.injected} ` +
        `(${((100 * faults) / calls.length).toFixed(1)}% faulted); crashes=${JSON.stringify(tracking.crashes)} ` +
        `overruns=${tracking.timeouts} replays=${tracking.replayedBodies.length} ` +
        `environments=${stack.environments()} dlq=${dlq.length} seed=${SEED}`,
    );
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.close();
  });

  const secondRecords = () => [...replayRecords.values()].reduce((n, a) => n + a.length, 0);

  test('drains the queue: nothing is left in flight', async () => {
    expect(summary.idle).toBe(true);
    expect(await stack.h.queueDepth()).toBe(0);
  });

  test('injects the planned faults: 5xx, 429, lost responses (~20% of calls) and one mid-batch crash', () => {
    const calls = stack.h.eks.calls();
    const e5xx = calls.filter((c) => c.status === 500).length;
    const e429 = calls.filter((c) => c.status === 429).length;
    expect(e5xx).toBeGreaterThan(0);
    expect(e429).toBeGreaterThan(0);
    expect(lostResponses.injected).toBeGreaterThan(0);
    expect((e5xx + e429 + lostResponses.injected) / calls.length).toBeGreaterThanOrEqual(0.12);
    expect(tracking.crashes).toHaveLength(1);
    const [crash] = tracking.crashes;
    // Some records done and some not: a crash partway through, not at a batch boundary.
    expect(crash!.completed).toBeGreaterThan(0);
    expect(crash!.completed).toBeLessThan(crash!.batchSize);
  });

  test('a replay publishes a second record only when the ledger cannot tell it reported: never a second `granted` or `revoked`', () => {
    expect(replayViolations).toEqual([]);
  });

  test('every audit record is terminal, and every request has one per attempt cycle', () => {
    for (const a of audits) expect(TERMINAL.has(a.outcome), `${a.requestId}: ${a.outcome}`).toBe(true);
    const sends = countBy(workload.messages.map((m) => m.request.requestId));
    const records = countBy(audits.map((a) => a.requestId));
    const wrong: string[] = [];
    for (const [requestId, sent] of sends) {
      const want = sent + (replayRecords.get(requestId)?.length ?? 0);
      if (records.get(requestId) !== want)
        wrong.push(`${requestId}: ${records.get(requestId) ?? 0} ≠ ${want}`);
    }
    for (const requestId of records.keys()) if (!sends.has(requestId)) wrong.push(`${requestId}: never sent`);
    expect(wrong, 'requests whose terminal records do not match their attempt cycles').toEqual([]);
    expect(audits).toHaveLength(workload.messages.length + secondRecords());
  });

  test('nothing is lost: terminal outcomes plus dead letters account for every sent message', () => {
    const failed = audits.filter((a) => a.outcome === 'failed');
    // Every message reached a terminal record; the ones that failed are also in the DLQ, exactly once.
    expect(audits.length - secondRecords()).toBe(workload.messages.length);
    expect(countBy(dlq.map((b) => (JSON.parse(b) as { requestId: string }).requestId))).toEqual(
      countBy(failed.map((a) => a.requestId)),
    );
    // With maxReceiveCount 50, transient faults alone must never exhaust a message.
    expect(
      failed.map((a) => `${a.requestId}: ${a.reason?.code} ${a.reason?.message}`),
      'dead-lettered under transient faults',
    ).toEqual([]);
  });

  test('outcomes match the independent model, and replays change nothing', () => {
    const models = new Map(workload.principals.map((p) => [key(p), new PrincipalModel(p.baseline)]));
    const expected = new Map<string, ModelOutcome[]>();
    for (const m of workload.messages) {
      const outcome = models.get(key(m))!.apply(m.request);
      expected.set(m.request.requestId, [...(expected.get(m.request.requestId) ?? []), outcome]);
    }
    for (const [requestId, again] of replayRecords)
      expected.get(requestId)?.push(...(again as ModelOutcome[]));
    const actual = new Map<string, string[]>();
    for (const a of audits) actual.set(a.requestId, [...(actual.get(a.requestId) ?? []), a.outcome]);
    const mismatches: string[] = [];
    for (const [requestId, want] of expected) {
      const got = [...(actual.get(requestId) ?? [])].sort();
      if (got.join() !== [...want].sort().join())
        mismatches.push(`${requestId}: got [${got}] want [${want}]`);
    }
    expect(mismatches.slice(0, 20), `${mismatches.length} outcome mismatches`).toEqual([]);
    // An `unchanged` or `rejected` record, replays included, made no EKS change.
    const noisy = audits.filter(
      (a) =>
        (a.outcome === 'unchanged' || a.outcome === 'rejected') &&
        a.changes.some((c) => c.status === 'applied'),
    );
    expect(noisy.map((a) => a.requestId)).toEqual([]);
  });

  test('final EKS state equals the model: baseline ∪ active grants, per principal and cluster', () => {
    const models = new Map(workload.principals.map((p) => [key(p), new PrincipalModel(p.baseline)]));
    for (const m of workload.messages) models.get(key(m))!.apply(m.request);
    const mismatches: string[] = [];
    for (const clusterName of ['dev', 'prod']) {
      const entries = new Map(stack.h.eks.snapshot(clusterName).map((e) => [e.principalArn, e]));
      for (const p of workload.principals.filter((x) => x.clusterName === clusterName)) {
        const entry = entries.get(p.principalArn);
        entries.delete(p.principalArn);
        const want = canonical(models.get(key(p))!.state());
        const got = entry ? canonical(accessOfSnapshot(entry)) : 'absent';
        if (got !== want)
          mismatches.push(`${clusterName} ${p.principalArn}\n   got  ${got}\n   want ${want}`);
        if (entry && entry.type !== 'STANDARD') mismatches.push(`${p.principalArn}: type ${entry.type}`);
      }
      for (const arn of entries.keys()) mismatches.push(`${clusterName} ${arn}: an entry nobody asked for`);
    }
    expect(mismatches.slice(0, 10), `${mismatches.length} principals differ from the model`).toEqual([]);
  });
});

function key(p: { clusterName: string; principalArn: string }): string {
  return `${p.clusterName} ${p.principalArn}`;
}

function countBy(values: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
  return out;
}

describe('a lost response to each EKS write', () => {
  // Per principal, the first response to one write command is lost after EKS applied the call; the SDK
  // retries it into an "already done" answer (409 on create, 404 on removals) that must not fail the request.
  const LOST = [
    'CreateAccessEntryCommand',
    'UpdateAccessEntryCommand',
    'AssociateAccessPolicyCommand',
    'DisassociateAccessPolicyCommand',
    'DeleteAccessEntryCommand',
  ] as const;
  const arnFor = (command: string) => `arn:aws:iam::111122223333:role/lost/${command}`;
  let stack: LoadStack;
  const lost = { injected: 0, byCommand: {} as Record<string, number> };

  beforeAll(async () => {
    const done = new Set<string>();
    stack = await startLoadStack({
      concurrency: 2,
      config: { retryBaseSeconds: 1, retryMaxSeconds: 1 },
      decorateEksClient: (client) =>
        injectLostResponses(client, {
          rate: 1,
          random: Math.random,
          counter: lost,
          only: (command, input) => {
            const key = `${command} ${String(input.principalArn)}`;
            if (input.principalArn !== arnFor(command) || done.has(key)) return false;
            done.add(key);
            return true;
          },
        }),
    });
    const messages = LOST.flatMap((command) => {
      const principalArn = arnFor(command);
      const base = { schemaVersion: 1, source: 'ticket', clusterName: 'dev', principalArn };
      const requests = [
        {
          ...base,
          requestId: `${command}-a`,
          action: 'grant',
          kubernetesGroups: ['team-a-readers'],
          accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['team-a'] } }],
        },
        {
          ...base,
          requestId: `${command}-b`,
          action: 'grant',
          kubernetesGroups: ['team-b-readers'],
          accessPolicies: [{ policyArn: EDIT, accessScope: { type: 'namespace', namespaces: ['team-b'] } }],
        },
        { ...base, requestId: `${command}-rb`, action: 'revoke', grantId: `${command}-b` },
        { ...base, requestId: `${command}-ra`, action: 'revoke', grantId: `${command}-a` },
      ];
      return requests.map((r) => ({ clusterName: 'dev', principalArn, body: JSON.stringify(r) }));
    });
    await stack.sendAll(messages);
    await stack.runner.runUntilIdle({ maxMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    await stack?.close();
  });

  test('is injected once for every write command', () => {
    expect(lost.byCommand).toEqual(Object.fromEntries(LOST.map((c) => [c, 1])));
  });

  test.each(LOST)(
    'lost %s: the requests still end granted, granted, revoked, revoked and nothing is dead-lettered',
    async (command) => {
      const outcomes = ['a', 'b', 'rb', 'ra'].map((suffix) =>
        stack.h
          .auditsFor(`${command}-${suffix}`)
          .map((a) => (a.reason ? `${a.outcome} ${a.reason.code}: ${a.reason.message}` : a.outcome)),
      );
      expect(outcomes).toEqual([['granted'], ['granted'], ['revoked'], ['revoked']]);
      expect(stack.h.eks.snapshot('dev').filter((e) => e.principalArn === arnFor(command))).toEqual([]);
    },
  );
});

describe('a request whose changes all landed in an attempt that then failed', () => {
  // From the first lost response to the request's decisive write (the grant's AssociateAccessPolicy; the
  // revoke's AssociateAccessPolicy that narrows the scope, the principal's third), the next 12 responses
  // for that principal are lost too: the SDK's 4 attempts and the worker's 3 re-read rounds run out, so
  // the message goes back to the queue although EKS already holds the result. The next delivery finds
  // nothing left to do; its terminal record must still say what the request did, or the audit trail
  // shows no `granted` for access that was granted.
  const GRANTEE = 'arn:aws:iam::111122223333:role/landed/grantee';
  const REVOKEE = 'arn:aws:iam::111122223333:role/landed/revokee';
  let stack: LoadStack;

  beforeAll(async () => {
    const lost = new Map<string, number>();
    const associations = new Map<string, number>();
    const decisiveAssociation: Record<string, number> = { [GRANTEE]: 1, [REVOKEE]: 3 };
    stack = await startLoadStack({
      concurrency: 1,
      config: { retryBaseSeconds: 1, retryMaxSeconds: 1 },
      decorateEksClient: (client) =>
        injectLostResponses(client, {
          rate: 1,
          random: Math.random,
          counter: { injected: 0 },
          only: (command, input) => {
            const arn = String(input.principalArn);
            const n = lost.get(arn);
            if (n === undefined && command === 'AssociateAccessPolicyCommand') {
              const seen = (associations.get(arn) ?? 0) + 1;
              associations.set(arn, seen);
              if (seen !== decisiveAssociation[arn]) return false;
              lost.set(arn, 1);
              return true;
            }
            if (n === undefined || n >= 13) return false;
            lost.set(arn, n + 1);
            return true;
          },
        }),
    });
    const grantOf = (principalArn: string, requestId: string, namespace = 'team-a') => ({
      schemaVersion: 1,
      requestId,
      action: 'grant',
      source: 'ticket',
      clusterName: 'dev',
      principalArn,
      accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces: [namespace] } }],
    });
    const revokeOf = (principalArn: string, requestId: string, grantId: string) => ({
      schemaVersion: 1,
      requestId,
      action: 'revoke',
      source: 'ticket',
      clusterName: 'dev',
      principalArn,
      grantId,
    });
    await stack.sendAll(
      [
        grantOf(GRANTEE, 'landed-grant'),
        grantOf(REVOKEE, 'landed-kept'),
        grantOf(REVOKEE, 'landed-revoked', 'team-b'),
        revokeOf(REVOKEE, 'landed-revoke', 'landed-revoked'),
      ].map((r) => ({ clusterName: 'dev', principalArn: r.principalArn, body: JSON.stringify(r) })),
    );
    await stack.runner.runUntilIdle({ maxMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    await stack?.close();
  });

  test('a grant is audited `granted`, not `unchanged`', () => {
    const audits = stack.h.auditsFor('landed-grant');
    expect(audits.map((a) => a.outcome)).toEqual(['granted']);
    expect(audits[0]!.attempt).toBeGreaterThan(1);
    expect(stack.h.eks.snapshot('dev').find((e) => e.principalArn === GRANTEE)?.policies).toHaveLength(1);
  });

  test('a revoke is audited `revoked`, not `unchanged`', () => {
    const audits = stack.h.auditsFor('landed-revoke');
    expect(audits.map((a) => a.outcome)).toEqual(['revoked']);
    expect(audits[0]!.attempt).toBeGreaterThan(1);
    expect(stack.h.eks.snapshot('dev').find((e) => e.principalArn === REVOKEE)?.policies).toEqual([
      { policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['team-a'] } },
    ]);
  });
});

describe('a replay while a later message of its group has a ledger change pending', () => {
  // One invocation holds two grants for one principal. The first completes and is reported; the second
  // records its grant in the ledger, cannot reach EKS, and the invocation is then lost (as a Lambda timeout
  // loses it). SQS hands both back in order, so the first is replayed while the second's change is in the
  // ledger but not in EKS. Converging to the whole ledger there would make a replay's record carry the second
  // grant's EKS call, and leave the second's `granted` record without it; the replay reported already, so it
  // publishes nothing and leaves EKS alone.
  const PRINCIPAL = 'arn:aws:iam::111122223333:role/pending/p';
  let stack: LoadStack;
  const batches: number[] = [];

  beforeAll(async () => {
    let editUnreachable = true;
    stack = await startLoadStack({
      concurrency: 1,
      // Brings the lost batch back soon; with one poller a redelivery never overlaps the run that lost it.
      visibilityTimeoutSeconds: 2,
      config: { retryBaseSeconds: 1, retryMaxSeconds: 1 },
      decorateEksClient: (client) =>
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const input = (args as unknown as { input?: Record<string, unknown> }).input ?? {};
            if (
              editUnreachable &&
              context.commandName === 'AssociateAccessPolicyCommand' &&
              input.policyArn === EDIT
            ) {
              // Thrown before the request is sent: EKS never sees it.
              const err = new Error('injected: EKS unreachable for the Edit association');
              err.name = 'TimeoutError';
              throw err;
            }
            return next(args);
          },
          { step: 'deserialize', name: 'unreachableEdit', priority: 'high' },
        ),
      wrapHandler: (inner) => async (event, context) => {
        batches.push(event.Records.length);
        const response = await inner(event, context);
        if (batches.length === 1) {
          editUnreachable = false;
          throw new InvocationCrash('the invocation timed out: its results are lost');
        }
        return response;
      },
    });
    const grantOf = (requestId: string, policyArn: string, namespace: string) => ({
      schemaVersion: 1,
      requestId,
      action: 'grant',
      source: 'ticket',
      clusterName: 'dev',
      principalArn: PRINCIPAL,
      accessPolicies: [{ policyArn, accessScope: { type: 'namespace', namespaces: [namespace] } }],
    });
    await stack.sendAll(
      [grantOf('pending-first', VIEW, 'team-a'), grantOf('pending-second', EDIT, 'team-b')].map((r) => ({
        clusterName: 'dev',
        principalArn: PRINCIPAL,
        body: JSON.stringify(r),
      })),
    );
    await stack.runner.runUntilIdle({ maxMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    await stack?.close();
  });

  const summary = (requestId: string) =>
    stack.h.auditsFor(requestId).map((a) => ({
      outcome: a.outcome,
      applied: a.changes
        .filter((c) => c.status === 'applied')
        .map((c) => `${c.operation} ${c.policyArn ?? ''}`.trim()),
    }));

  test('the lost invocation held both messages', () => {
    expect(batches[0]).toBe(2);
  });

  test("the replay, already reported, publishes nothing and makes no EKS call; the pending grant's own record lists its call", () => {
    expect(summary('pending-first')).toEqual([
      { outcome: 'granted', applied: ['CreateAccessEntry', `AssociateAccessPolicy ${VIEW}`] },
    ]);
    expect(summary('pending-second')).toEqual([
      { outcome: 'granted', applied: [`AssociateAccessPolicy ${EDIT}`] },
    ]);
    expect(stack.h.eks.snapshot('dev').find((e) => e.principalArn === PRINCIPAL)?.policies).toHaveLength(2);
  });
});
