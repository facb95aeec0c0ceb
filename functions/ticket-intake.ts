/**
 * Lambda entry point: API Gateway HTTP API (payload v2) routes POST /tickets and POST /break-glass.
 * Thin on purpose: config, clients, the policy and the Jira mapping are built once per cold start; the
 * handler only passes the event to the intake (functions/service/ticket-intake.ts).
 */
import { countMetric, instrumented, logger } from './observability.js';
import { loadPolicyJson } from './service/load-policy.js';
import {
  createTicketIntake,
  defaultTicketIntakeClients,
  loadTicketIntakeConfig,
} from './service/ticket-intake.js';

const config = loadTicketIntakeConfig();
const clients = defaultTicketIntakeClients(config);

const intake = createTicketIntake({
  config,
  policy: loadPolicyJson(config.policyPath),
  clients,
  logger,
  metrics: countMetric,
});

export const handler = instrumented(intake);
