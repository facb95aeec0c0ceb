/**
 * Throughput under throttling: EKS (the emulator) admits R calls per second through a token bucket and
 * answers after a realistic latency; P principals each ask for one new grant; the local Lambda runner
 * drives the real worker with several concurrent pollers, each invocation on its own execution
 * environment (own EKS client, own SDK retry quota). The figure is the grant rate as a fraction of the
 * best the limit allows: R ÷ (EKS calls a new grant needs).
 *
 * Variants differ only in client or deployment settings, never in functions/: the first is what the code
 * ships today; the others are candidate configurations, measured in the same run for comparison.
 */
import type { EKSClientConfig } from '@aws-sdk/client-eks';
import { loadWorkerConfig, type WorkerConfig } from '../functions/config.js';
import { ConfigError } from '../functions/core/errors.js';
import { fixture } from '../test/helpers/fixtures.js';
import { startLoadStack } from '../test/helpers/load-stack.js';
import { round, type SummaryRow } from './lib/report.js';

export const THROUGHPUT_TARGET = 0.9;
/** DescribeAccessEntry (404), CreateAccessEntry, AssociateAccessPolicy: see the API-efficiency figures. */
const CALLS_PER_NEW_GRANT = 3;

interface Variant {
  name: string;
  description: string;
  concurrency: number;
  principals: number;
  /** EKS admits this many calls per second; the bucket holds half a second's worth to start with. */
  ratePerSecond: number;
  eksClientConfig?: () => Partial<EKSClientConfig>;
}

const VARIANTS: Variant[] = [
  {
    name: 'as shipped',
    description: "defaultClients(): retryMode 'standard', maxAttempts EKS_MAX_ATTEMPTS; config defaults",
    concurrency: 8,
    principals: 200,
    ratePerSecond: 20,
  },
  {
    name: 'adaptive retry',
    description: "retryMode 'adaptive' (the SDK's client-side rate limiter), otherwise as shipped",
    concurrency: 8,
    principals: 200,
    ratePerSecond: 20,
    eksClientConfig: () => ({ retryMode: 'adaptive' }),
  },
  {
    name: '2 pollers',
    description: 'as shipped, with the event source mapping capped at 2 concurrent invocations',
    concurrency: 2,
    principals: 200,
    ratePerSecond: 20,
  },
  {
    name: 'sustained overload',
    description: 'as shipped; 300 grants at R=10/s: ~90 s of 10x more demand than EKS admits',
    concurrency: 8,
    principals: 300,
    ratePerSecond: 10,
  },
];

export interface ThroughputRun {
  variant: string;
  description: string;
  concurrency: number;
  principals: number;
  ratePerSecond: number;
  burst: number;
  /** Requests that reached a successful terminal record (`granted`, or `unchanged`: see below). */
  granted: number;
  /**
   * New grants audited `unchanged`: an attempt applied everything, then failed (deadline, throttling),
   * and the redelivery found nothing left to do. The access was granted; the audit record says otherwise.
   */
  auditedUnchanged: number;
  failed: number;
  deadLettered: number;
  seconds: number;
  grantsPerSecond: number;
  /** grants/s ÷ (R ÷ calls per grant). */
  fraction: number;
  /** The same, with the bucket's initial burst counted as capacity: grants ÷ ((R·t + burst) ÷ calls per grant). */
  fractionBurstAdjusted: number;
  eksCalls: number;
  throttled: number;
  /** Calls EKS admitted per grant (≥ 3; more means wasted re-reads). */
  admittedCallsPerGrant: number;
  /** Messages handed back to the queue at least once (SDK and in-invocation retries exhausted). */
  requeued: number;
  finished: boolean;
}

export interface ThroughputResult {
  latencyMs: { min: number; max: number };
  callsPerGrant: number;
  target: number;
  workerConfig: Pick<
    WorkerConfig,
    'maxReceiveCount' | 'eksMaxAttempts' | 'retryBaseSeconds' | 'retryMaxSeconds' | 'deadlineMarginMs'
  >;
  runs: ThroughputRun[];
}

export async function throughput(opts: {
  quick: boolean;
  log: (s: string) => void;
}): Promise<ThroughputResult> {
  const latencyMs = { min: 20, max: 60 };
  const shipped = shippedConfig();
  const runs: ThroughputRun[] = [];
  for (const variant of opts.quick ? [{ ...VARIANTS[0]!, principals: 40 }] : VARIANTS) {
    const { principals, ratePerSecond } = variant;
    const burst = ratePerSecond / 2;
    opts.log(
      `throughput: ${variant.name}: ${principals} grants, R=${ratePerSecond}/s, ${variant.concurrency} pollers`,
    );
    const stack = await startLoadStack({
      concurrency: variant.concurrency,
      maxReceiveCount: shipped.maxReceiveCount,
      visibilityTimeoutSeconds: 30,
      functionTimeoutMs: 30_000,
      config: shipped,
      ...(variant.eksClientConfig && { eksClientConfig: variant.eksClientConfig }),
    });
    try {
      const messages = Array.from({ length: principals }, (_, i) => {
        const request = fixture('dev-view-grant', {
          requestId: `tp-${i}`,
          principalArn: `arn:aws:iam::111122223333:role/throughput/p${i}`,
        });
        return { clusterName: 'dev', principalArn: request.principalArn, body: JSON.stringify(request) };
      });
      await stack.sendAll(messages);
      stack.h.eks.setFaults({ throttle: { ratePerSecond, burst }, latencyMs });
      const started = Date.now();
      const summary = await stack.runner.runUntilIdle({ maxMs: 10 * 60_000 });
      const audits = stack.h.audits();
      // Every request is a new grant, so `unchanged` can only mean the audit bug described on the field.
      const granted = audits.filter((a) => a.outcome === 'granted' || a.outcome === 'unchanged');
      const last = Math.max(...audits.map((a) => Date.parse(a.at)));
      const seconds = (last - started) / 1000;
      const calls = stack.h.eks.calls();
      const throttled = calls.filter((c) => c.status === 429).length;
      const limit = ratePerSecond / CALLS_PER_NEW_GRANT;
      const run: ThroughputRun = {
        variant: variant.name,
        description: variant.description,
        concurrency: variant.concurrency,
        principals,
        ratePerSecond,
        burst,
        granted: granted.length,
        auditedUnchanged: audits.filter((a) => a.outcome === 'unchanged').length,
        failed: audits.filter((a) => a.outcome === 'failed').length,
        deadLettered: (await stack.h.dlqBodies()).length,
        seconds: round(seconds, 2),
        grantsPerSecond: round(granted.length / seconds, 2),
        fraction: round(granted.length / seconds / limit),
        fractionBurstAdjusted: round(
          granted.length / ((ratePerSecond * seconds + burst) / CALLS_PER_NEW_GRANT),
        ),
        eksCalls: calls.length,
        throttled,
        admittedCallsPerGrant: round((calls.length - throttled) / Math.max(1, granted.length), 2),
        requeued: audits.filter((a) => a.attempt > 1).length,
        finished: summary.idle,
      };
      runs.push(run);
      opts.log(
        `throughput: ${variant.name}: ${run.granted}/${principals} granted in ${run.seconds} s → ${run.grantsPerSecond}/s, ` +
          `fraction ${run.fraction} (burst-adjusted ${run.fractionBurstAdjusted}); ${throttled} of ${calls.length} calls throttled`,
      );
    } finally {
      await stack.close();
    }
  }
  return {
    latencyMs,
    callsPerGrant: CALLS_PER_NEW_GRANT,
    target: THROUGHPUT_TARGET,
    workerConfig: {
      maxReceiveCount: shipped.maxReceiveCount,
      eksMaxAttempts: shipped.eksMaxAttempts,
      retryBaseSeconds: shipped.retryBaseSeconds,
      retryMaxSeconds: shipped.retryMaxSeconds,
      deadlineMarginMs: shipped.deadlineMarginMs,
    },
    runs,
  };
}

export function throughputSummary(result: ThroughputResult): SummaryRow[] {
  return result.runs.map((r) => ({
    benchmark: 'throughput',
    case: `${r.variant} (${r.principals} grants, R=${r.ratePerSecond}/s, ${r.concurrency} pollers)`,
    figure:
      `${r.fractionBurstAdjusted.toFixed(2)} of R/${result.callsPerGrant} ` +
      `(${r.grantsPerSecond}/s; ${r.granted}/${r.principals} granted${r.deadLettered ? `, ${r.deadLettered} DLQ` : ''}` +
      `${r.auditedUnchanged ? `, ${r.auditedUnchanged} audited unchanged` : ''}; ` +
      `${r.throttled} × 429)`,
    target: `≥ ${result.target}`,
    status: r.finished && r.fractionBurstAdjusted >= result.target ? 'pass' : 'FAIL',
  }));
}

/**
 * The worker's retry settings as functions/config.ts defaults them, read through loadWorkerConfig itself
 * so the benchmark follows the code: the variables it insists on get placeholder values.
 */
function shippedConfig(): Pick<
  WorkerConfig,
  'maxReceiveCount' | 'eksMaxAttempts' | 'retryBaseSeconds' | 'retryMaxSeconds' | 'deadlineMarginMs'
> {
  const env: Record<string, string> = {};
  for (let i = 0; i < 50; i++) {
    try {
      const c = loadWorkerConfig(env);
      return {
        maxReceiveCount: c.maxReceiveCount,
        eksMaxAttempts: c.eksMaxAttempts,
        retryBaseSeconds: c.retryBaseSeconds,
        retryMaxSeconds: c.retryMaxSeconds,
        deadlineMarginMs: c.deadlineMarginMs,
      };
    } catch (err) {
      const name =
        err instanceof ConfigError ? /variable (\w+) is required/.exec(err.message)?.[1] : undefined;
      if (!name) throw err;
      // The sender binding is JSON; any well-formed value will do for reading the retry settings.
      env[name] =
        name === 'TRUSTED_SENDERS'
          ? '{"ticket":["AROAPLACEHOLDER"]}'
          : name === 'DEAD_LETTER_SENDERS'
            ? '["AROAPLACEHOLDER"]'
            : 'placeholder';
    }
  }
  throw new Error('loadWorkerConfig kept asking for more variables');
}
