/**
 * Helpers for the expiry, reconciler and convergence tests: wait for the Scheduler emulator's
 * real firing, count EKS writes, and build the real reconciler against a harness's emulators.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EKSClient } from '@aws-sdk/client-eks';
import { STSClient } from '@aws-sdk/client-sts';
import { LedgerAdapter } from '../../functions/adapters/ledger.js';
import type { ReconcilerConfig } from '../../functions/config.js';
import type { ReconcileReport } from '../../functions/service/reconciler.js';
import { createReconciler } from '../../functions/service/reconciler-wiring.js';
import { EXAMPLE_POLICY_PATH, policyFileToJson } from '../../infra/policy-file.js';
import { CREDENTIALS, captureLogger, type Harness, REGION, TARGET_ROLE_NAME } from './harness.js';

export const EKS_WRITES = new Set([
  'CreateAccessEntry',
  'UpdateAccessEntry',
  'DeleteAccessEntry',
  'AssociateAccessPolicy',
  'DisassociateAccessPolicy',
]);

/** Successful EKS write calls the emulator received since its last resetCalls(). */
export function eksWrites(h: Harness) {
  return h.eks.calls().filter((c) => EKS_WRITES.has(c.operation) && c.status < 300);
}

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
  /** Sees every EKS request the reconciler makes (e.g. to measure concurrency). */
  eksClient?: EKSClient;
}

/** The real reconciler (createReconciler) wired to the harness's emulators over HTTP. */
export async function reconcilerFor(h: Harness, opts: ReconcilerOptions = {}) {
  const config: ReconcilerConfig = {
    region: REGION,
    requestQueueUrl: h.aws.queueUrl,
    breakGlassQueueUrl: h.aws.queueUrl,
    ledgerTable: h.config.ledgerTable,
    auditBusName: h.config.auditBusName,
    policyPath: await examplePolicyJsonPath(),
    repairDrift: opts.repairDrift ?? false,
    concurrency: opts.concurrency ?? 16,
    eksMaxAttempts: 4,
    // The harness's local STS has the one target role: the reconciler reads staging through it too.
    targetRoleName: TARGET_ROLE_NAME,
  };
  const logger = captureLogger();
  const eks =
    opts.eksClient ??
    new EKSClient({ region: REGION, endpoint: h.eks.endpoint, credentials: CREDENTIALS, maxAttempts: 4 });
  const run = createReconciler(
    config,
    logger,
    {
      eks,
      sqs: h.aws.sqsAs('reconciler'),
      dynamodb: h.aws.dynamodb,
      eventbridge: h.aws.eventbridgeAs('reconciler'),
      sts: new STSClient({ region: REGION, endpoint: h.sts.endpoint, credentials: CREDENTIALS }),
      eksFor: (region, credentials) =>
        new EKSClient({
          region,
          endpoint: h.eks.endpoint,
          credentials: credentials ?? CREDENTIALS,
          maxAttempts: 4,
        }),
    },
    opts.now,
  );
  return { run: (): Promise<ReconcileReport> => run(), logger };
}
