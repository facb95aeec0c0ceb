/**
 * One-time EventBridge Scheduler schedules that put an `expiry` request on the FIFO
 * queue when a time-boxed grant ends.
 *
 * Scheduler facts (DESIGN.md §3): `at(yyyy-mm-ddThh:mm:ss)` has no zone suffix and
 * second precision; `ActionAfterCompletion: DELETE` removes the schedule once fired; an
 * SQS FIFO target needs a MessageGroupId, and Scheduler sends no deduplication id, so
 * the queue must have content-based deduplication.
 */
import { createHash } from 'node:crypto';
import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  type SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { isRemoteKey } from '../core/cluster-target.js';
import { PermanentError, TransientError } from '../core/errors.js';
import type { Grant } from '../core/ledger.js';
import type { AccessRequest } from '../core/types.js';
import type { ExpiryScheduler } from '../service/grant-service.js';
import { messageGroupId } from './queue.js';

export interface SchedulerTarget {
  groupName: string;
  /** Role Scheduler assumes to send to the queue. */
  roleArn: string;
  /** The queue the expiry request goes to: the one whose worker made the grant. */
  queueArn: string;
}

/**
 * Schedule names allow 1-64 of [0-9a-zA-Z-_.]; grant ids allow more, so hash them. A grant on a
 * cluster outside the deployment's account and region hashes its cluster key (account, region,
 * name) in too; one at home keeps today's name, so schedules created before fleets are still
 * found and cancelled by name.
 */
export function scheduleName(grantId: string, clusterKey?: string): string {
  const input = clusterKey !== undefined && isRemoteKey(clusterKey) ? `${clusterKey}\n${grantId}` : grantId;
  return `expiry-${createHash('sha256').update(input).digest('hex').slice(0, 48)}`;
}

/** The expiry request a schedule delivers; deterministic so replays deduplicate. */
export function expiryRequest(
  target: Pick<AccessRequest, 'clusterName' | 'principalArn'>,
  grantId: string,
  clusterKey?: string,
): AccessRequest {
  return {
    schemaVersion: 1,
    requestId: scheduleName(grantId, clusterKey),
    action: 'revoke',
    source: 'expiry',
    clusterName: target.clusterName,
    principalArn: target.principalArn,
    grantId,
  };
}

/** `at()` wants whole seconds; round up so the schedule never fires before the expiry. */
export function atExpression(iso: string): string {
  const ms = Math.ceil(Date.parse(iso) / 1000) * 1000;
  return `at(${new Date(ms).toISOString().slice(0, 19)})`;
}

export class SchedulerAdapter implements ExpiryScheduler {
  constructor(
    private readonly client: SchedulerClient,
    private readonly target: SchedulerTarget,
  ) {}

  async scheduleExpiry(
    request: AccessRequest,
    grant: Grant,
    clusterKey: string = request.clusterName,
  ): Promise<void> {
    if (!grant.expiresAt) return;
    try {
      await this.client.send(
        new CreateScheduleCommand({
          Name: scheduleName(grant.grantId, clusterKey),
          GroupName: this.target.groupName,
          ScheduleExpression: atExpression(grant.expiresAt),
          ScheduleExpressionTimezone: 'UTC',
          FlexibleTimeWindow: { Mode: 'OFF' },
          ActionAfterCompletion: 'DELETE',
          Description:
            `expire grant ${grant.grantId} of ${request.principalArn} on ${request.clusterName}`.slice(
              0,
              512,
            ),
          Target: {
            Arn: this.target.queueArn,
            RoleArn: this.target.roleArn,
            Input: JSON.stringify(expiryRequest(request, grant.grantId, clusterKey)),
            SqsParameters: { MessageGroupId: messageGroupId(clusterKey, request.principalArn) },
          },
        }),
      );
    } catch (err) {
      // Same name = this grant's schedule already exists (a replay): nothing to do.
      if ((err as Error).name === 'ConflictException') return;
      throw translate('CreateSchedule', err);
    }
  }

  async cancelExpiry(grantId: string, clusterKey?: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteScheduleCommand({
          Name: scheduleName(grantId, clusterKey),
          GroupName: this.target.groupName,
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ResourceNotFoundException') return;
      throw translate('DeleteSchedule', err);
    }
  }
}

function translate(operation: string, err: unknown): Error {
  const e = err as { name?: string; message?: string; $fault?: string };
  const message = `Scheduler ${operation}: ${e?.name}: ${e?.message}`;
  if (e?.name === 'ValidationException' || e?.name === 'AccessDeniedException') {
    return new PermanentError('SCHEDULER_REJECTED', message, { cause: err });
  }
  return new TransientError('SCHEDULER_UNAVAILABLE', message, { cause: err });
}
