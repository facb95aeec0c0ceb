/**
 * Lambda entry point: SQS FIFO consumer of AccessRequest messages. Thin on purpose:
 * config, clients and the policy are built once per cold start; the handler only
 * passes the batch to the worker.
 */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { loadWorkerConfig } from './config.js';
import { countMetric, logger, metrics, tracer } from './observability.js';
import { loadPolicyJson } from './service/load-policy.js';
import { createWorker, defaultClients } from './service/worker.js';

const config = loadWorkerConfig();
const clients = defaultClients(config);
for (const client of Object.values(clients)) tracer.captureAWSv3Client(client);

const worker = createWorker({
  config,
  policy: loadPolicyJson(config.policyPath),
  clients,
  logger,
  metrics: countMetric,
});

export const handler = middy(worker)
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
