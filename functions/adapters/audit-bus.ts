/**
 * Publishes audit records to an EventBridge bus (users route them to Slack, SIEM, S3)
 * and always to the log, so a record survives a bus outage.
 */
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { AuditRecord } from '../core/audit.js';
import { TransientError } from '../core/errors.js';

export const AUDIT_SOURCE = 'eks-access-grants';
export const AUDIT_DETAIL_TYPE = 'Access Grant Outcome';

export interface AuditLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

export class AuditBusAdapter {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
    private readonly log: AuditLogger,
  ) {}

  /** Throws TransientError when the bus did not take the record (it is in the log either way). */
  async publish(record: AuditRecord): Promise<void> {
    this.log.info(`audit ${record.outcome}`, { audit: record });
    let failure: string | undefined;
    try {
      const out = await this.client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.busName,
              Source: AUDIT_SOURCE,
              DetailType: AUDIT_DETAIL_TYPE,
              Detail: JSON.stringify(record),
              Time: new Date(record.at),
            },
          ],
        }),
      );
      if (out.FailedEntryCount) failure = `${out.Entries?.[0]?.ErrorCode}: ${out.Entries?.[0]?.ErrorMessage}`;
    } catch (err) {
      failure = `${(err as Error).name}: ${(err as Error).message}`;
    }
    if (failure !== undefined) {
      this.log.error('audit record not published to the bus; it is in this log line', {
        audit: record,
        failure,
      });
      throw new TransientError('AUDIT_UNPUBLISHED', `audit bus ${this.busName}: ${failure}`);
    }
  }
}
