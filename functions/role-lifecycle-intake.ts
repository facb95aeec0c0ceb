/**
 * Lambda entry point: EventBridge rule on the us-east-1 default bus (CloudTrail IAM calls only reach
 * EventBridge there), `source: aws.iam`, `detail-type: AWS API Call via CloudTrail`, `detail.eventName`
 * CreateRole, TagRole, UntagRole or DeleteRole. Thin on purpose: see functions/service/role-lifecycle.ts.
 * A thrown error fails the invocation, so Lambda's asynchronous retries and on-failure destination apply.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { countMetric, logger, metrics, tracer } from './observability.js';
import { loadPolicyJson } from './service/load-policy.js';
import {
  createRoleLifecycleIntake,
  defaultRoleLifecycleClients,
  loadRoleLifecycleConfig,
} from './service/role-lifecycle.js';

const config = loadRoleLifecycleConfig();
const clients = defaultRoleLifecycleClients(config);
for (const client of Object.values(clients)) tracer.captureAWSv3Client(client);

const intake = createRoleLifecycleIntake({
  config,
  policy: loadPolicyJson(config.policyPath),
  clients,
  logger,
  metrics: countMetric,
});

export const handler = middy(intake)
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
