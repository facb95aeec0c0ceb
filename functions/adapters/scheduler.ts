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
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { isRemoteKey } from '../core/cluster-target.js';
import { PermanentError, TransientError } from '../core/errors.js';
import { EXPIRING_SOON_DETAIL_TYPE, expiringSoonEvent } from '../core/expiring-soon.js';
import type { Grant } from '../core/ledger.js';
import type { AccessRequest } from '../core/types.js';
import type { ExpiryScheduler } from '../service/grant-service.js';
import { AUDIT_SOURCE } from './audit-bus.js';
import { messageGroupId } from './queue.js';

export interface SchedulerTarget {
  groupName: string;
  /** Role Scheduler assumes to send to the queue. */
  roleArn: string;
  /** The queue the expiry request goes to: the one whose worker made the grant. */
  queueArn: string;
  /**
   * The `expiring-soon` reminders (core/expiring-soon.ts): a second one-time schedule per grant at
   * `expiresAt - leadMs`, whose target is the audit bus itself (Scheduler's templated EventBridge
   * PutEvents target, with the same role). Absent: no reminders.
   */
  expiringSoon?: { leadTime: string; leadMs: number; busArn: string };
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

/** The reminder schedule's name: the expiry schedule's hash with its own prefix. */
export function expiringSoonScheduleName(grantId: string, clusterKey?: string): string {
  return `soon-${scheduleName(grantId, clusterKey).slice('expiry-'.length)}`;
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
    private readonly now: () => Date = () => new Date(),
  ) {}

  async scheduleExpiry(
    request: AccessRequest,
    grant: Grant,
    clusterKey: string = request.clusterName,
  ): Promise<void> {
    if (!grant.expiresAt) return;
    await this.create(this.expirySchedule(request, grant, clusterKey));
    const reminder = this.reminderSchedule(request, grant, clusterKey);
    if (reminder) await this.create(reminder);
  }

  private async create(input: ScheduleInput): Promise<void> {
    try {
      await this.client.send(new CreateScheduleCommand(input));
    } catch (err) {
      // Same name = this grant's schedule already exists (a replay): nothing to do.
      if ((err as Error).name === 'ConflictException') return;
      throw translate('CreateSchedule', err);
    }
  }

  async rescheduleExpiry(
    request: AccessRequest,
    grant: Grant,
    clusterKey: string = request.clusterName,
  ): Promise<void> {
    if (!grant.expiresAt) return;
    await this.upsert(this.expirySchedule(request, grant, clusterKey));
    const reminder = this.reminderSchedule(request, grant, clusterKey);
    // The reminder moves too: it names the new end and fires a lead time before it; one now inside the
    // lead time (an extension by less than it, late) is dropped rather than fired at once with a stale text.
    if (reminder) await this.upsert(reminder);
    else if (this.target.expiringSoon) await this.delete(expiringSoonScheduleName(grant.grantId, clusterKey));
  }

  /** UpdateSchedule replaces every field, so it takes the same full definition as the create. */
  private async upsert(input: ScheduleInput): Promise<void> {
    try {
      await this.client.send(new UpdateScheduleCommand(input));
    } catch (err) {
      // Gone (fired and deleted just now, or never created): create it at the new time instead.
      if ((err as Error).name !== 'ResourceNotFoundException') throw translate('UpdateSchedule', err);
      await this.create(input);
    }
  }

  /**
   * The `expiring-soon` schedule of a grant: at `expiresAt - lead`, to the audit bus. None when reminders
   * are off, or when that moment is already past (the grant is inside its lead time: nothing to remind of
   * that the requester could still act on in time, and a schedule in the past would never fire).
   */
  private reminderSchedule(
    request: AccessRequest,
    grant: Grant,
    clusterKey: string,
  ): ScheduleInput | undefined {
    const soon = this.target.expiringSoon;
    if (!soon || !grant.expiresAt) return undefined;
    const at = Date.parse(grant.expiresAt) - soon.leadMs;
    // at() has whole seconds and rounds up; a reminder due within the next second is as good as past.
    if (at <= this.now().getTime() + 1000) return undefined;
    return {
      Name: expiringSoonScheduleName(grant.grantId, clusterKey),
      GroupName: this.target.groupName,
      ScheduleExpression: atExpression(new Date(at).toISOString()),
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      ActionAfterCompletion: 'DELETE' as const,
      Description:
        `remind: grant ${grant.grantId} of ${request.principalArn} on ${request.clusterName} ends soon`.slice(
          0,
          512,
        ),
      Target: {
        Arn: soon.busArn,
        RoleArn: this.target.roleArn,
        // Scheduler's EventBridge target: Input is the event's detail, Source and DetailType fixed here.
        Input: JSON.stringify(expiringSoonEvent(request, grant, soon.leadTime)),
        EventBridgeParameters: { Source: AUDIT_SOURCE, DetailType: EXPIRING_SOON_DETAIL_TYPE },
      },
    };
  }

  private expirySchedule(request: AccessRequest, grant: Grant, clusterKey: string): ScheduleInput {
    return {
      Name: scheduleName(grant.grantId, clusterKey),
      GroupName: this.target.groupName,
      ScheduleExpression: atExpression(grant.expiresAt as string),
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      ActionAfterCompletion: 'DELETE' as const,
      Description: `expire grant ${grant.grantId} of ${request.principalArn} on ${request.clusterName}`.slice(
        0,
        512,
      ),
      Target: {
        Arn: this.target.queueArn,
        RoleArn: this.target.roleArn,
        Input: JSON.stringify(expiryRequest(request, grant.grantId, clusterKey)),
        SqsParameters: { MessageGroupId: messageGroupId(clusterKey, request.principalArn) },
      },
    };
  }

  async cancelExpiry(grantId: string, clusterKey?: string): Promise<void> {
    await this.delete(scheduleName(grantId, clusterKey));
    // Deleted whether or not reminders are on now: they may have been when the grant was made.
    await this.delete(expiringSoonScheduleName(grantId, clusterKey));
  }

  private async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.target.groupName }));
    } catch (err) {
      if ((err as Error).name === 'ResourceNotFoundException') return;
      throw translate('DeleteSchedule', err);
    }
  }
}

type ScheduleInput = CreateScheduleCommandInput;

function translate(operation: string, err: unknown): Error {
  const e = err as { name?: string; message?: string; $fault?: string };
  const message = `Scheduler ${operation}: ${e?.name}: ${e?.message}`;
  if (e?.name === 'ValidationException' || e?.name === 'AccessDeniedException') {
    return new PermanentError('SCHEDULER_REJECTED', message, { cause: err });
  }
  return new TransientError('SCHEDULER_UNAVAILABLE', message, { cause: err });
}
