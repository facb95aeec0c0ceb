/**
 * What a redriven dead letter reports: the DLQ redrive path end to end (the worker dead-letters a message
 * itself, as its own role with `verifiedSender`; an operator's message move task hands it back with a new
 * message id). Real SDK clients over HTTP to the loopback emulators.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { fixture } from '../helpers/fixtures.js';
import { eksWrites, type Harness, startHarness } from '../helpers/harness.js';
import { redriveAll } from '../helpers/redrive.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('a failed revoke, dead-lettered and redriven', () => {
  const grant = fixture('dev-view-grant');
  const revoke = fixture('dev-view-revoke');

  /** The grant applied, then its revoke failed on every attempt and was dead-lettered. */
  async function failedRevoke(): Promise<Harness> {
    h = await startHarness({ worker: 'grantWorker', maxReceiveCount: 2, eksMaxAttempts: 1 });
    await h.send(grant);
    await h.drain();
    h.eks.setFaults({ errorRate: { DeleteAccessEntry: 1 } });
    await h.send(revoke);
    await h.drain(60_000);
    expect(h.auditsFor(revoke.requestId)).toMatchObject([
      { outcome: 'failed', reason: { code: 'EKS_UNAVAILABLE' } },
    ]);
    expect(h.eks.snapshot('dev')).toHaveLength(1);
    expect(await h.queueDepth()).toBe(0);
    h.eks.clearFaults();
    return h;
  }

  const writes = (stack: Harness) => eksWrites(stack).map((c) => c.operation);

  test('is audited `revoked` with the EKS calls the redriven attempt applied', async () => {
    const stack = await failedRevoke();
    stack.eks.resetCalls();
    await redriveAll(stack);
    await stack.drain();
    expect(stack.eks.snapshot('dev')).toEqual([]);
    expect(writes(stack)).toEqual(['DeleteAccessEntry']);
    const audits = stack.auditsFor(revoke.requestId);
    expect(audits.map((a) => a.outcome)).toEqual(['failed', 'revoked']);
    expect(audits[1]).toMatchObject({
      grantId: grant.requestId,
      endedBy: { source: 'ticket', requestId: revoke.requestId },
      changes: [{ operation: 'DeleteAccessEntry', status: 'applied' }],
    });
    expect(await stack.dlqBodies()).toEqual([]);
  });

  test('a duplicate of the revoke after the redrive applied it reports `unchanged` and changes nothing', async () => {
    const stack = await failedRevoke();
    await redriveAll(stack);
    await stack.drain();
    stack.eks.resetCalls();
    await stack.send(revoke);
    await stack.drain();
    expect(writes(stack)).toEqual([]);
    const audits = stack.auditsFor(revoke.requestId);
    expect(audits.map((a) => a.outcome)).toEqual(['failed', 'revoked', 'unchanged']);
    expect(audits[2]?.changes).toEqual([]);
  });
});
