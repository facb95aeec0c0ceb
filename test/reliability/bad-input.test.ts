/**
 * Bad input: malformed, oversized, wrongly typed and hostile message bodies (see hostile.ts) go through
 * the real batch handler in batches of 10. Each one must be refused with a reason code before any EKS
 * call, acknowledged (no batch item failure, so it is not retried), and leave the process unpolluted.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { POLICY_DENIED } from '../../functions/core/policy.js';
import { REQUEST_REASON_CODES } from '../../functions/core/request.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { badBody } from './hostile.js';
import { BAD_INPUT_BODIES, SCALE, SEED, TEST_TIMEOUT_MS } from './scale.js';

const KNOWN_CODES = new Set<string>([...REQUEST_REASON_CODES, POLICY_DENIED, 'ALREADY_EXPIRED']);
// A rejection names the offending value truncated: a 16 KiB body must not become a 16 KiB audit line.
const MAX_AUDIT_BYTES = 8_192;

const prototypes = [Object.prototype, Array.prototype, Function.prototype, String.prototype];
const shapeOf = () => prototypes.map((p) => Object.getOwnPropertyNames(p).sort().join(','));

describe(`bad input (${SCALE}: ${BAD_INPUT_BODIES} bodies)`, () => {
  let h: Harness;
  const seen = new Map<string, number>();

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
    console.info(
      `[bad-input ${SCALE}] bodies per family of defect: ` +
        [...seen]
          .sort((a, b) => b[1] - a[1])
          .map(([k, n]) => `${k}=${n}`)
          .join(', '),
    );
  });

  test(
    'every body is rejected with a reason code, acknowledged, and makes no EKS call of any kind',
    async () => {
      const shape = shapeOf();
      await fc.assert(
        fc.asyncProperty(fc.array(badBody, { minLength: 10, maxLength: 10 }), async (batch) => {
          const before = h.audits().length;
          let response: Awaited<ReturnType<Harness['invoke']>>;
          try {
            response = await h.invoke(batch.map((b) => b.body));
          } catch (err) {
            throw new Error(`the handler threw: ${String(err)}`);
          }
          expect(response.batchItemFailures).toEqual([]);
          const audits = h.audits().slice(before);
          expect(audits).toHaveLength(batch.length);
          batch.forEach((bad, i) => {
            seen.set(bad.family ?? bad.kind, (seen.get(bad.family ?? bad.kind) ?? 0) + 1);
            const audit = audits[i]!;
            const label = `${bad.kind}: ${bad.body.slice(0, 160)}`;
            expect(audit.outcome, label).toBe('rejected');
            expect(KNOWN_CODES.has(audit.reason?.code ?? ''), `${label} → ${audit.reason?.code}`).toBe(true);
            expect(bad.codes, `${label} → ${audit.reason?.code}: ${audit.reason?.message}`).toContain(
              audit.reason?.code,
            );
            expect(audit.changes).toEqual([]);
            expect(Buffer.byteLength(JSON.stringify(audit)), label).toBeLessThanOrEqual(MAX_AUDIT_BYTES);
          });
          expect(h.eksCalls).toEqual([]);
          expect(h.eks.calls()).toEqual([]);
          expect(shapeOf()).toEqual(shape);
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
        }),
        { numRuns: BAD_INPUT_BODIES / 10, seed: SEED },
      );
    },
    TEST_TIMEOUT_MS,
  );

  test('a __proto__ key cannot smuggle a cluster scope or pollute Object.prototype', async () => {
    const body =
      '{"__proto__":{"polluted":true,"accessScope":{"type":"cluster"}},"schemaVersion":1,' +
      '"requestId":"req-proto","action":"grant","source":"ticket","clusterName":"dev",' +
      '"principalArn":"arn:aws:iam::111122223333:role/team-a-dev","accessPolicies":[{"policyArn":' +
      '"arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy","accessScope":{"__proto__":' +
      '{"type":"cluster"},"type":"namespace","namespaces":["team-a"]}}]}';
    const before = h.audits().length;
    expect(await h.invoke([body])).toEqual({ batchItemFailures: [] });
    expect(h.audits().slice(before)[0]).toMatchObject({
      outcome: 'rejected',
      reason: { code: 'UNKNOWN_FIELD' },
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(h.eks.calls()).toEqual([]);
  });

  // The policy lists account numbers; an account number names a different account in each partition, and
  // a principal from aws-cn or aws-us-gov can never be a principal of a commercial-partition cluster.
  test.each(['aws-cn', 'aws-us-gov'])(
    'denies a principal from %s whose account number the policy allows for the cluster partition',
    async (partition) => {
      const before = h.audits().length;
      const request = JSON.parse(
        JSON.stringify({
          schemaVersion: 1,
          requestId: `req-${partition}`,
          action: 'grant',
          source: 'ticket',
          clusterName: 'dev',
          principalArn: `arn:${partition}:iam::111122223333:role/team-a-dev`,
          accessPolicies: [
            {
              policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
              accessScope: { type: 'namespace', namespaces: ['team-a'] },
            },
          ],
        }),
      );
      await h.invoke([JSON.stringify(request)]);
      const [audit] = h.audits().slice(before);
      expect(audit?.outcome).toBe('rejected');
      expect(h.eks.snapshot('dev').filter((e) => e.principalArn.startsWith(`arn:${partition}:`))).toEqual([]);
    },
  );
});
