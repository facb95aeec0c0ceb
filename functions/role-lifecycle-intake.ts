/**
 * Lambda entry point: EventBridge rule on the us-east-1 default bus (CloudTrail IAM calls only reach
 * EventBridge there), `source: aws.iam`, `detail-type: AWS API Call via CloudTrail`, `detail.eventName`
 * CreateRole, TagRole, UntagRole or DeleteRole. Thin on purpose: see functions/service/role-lifecycle.ts.
 * A thrown error fails the invocation, so Lambda's asynchronous retries and on-failure destination apply.
 */

import { validateGuardrailPolicy } from './core/role-mapping-schema.js';
import { countMetric, instrumented, logger } from './observability.js';
import { loadPolicyJson } from './service/load-policy.js';
import {
  createRoleLifecycleIntake,
  defaultRoleLifecycleClients,
  loadRoleLifecycleConfig,
} from './service/role-lifecycle.js';

const config = loadRoleLifecycleConfig();
const clients = defaultRoleLifecycleClients(config);

const intake = createRoleLifecycleIntake({
  config,
  // The only function that reads roleMappings, so the only one that validates them at cold start.
  policy: loadPolicyJson(config.policyPath, validateGuardrailPolicy),
  clients,
  logger,
  metrics: countMetric,
});

export const handler = instrumented(intake);
