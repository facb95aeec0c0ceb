/**
 * Lambda entry point: API Gateway HTTP API (payload v2) route POST /break-glass, and nothing else.
 * Its own function, role and reserved concurrency (serverless.yml): a flood on /tickets cannot take the
 * concurrency an incident needs, and this function can read only the break-glass key and send only to
 * the break-glass queue. The use case is the ticket intake's, given the one route.
 */
import { countMetric, instrumented, logger } from './observability.js';
import { loadPolicyJson } from './service/load-policy.js';
import {
  createTicketIntake,
  defaultTicketIntakeClients,
  loadTicketIntakeConfig,
} from './service/ticket-intake.js';

const config = loadTicketIntakeConfig(process.env, ['/break-glass']);

const intake = createTicketIntake({
  config,
  region: config.region,
  policy: loadPolicyJson(config.policyPath),
  clients: defaultTicketIntakeClients(config),
  logger,
  metrics: countMetric,
});

export const handler = instrumented(intake);
