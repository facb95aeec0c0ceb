/**
 * Lambda entry point: the reconcile-task consumer (SQS FIFO, batch size 1). Each task checks one
 * cluster from its cursor under the account-region's EKS call budget and re-enqueues its continuation
 * before the deadline. See functions/service/reconcile-task.ts.
 */
import type { Context, SQSEvent } from 'aws-lambda';
import { loadReconcilerConfig } from './config.js';
import { countMetric, instrumented, logger } from './observability.js';
import { createReconcileTaskConsumer } from './service/reconcile-task-wiring.js';

const config = loadReconcilerConfig();
const consume = createReconcileTaskConsumer(config, logger, undefined, { metrics: countMetric });

export const handler = instrumented((event: SQSEvent, context: Context) =>
  consume(event, () => Date.now() + context.getRemainingTimeInMillis() - config.taskMarginMs),
);
