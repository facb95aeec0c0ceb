/**
 * The role-lifecycle intake's wiring and use case: a CloudTrail IAM event from EventBridge (CreateRole,
 * TagRole, UntagRole, DeleteRole) → the AccessRequests core/role-mapping.ts plans → the requests queue.
 *
 * Per event: load the role's record, plan, save the record with the planned requests as its outbox
 * (conditional on the version read), send them, clear the outbox. A lost race re-reads and re-plans before
 * anything was sent; a crash after saving leaves the outbox for the retry (or the role's next event) to send.
 * Errors are thrown, so Lambda's asynchronous retries (and the function's on-failure destination) apply.
 *
 * A grant the plan refuses (an untrusted caller, a wildcard namespace) is never sent: it is published as
 * a `rejected` AuditRecord (severity high) on the audit bus before the record is saved, so a crash repeats
 * it (its auditId is deterministic, so consumers deduplicate) rather than losing it.
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { AuditBusAdapter } from '../adapters/audit-bus.js';
import { QueueAdapter } from '../adapters/queue.js';
import { RoleDirectoryAdapter } from '../adapters/role-directory.js';
import { type Env, required } from '../config.js';
import { buildAuditRecord } from '../core/audit.js';
import { groupKeys } from '../core/cluster-target.js';
import { TransientError } from '../core/errors.js';
import type { GuardrailPolicy } from '../core/policy.js';
import {
  type PlanNote,
  parseRoleEvent,
  planRoleEvent,
  type RoleEvent,
  type RoleRecord,
  type RoleRejection,
} from '../core/role-mapping.js';
import type { AccessRequest } from '../core/types.js';
import type { ServiceLogger, ServiceMetrics } from './grant-service.js';

export interface RoleLifecycleConfig {
  region: string;
  requestQueueUrl: string;
  /** Holds the role records (pk ROLE#<account>#<role name>). */
  ledgerTable: string;
  /** Where refused grants are audited. */
  auditBusName: string;
  policyPath: string;
}

export function loadRoleLifecycleConfig(env: Env = process.env): RoleLifecycleConfig {
  return {
    region: required(env, 'AWS_REGION'),
    requestQueueUrl: required(env, 'REQUEST_QUEUE_URL'),
    ledgerTable: required(env, 'LEDGER_TABLE'),
    auditBusName: required(env, 'AUDIT_BUS_NAME'),
    policyPath: required(env, 'POLICY_PATH'),
  };
}

export interface RoleLifecycleClients {
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  eventbridge: EventBridgeClient;
}

export function defaultRoleLifecycleClients(
  config: Pick<RoleLifecycleConfig, 'region'>,
): RoleLifecycleClients {
  return {
    sqs: new SQSClient({ region: config.region }),
    dynamodb: new DynamoDBClient({ region: config.region }),
    eventbridge: new EventBridgeClient({ region: config.region }),
  };
}

export interface RoleLifecycleOptions {
  config: Pick<RoleLifecycleConfig, 'requestQueueUrl' | 'ledgerTable' | 'auditBusName'>;
  policy: GuardrailPolicy;
  /** The deployment's region: with the queue's account, which clusters are home (group ids). */
  region?: string;
  clients: RoleLifecycleClients;
  logger: ServiceLogger;
  metrics?: ServiceMetrics;
  /** Attempts when another invocation changes the same role's record at the same time (default 5). */
  maxAttempts?: number;
  now?: () => Date;
}

export interface RoleIntakeResult {
  outcome: 'ignored' | 'enqueued' | 'nothing' | 'rejected';
  /** What was sent, in order (including an outbox left by an earlier attempt). */
  requests: AccessRequest[];
  /** Grants refused and audited (`rejected`, severity high). */
  rejections: RoleRejection[];
}

export function createRoleLifecycleIntake(options: RoleLifecycleOptions) {
  const { config, policy, logger, metrics } = options;
  const queue = new QueueAdapter(
    options.clients.sqs,
    groupKeys(policy, options.region, config.requestQueueUrl),
  );
  const directory = new RoleDirectoryAdapter(options.clients.dynamodb, config.ledgerTable);
  const audit = new AuditBusAdapter(options.clients.eventbridge, config.auditBusName, logger);
  const now = options.now ?? (() => new Date());

  const reject = async (event: Exclude<RoleEvent, { kind: 'ignored' }>, rejections: RoleRejection[]) => {
    for (const r of rejections) {
      const record = buildAuditRecord(
        {
          requestId: r.requestId,
          outcome: 'rejected',
          attempt: 1,
          at: now(),
          // One record per event and cluster, whichever invocation publishes it.
          attemptKey: `${event.eventId}:${r.code}`,
          request: {
            clusterName: r.clusterName,
            principalArn: r.principalArn,
            source: 'iam-role-created',
            action: 'grant',
            ...(r.requestedBy !== undefined && { requestedBy: r.requestedBy }),
          },
          reason: { code: r.code, message: r.message },
          severity: 'high',
        },
        (text) => createHash('sha256').update(text).digest('hex').slice(0, 32),
      );
      try {
        await audit.publish(record);
      } catch (err) {
        // The record is in the log (the adapter wrote it first); revocations in this event still go out.
        metrics?.count('AuditPublishFailed');
        logger.error('role intake: audit publish failed', { requestId: r.requestId, error: String(err) });
      }
      metrics?.count('RoleGrantsRejected');
    }
  };
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
      return { outcome: 'ignored', requests: [], rejections: [] };
    }
    const ids = { eventName: parsed.eventName, eventId: parsed.eventId, roleName: parsed.roleName };
    const sent: AccessRequest[] = [];
    let audited = false;

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
      if (!plan.record) return finish(sent, []);
      if (!audited) {
        await reject(parsed, plan.rejections);
        audited = true;
      }
      if (plan.requests.length === 0) {
        if (await directory.save({ ...plan.record, pending: [] }, stored?.version)) {
          return finish(sent, plan.rejections);
        }
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
      return finish(sent, plan.rejections);
    }
    throw new TransientError(
      'ROLE_RECORD_CONTENDED',
      `role ${parsed.roleName}: its record kept changing during ${maxAttempts} attempts; Lambda will retry the event`,
    );
  };

  function finish(sent: AccessRequest[], rejections: RoleRejection[]): RoleIntakeResult {
    metrics?.count('RoleRequestsEnqueued', sent.length);
    const outcome = sent.length > 0 ? 'enqueued' : rejections.length > 0 ? 'rejected' : 'nothing';
    return { outcome, requests: sent, rejections };
  }
}

function log(logger: ServiceLogger, note: PlanNote, ids: Record<string, string>): void {
  logger[note.level](note.message, { ...ids, ...note.data });
}
