/**
 * Lambda entry point: API Gateway HTTP API (payload v2) route POST /tickets. POST /break-glass is its
 * own function (functions/break-glass-intake.ts) with its own role and reserved concurrency.
 * Thin on purpose: config, clients, the policy and the Jira mapping are built once per cold start; the
 * handler only passes the event to the intake (functions/service/ticket-intake.ts).
 */
import { countMetric, instrumented, logger } from './observability.js';
import { loadJiraPayload } from './service/jira-payload.js';
import { loadPolicyJson } from './service/load-policy.js';
import {
  createTicketIntake,
  defaultTicketIntakeClients,
  loadTicketIntakeConfig,
} from './service/ticket-intake.js';

// /tickets only, whatever the environment holds: the break-glass route is its own function, role and key.
const config = loadTicketIntakeConfig(process.env, ['/tickets']);
const clients = defaultTicketIntakeClients(config);

const intake = createTicketIntake({
  config,
  region: config.region,
  policy: loadPolicyJson(config.policyPath),
  jira: loadJiraPayload(process.env),
  clients,
  logger,
  metrics: countMetric,
});

export const handler = instrumented(intake);
