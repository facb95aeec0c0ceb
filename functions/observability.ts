/**
 * Powertools Logger, Metrics and Tracer, one instance each per cold start.
 * POWERTOOLS_* environment variables (service name, log level, namespace, tracing on/off)
 * are honoured as documented by Powertools.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
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
