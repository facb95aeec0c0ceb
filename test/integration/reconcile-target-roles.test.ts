/**
 * The reconcile tasks reaching another account as deployed: through the reconciler's target role there,
 * assumed with the real STS client from the local STS, on the harness's EKS emulator (which keeps the
 * staging account-region apart by the session). What is checked here is what a target account can do
 * to the reconciler: sessions EKS refuses must not let it exceed its per-account-region call budget.
 */
import { STSClient } from '@aws-sdk/client-sts';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ClusterDirectory } from '../../functions/core/cluster-target.js';
import { credentialsOf } from '../../infra/local/identities.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { eksWrites, ledgerOf, reconcilerFor, seedActiveGrant } from '../helpers/expiry.js';
import {
  createTargetRole,
  type Harness,
  REGION,
  startHarness,
  TARGET_ROLE_NAME,
} from '../helpers/harness.js';

const HOME_ACCOUNT = '123456789012'; // local-aws-sqs puts it in every queue URL

/** The most calls that arrived within any `ms`-long window. */
function busiest(arrivals: number[], ms: number): number {
  const at = [...arrivals].sort((a, b) => a - b);
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < at.length; hi++) {
    while ((at[hi] as number) - (at[lo] as number) >= ms) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

describe('reconcile tasks through a target role', () => {
  let h: Harness;
  const clients: { destroy(): void }[] = [];
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await h.close();
  });

  test('a target account whose sessions EKS keeps refusing does not get more than the budget', async () => {
    // Every session dies as soon as it is issued (the target role is recreated after each AssumeRole:
    // IAM knows sessions by the role's unique id), so every EKS call is AccessDeniedException and each
    // principal renews its session once. A renewal must not hand the account-region a fresh budget.
    const R = 5;
    const principals = 20;
    const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
    const directory = new ClusterDirectory(policy, { account: HOME_ACCOUNT, region: REGION });
    const key = directory.keyOf('staging');
    expect(key).toBe('444455556666:eu-west-1:staging');
    const ledger = ledgerOf(h);
    for (let i = 0; i < principals; i++) {
      const principalArn = `arn:aws:iam::111122223333:role/fleet/staging-${String(i).padStart(3, '0')}`;
      await seedActiveGrant(ledger, key, principalArn, {
        grantId: `req-staging-${i}`,
        createdAt: new Date().toISOString(),
      });
    }
    const sts = new STSClient({
      region: REGION,
      endpoint: h.sts.endpoint,
      credentials: credentialsOf('reconciler'),
    });
    clients.push(sts);
    sts.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        createTargetRole(h.sts);
        return out;
      },
      { step: 'initialize', name: 'recreateTargetRoleAfterEachAssume' },
    );
    h.eks.resetCalls();
    const r = await reconcilerFor(h, {
      eksCallsPerSecond: R,
      concurrency: 16,
      targetRoles: { sts, targetRoleName: TARGET_ROLE_NAME },
    });
    const report = await r.run();
    expect(report).toMatchObject({ clusters: 3, errors: principals, truncated: false });
    expect(eksWrites(h)).toEqual([]);

    const staging = h.eks.calls().filter((c) => c.clusterName === 'staging');
    // Describe refused, renewed, Describe refused again: two calls per principal, every one refused.
    expect(staging).toHaveLength(2 * principals);
    expect(staging.every((c) => c.status === 403)).toBe(true);
    const arrivals = staging.map((c) => c.at);
    const span = (Math.max(...arrivals) - Math.min(...arrivals)) / 1000;
    // At most burst + R × t calls start in t seconds (the fan-out test's tolerances for jitter).
    expect(busiest(arrivals, 1000) / R).toBeLessThanOrEqual(2);
    expect((staging.length - 1) / span / R).toBeLessThanOrEqual(1.1);
    // Nor one AssumeRole per refused principal: the first session, and a renewal per 10 s cool-down
    // (the pass takes about 2 × principals ÷ R = 8 s).
    const assumed = h.sts.calls().filter((c) => c.action === 'AssumeRole').length;
    expect(assumed).toBeLessThanOrEqual(2 + Math.ceil(span / 10));
    expect(assumed).toBeLessThan(principals);
  });
});
