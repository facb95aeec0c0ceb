/** SDK clients for a target, created on first use and destroyed when the command ends. */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { EksAdapter } from '../../functions/adapters/eks.js';
import { LedgerAdapter } from '../../functions/adapters/ledger.js';
import type { Credentials, Service, Target } from './target.js';

export class Clients {
  private readonly made: { destroy(): void }[] = [];
  private cache = new Map<string, unknown>();

  constructor(readonly target: Target) {}

  private config(service: Service, credentials?: Credentials) {
    const endpoint = this.target.endpoints[service];
    const creds = credentials ?? this.target.credentials;
    return {
      region: this.target.region,
      ...(endpoint && { endpoint }),
      ...(creds && { credentials: creds }),
      // The SDK's standard retries (throttling, 5xx) with a few more attempts: a 3,000-entry listing
      // makes thousands of calls and should not die on one throttle.
      maxAttempts: 6,
    };
  }

  private once<T extends { destroy(): void }>(key: string, make: () => T): T {
    let c = this.cache.get(key) as T | undefined;
    if (!c) {
      c = make();
      this.cache.set(key, c);
      this.made.push(c);
    }
    return c;
  }

  eks(): EKSClient {
    return this.once('eks', () => new EKSClient(this.config('eks')));
  }
  sqs(): SQSClient {
    return this.once('sqs', () => new SQSClient(this.config('sqs')));
  }
  /** SQS as the operator identity: what the queues' sender binding sees (C1). */
  async operatorSqs(): Promise<SQSClient> {
    const creds = await this.target.operatorCredentials();
    return this.once('sqs-operator', () => new SQSClient(this.config('sqs', creds)));
  }
  dynamodb(): DynamoDBClient {
    return this.once('dynamodb', () => new DynamoDBClient(this.config('dynamodb')));
  }
  scheduler(): SchedulerClient {
    return this.once('scheduler', () => new SchedulerClient(this.config('scheduler')));
  }
  logs(): CloudWatchLogsClient {
    return this.once('logs', () => new CloudWatchLogsClient(this.config('logs')));
  }
  cloudwatch(): CloudWatchClient {
    return this.once('cloudwatch', () => new CloudWatchClient(this.config('cloudwatch')));
  }
  ledger(): LedgerAdapter {
    return this.once('ledger', () =>
      Object.assign(new LedgerAdapter(this.dynamodb(), this.target.ledgerTable), { destroy() {} }),
    );
  }
  eksAdapter(): EksAdapter {
    return this.once('eksAdapter', () => Object.assign(new EksAdapter(this.eks()), { destroy() {} }));
  }

  destroy(): void {
    for (const c of this.made.splice(0)) c.destroy();
    this.cache.clear();
  }
}
