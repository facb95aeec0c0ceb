/**
 * Powertools Logger, Metrics and Tracer, one instance each per cold start.
 * POWERTOOLS_* environment variables (service name, log level, namespace, tracing on/off)
 * are honoured as documented by Powertools.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { ServiceMetrics } from './service/grant-service.js';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'eks-access-grants';

export const logger = new Logger({ serviceName });
export const metrics = new Metrics({
  serviceName,
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'EksAccessGrants',
});
export const tracer = new Tracer({ serviceName });

export const countMetric: ServiceMetrics = {
  count(name, value = 1) {
    metrics.addMetric(name, MetricUnit.Count, value);
  },
};

/** Traces every SDK client of a function (a no-op outside Lambda or with tracing off). */
export function traceClients(clients: object): void {
  for (const client of Object.values(clients)) tracer.captureAWSv3Client(client);
}

/** A Lambda handler with the Powertools trio: trace segment, logger context, metrics flush. */
export function instrumented<E, R>(handler: (event: E, context: Context) => Promise<R>) {
  return middy(handler)
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics));
}
