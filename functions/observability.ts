/**
 * Powertools Logger and Metrics, one instance each per cold start. POWERTOOLS_* environment variables
 * (service name, log level, namespace) are honoured as documented by Powertools.
 *
 * No tracing library in the bundle (issue 11): the X-Ray SDKs are in maintenance mode since 2026-02-25
 * (end of support 2027-02-25) and Powertools Tracer plus the X-Ray SDK were most of every function's
 * cold-start excess. Lambda active tracing (the `lambdaTracing` deploy parameter) traces each
 * invocation without code; the opt-in OpenTelemetry path (`otelLayerArn`) adds the ADOT layer and its
 * exec wrapper, which instrument the runtime from outside the bundle. See README "Tracing".
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { ServiceMetrics } from './service/grant-service.js';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'eks-access-grants';

export const logger = new Logger({ serviceName });
export const metrics = new Metrics({
  serviceName,
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'EksAccessGrants',
});

export const countMetric: ServiceMetrics = {
  count(name, value = 1) {
    metrics.addMetric(name, MetricUnit.Count, value);
  },
};

/** A Lambda handler with the Powertools pair: logger context, metrics flush. */
export function instrumented<E, R>(handler: (event: E, context: Context) => Promise<R>) {
  return middy(handler).use(injectLambdaContext(logger)).use(logMetrics(metrics));
}
