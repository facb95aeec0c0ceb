/** SDK clients for a target, created on first use and destroyed when the command ends. */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EKSClient } from '@aws-sdk/client-eks';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { EksAdapter } from '../../functions/adapters/eks.js';
import { LedgerAdapter } from '../../functions/adapters/ledger.js';
import { type TargetClients, targetClientsFor } from '../../functions/adapters/target-clients.js';
import type { ClusterDirectory } from '../../functions/core/cluster-target.js';
import { CliError } from './errors.js';
import type { Credentials, Service, Target } from './target.js';

export class Clients {
  private readonly made: { destroy(): void }[] = [];
  private cache = new Map<string, unknown>();

  constructor(readonly target: Target) {}

  private config(service: Service, credentials?: Credentials, region = this.target.region) {
    const endpoint = this.target.endpoints[service];
    const creds = credentials ?? this.target.credentials;
    return {
      region,
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
  /**
   * EKS reads on every cluster of the policy: the deployment's own account-region with the CLI's own
   * credentials, another region of it likewise, and another account through the stage's read-only
   * operator target role there, assumed as the operator identity (OperatorRole deployed, the operator's
   * key locally). The workers' own per-account machinery (adapters/target-clients.ts): credentials
   * cached per account, a client per account-region, and an AccessDenied from STS typed as
   * TARGET_ROLE_UNAVAILABLE.
   */
  eksAdapter(clusters?: ClusterDirectory): EksAdapter {
    const targets = clusters ? this.targetClients(clusters) : undefined;
    return this.once(`eksAdapter${targets ? ':fleet' : ''}`, () =>
      Object.assign(new EksAdapter(this.eks(), undefined, targets), { destroy() {} }),
    );
  }

  /** Undefined when every cluster of the policy is in the deployment's account and region. */
  targetClients(clusters: ClusterDirectory): TargetClients | undefined {
    if (!this.cache.has('targets')) {
      const needsRole = clusters.remoteAccounts().length > 0;
      const roleName = this.target.operatorTargetRoleName;
      if (needsRole && !roleName) {
        throw new CliError(
          'the guardrail policy has clusters in other accounts, but the serve file names no operatorTargetRoleName: restart `npm start -- --serve`',
        );
      }
      // AssumeRole as the operator: the target role trusts only the stage's OperatorRole.
      const sts = needsRole
        ? this.track(
            new STSClient({
              ...this.config('sts', async () => {
                const creds = await this.target.operatorCredentials();
                if (!creds) throw new CliError('no operator credentials to assume the target role with');
                return typeof creds === 'function' ? creds() : creds;
              }),
            }),
          )
        : undefined;
      this.cache.set(
        'targets',
        targetClientsFor(
          {
            eksMaxAttempts: 6,
            ...(roleName && { targetRoleName: roleName }),
            sessionName: 'eks-access-grants-cli',
          },
          clusters,
          this.eks(),
          sts,
          (region, credentials) =>
            this.track(new EKSClient(this.config('eks', credentials ?? this.target.credentials, region))),
        ),
      );
    }
    return this.cache.get('targets') as TargetClients | undefined;
  }

  private track<T extends { destroy(): void }>(client: T): T {
    this.made.push(client);
    return client;
  }

  destroy(): void {
    for (const c of this.made.splice(0)) c.destroy();
    this.cache.clear();
  }
}
