/**
 * Lambda entry point: SQS FIFO consumer of AccessRequest messages. Thin on purpose:
 * config, clients and the policy are built once per cold start; the handler only
 * passes the batch to the worker.
 */

import { loadWorkerConfig } from './config.js';
import { countMetric, instrumented, logger } from './observability.js';
import { loadPolicyJson } from './service/load-policy.js';
import { createWorker, defaultClients } from './service/worker.js';

const config = loadWorkerConfig();
const clients = defaultClients(config);

const worker = createWorker({
  config,
  policy: loadPolicyJson(config.policyPath),
  clients,
  logger,
  metrics: countMetric,
});

export const handler = instrumented(worker);
