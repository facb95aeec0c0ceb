/**
 * The role-lifecycle intake's wiring and use case: a CloudTrail IAM event from EventBridge (CreateRole,
 * TagRole, UntagRole, DeleteRole) → the AccessRequests core/role-mapping.ts plans → the requests queue.
 *
 * Per event: load the role's record, plan, save the record with the planned requests as its outbox
 * (conditional on the version read), send them, clear the outbox. A lost race re-reads and re-plans before
 * anything was sent; a crash after saving leaves the outbox for the retry (or the role's next event) to send.
 * Errors are thrown, so Lambda's asynchronous retries (and the function's on-failure destination) apply.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { QueueAdapter } from '../adapters/queue.js';
import { RoleDirectoryAdapter } from '../adapters/role-directory.js';
import { type Env, required } from '../config.js';
import { TransientError } from '../core/errors.js';
import type { GuardrailPolicy } from '../core/policy.js';
import { type PlanNote, parseRoleEvent, planRoleEvent, type RoleRecord } from '../core/role-mapping.js';
import type { AccessRequest } from '../core/types.js';
import type { ServiceLogger, ServiceMetrics } from './grant-service.js';

export interface RoleLifecycleConfig {
  region: string;
  requestQueueUrl: string;
  /** Holds the role records (pk ROLE#<account>#<role name>). */
  ledgerTable: string;
  policyPath: string;
}

export function loadRoleLifecycleConfig(env: Env = process.env): RoleLifecycleConfig {
  return {
    region: required(env, 'AWS_REGION'),
    requestQueueUrl: required(env, 'REQUEST_QUEUE_URL'),
    ledgerTable: required(env, 'LEDGER_TABLE'),
    policyPath: required(env, 'POLICY_PATH'),
  };
}

export interface RoleLifecycleClients {
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
}

export function defaultRoleLifecycleClients(
  config: Pick<RoleLifecycleConfig, 'region'>,
): RoleLifecycleClients {
  return {
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
  };
}

export interface RoleLifecycleOptions {
  config: Pick<RoleLifecycleConfig, 'requestQueueUrl' | 'ledgerTable'>;
  policy: GuardrailPolicy;
  clients: RoleLifecycleClients;
  logger: ServiceLogger;
  metrics?: ServiceMetrics;
  /** Attempts when another invocation changes the same role's record at the same time (default 5). */
  maxAttempts?: number;
}

export interface RoleIntakeResult {
  outcome: 'ignored' | 'enqueued' | 'nothing';
  /** What was sent, in order (including an outbox left by an earlier attempt). */
  requests: AccessRequest[];
}

export function createRoleLifecycleIntake(options: RoleLifecycleOptions) {
  const { config, policy, logger, metrics } = options;
  const queue = new QueueAdapter(options.clients.sqs);
  const directory = new RoleDirectoryAdapter(options.clients.dynamodb, config.ledgerTable);
  const maxAttempts = options.maxAttempts ?? 5;

  const send = async (requests: readonly AccessRequest[], sent: AccessRequest[]) => {
    for (const request of requests) {
      await queue.enqueue(config.requestQueueUrl, request);
      sent.push(request);
    }
  };

  return async function handler(event: unknown): Promise<RoleIntakeResult> {
    const parsed = parseRoleEvent(event);
    if (parsed.kind === 'ignored') {
      const { why, kind: _kind, ...ids } = parsed;
      logger.info(`ignoring CloudTrail event: ${why}`, ids);
      metrics?.count('RoleEventsIgnored');
      return { outcome: 'ignored', requests: [] };
    }
    const ids = { eventName: parsed.eventName, eventId: parsed.eventId, roleName: parsed.roleName };
    const sent: AccessRequest[] = [];

    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let stored = await directory.load(parsed.account, parsed.roleName);
      if (stored?.record.pending?.length) {
        // An earlier invocation saved these and may not have sent them; they are idempotent, so send again.
        logger.info('sending requests an earlier invocation left in the role outbox', {
          ...ids,
          requestIds: stored.record.pending.map((r) => r.requestId),
        });
        await send(stored.record.pending, sent);
        const flushed: RoleRecord = { ...stored.record, pending: [] };
        if (!(await directory.save(flushed, stored.version))) continue;
        stored = { record: flushed, version: stored.version + 1 };
      }

      const plan = planRoleEvent(policy, parsed, stored?.record);
      for (const note of plan.notes) log(logger, note, ids);
      if (!plan.record) return finish(sent);
      if (plan.requests.length === 0) {
        if (await directory.save({ ...plan.record, pending: [] }, stored?.version)) return finish(sent);
        continue;
      }
      const withOutbox: RoleRecord = { ...plan.record, pending: plan.requests };
      if (!(await directory.save(withOutbox, stored?.version))) {
        logger.info('the role record changed concurrently; planning again', { ...ids, attempt });
        continue;
      }
      await send(plan.requests, sent);
      const version = (stored?.version ?? 0) + 1;
      // If this loses a race, the winner has seen the outbox and sent it again; nothing is lost either way.
      await directory.save({ ...plan.record, pending: [] }, version);
      for (const r of plan.requests) {
        logger.info('role lifecycle request enqueued', {
          ...ids,
          requestId: r.requestId,
          action: r.action,
          clusterName: r.clusterName,
          principalArn: r.principalArn,
          ...(r.accessPolicies && { accessPolicies: r.accessPolicies }),
          ...(r.grantId && { grantId: r.grantId }),
          ...(r.principalRecreated && { principalRecreated: true }),
        });
      }
      return finish(sent);
    }
    throw new TransientError(
      'ROLE_RECORD_CONTENDED',
      `role ${parsed.roleName}: its record kept changing during ${maxAttempts} attempts; Lambda will retry the event`,
    );
  };

  function finish(sent: AccessRequest[]): RoleIntakeResult {
    metrics?.count('RoleRequestsEnqueued', sent.length);
    return { outcome: sent.length > 0 ? 'enqueued' : 'nothing', requests: sent };
  }
}

function log(logger: ServiceLogger, note: PlanNote, ids: Record<string, string>): void {
  logger[note.level](note.message, { ...ids, ...note.data });
}
