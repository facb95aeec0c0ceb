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
  INTAKE_ROUTES,
  type IntakeRoute,
  loadTicketIntakeConfig,
} from './service/ticket-intake.js';

// Deployed, this function has no break-glass settings and serves /tickets only. Transitional: local mode
// (infra/local/start.ts) still sends /break-glass here with the break-glass settings in the environment,
// until it runs functions/break-glass-intake.ts as its own handler; then this becomes just ['/tickets'].
const routes: readonly IntakeRoute[] = process.env.BREAK_GLASS_SECRET_PARAM?.trim()
  ? INTAKE_ROUTES
  : ['/tickets'];
const config = loadTicketIntakeConfig(process.env, routes);
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
