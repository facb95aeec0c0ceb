/**
 * Lambda entry point, scheduled every 5 minutes: the expiry safety net, and the start of a reconcile
 * pass whose tasks go to the reconcile queue (functions/reconcile-task.ts consumes them).
 * See functions/service/reconciler.ts.
 */

import { loadReconcilerConfig } from './config.js';
import { countMetric, instrumented, logger } from './observability.js';
import { createReconciler } from './service/reconciler-wiring.js';

const config = loadReconcilerConfig();
const run = createReconciler(config, logger);

export const handler = instrumented(async () => {
  const report = await run();
  countMetric.count('Reconcile_expiriesEnqueued', report.expiriesEnqueued);
  countMetric.count('Reconcile_tasksEnqueued', report.tasksEnqueued);
  logger.info('reconcile scheduled run finished', { report });
  return report;
});
