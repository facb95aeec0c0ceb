/**
 * Lambda entry point, scheduled every 5 minutes: the expiry safety net and drift report.
 * See functions/service/reconciler.ts.
 */

import type { Context } from 'aws-lambda';
import { loadReconcilerConfig } from './config.js';
import { countMetric, instrumented, logger } from './observability.js';
import { createReconciler } from './service/reconciler-wiring.js';

const config = loadReconcilerConfig();
const run = createReconciler(config, logger);

export const handler = instrumented(async (_event: unknown, context: Context) => {
  // Leave 10 s to publish the report; runs start at a random principal, so later runs cover the rest.
  const report = await run(() => Date.now() + context.getRemainingTimeInMillis() - 10_000);
  for (const [name, value] of Object.entries(report)) {
    if (typeof value === 'number') countMetric.count(`Reconcile_${name}`, value);
  }
  logger.info('reconcile finished', { report });
  return report;
});
