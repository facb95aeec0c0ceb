/**
 * EKS clients per account-region (issue 13). EKS has no resource-based policies, so the only way into a
 * cluster of another account is a role there: the stage's target role, one fixed name in every target
 * account (infra/target-account.yml), which trusts only this stack's worker roles. Its temporary
 * credentials are cached per account (every region of an account shares them) and renewed before they
 * expire; clients are cached per account-region, since an EKS endpoint and its rate limits are regional.
 * Clusters in the deployment's own account, in any region, use the function's own role.
 *
 * Only accounts the guardrail policy names may be assumed into: a target from anywhere else is refused
 * before any STS call, so no input can send the worker into an account nobody configured.
 */
import { EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, type AssumeRoleCommandOutput, STSClient } from '@aws-sdk/client-sts';
import {
  type ClusterDirectory,
  type ClusterTarget,
  type Deployment,
  partitionOf,
} from '../core/cluster-target.js';
import { ConfigError, PermanentError, TransientError } from '../core/errors.js';

/** What the EKS adapter needs: a client per target, and a way to drop credentials EKS refused. */
export interface EksTargetClients {
  clientFor(target: ClusterTarget): EKSClient;
  /**
   * Forgets the target account's credentials and clients after EKS refused them (the target role was
   * deleted or recreated, which leaves earlier sessions without permissions). True when the next call
   * will present new credentials, so retrying once is worth it.
   */
  renew(target: ClusterTarget): boolean;
}

export interface TargetClientsOptions {
  home: Deployment;
  /** Accounts other than home that the policy names (ClusterDirectory.remoteAccounts). */
  accounts: readonly string[];
  /** The target role's name, the same in every account (TARGET_ROLE_NAME). */
  roleName: string;
  /** Shows in the target account's CloudTrail as the session name (2-64 of [\w+=,.@-]). */
  sessionName: string;
  sts: STSClient;
  /** The function's own client for the home account-region. */
  homeClient: EKSClient;
  /** Makes the client of another account-region; default: the SDK's, with `maxAttempts` retries. */
  newClient?: EksClientFactory;
  eks: { maxAttempts: number };
  /** Seconds the assumed credentials last; 900-3600 (a role-chained session cannot exceed one hour). */
  durationSeconds?: number;
  now?: () => number;
}

/**
 * A new EKS client for a region; `credentials` absent = the function's own. Tests and local mode pass
 * one that points at the loopback endpoint.
 */
export type EksClientFactory = (region: string, credentials?: () => Promise<Credentials>) => EKSClient;

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** The reason code of a target role that cannot be assumed (issue 13); `status` and the CLI look for it. */
export const TARGET_ROLE_UNAVAILABLE = 'TARGET_ROLE_UNAVAILABLE';

/** After renewing an account's credentials, further refusals within this window reuse the renewal. */
const RENEW_COOLDOWN_MS = 10_000;

/** Renew this long before credentials expire, as the SDK's own providers do (5 minutes). */
const REFRESH_MARGIN_MS = 5 * 60_000;

export class TargetClients implements EksTargetClients {
  private readonly credentials = new Map<string, Promise<Credentials>>();
  private readonly clients = new Map<string, EKSClient>();
  /** When each account's credentials were last dropped after EKS refused them. */
  private readonly renewedAt = new Map<string, number>();
  private readonly accounts: ReadonlySet<string>;
  private readonly now: () => number;

  constructor(private readonly opts: TargetClientsOptions) {
    this.accounts = new Set(opts.accounts);
    this.now = opts.now ?? Date.now;
  }

  clientFor(target: ClusterTarget): EKSClient {
    const { home } = this.opts;
    if (target.account === home.account && target.region === home.region) return this.opts.homeClient;
    const key = `${target.account}:${target.region}`;
    let client = this.clients.get(key);
    if (!client) {
      const remote = target.account !== home.account;
      if (remote && !this.accounts.has(target.account)) {
        throw new PermanentError(
          'TARGET_ACCOUNT_NOT_IN_POLICY',
          `cluster ${target.alias} is in account ${target.account}, which the guardrail policy does not name; no role is assumed there`,
        );
      }
      // Home account, another region: the function's own role (its IAM names those clusters too).
      const credentials = remote ? () => this.credentialsOf(target.account) : undefined;
      client = this.opts.newClient
        ? this.opts.newClient(target.region, credentials)
        : new EKSClient({
            region: target.region,
            maxAttempts: this.opts.eks.maxAttempts,
            retryMode: 'standard',
            ...(credentials && { credentials }),
          });
      this.clients.set(key, client);
    }
    return client;
  }

  renew(target: ClusterTarget): boolean {
    if (target.account === this.opts.home.account) return false;
    // Calls in flight with the dead session are refused one after another: the first renews, and the
    // rest within the cool-down retry on that renewal instead of each assuming the role again. A role
    // that refuses every session (say, it lacks a permission) so costs one AssumeRole per cool-down,
    // not one per principal.
    const last = this.renewedAt.get(target.account);
    if (last !== undefined && this.now() - last < RENEW_COOLDOWN_MS) return true;
    this.renewedAt.set(target.account, this.now());
    this.credentials.delete(target.account);
    // The SDK memoizes credentials inside each client until they expire: a new client asks again.
    for (const key of [...this.clients.keys()]) {
      if (key.startsWith(`${target.account}:`)) this.clients.delete(key);
    }
    return true;
  }

  /** The target role's ARN in an account; the partition is the deployment's. */
  roleArn(account: string): string {
    return `arn:${partitionOf(this.opts.home.region)}:iam::${account}:role/${this.opts.roleName}`;
  }

  private credentialsOf(account: string): Promise<Credentials> {
    const cached = this.credentials.get(account);
    if (cached) {
      return cached.then((c) =>
        c.expiration.getTime() - this.now() > REFRESH_MARGIN_MS ? c : this.assume(account),
      );
    }
    return this.assume(account);
  }

  private assume(account: string): Promise<Credentials> {
    const pending = this.assumeOnce(account);
    this.credentials.set(account, pending);
    // A failure is not cached: the next message asks STS again (the role may have been deployed since).
    pending.catch(() => {
      if (this.credentials.get(account) === pending) this.credentials.delete(account);
    });
    return pending;
  }

  private async assumeOnce(account: string): Promise<Credentials> {
    const roleArn = this.roleArn(account);
    let out: AssumeRoleCommandOutput;
    try {
      out = await this.opts.sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: this.opts.sessionName,
          DurationSeconds: this.opts.durationSeconds ?? 3600,
        }),
      );
    } catch (err) {
      throw translateStsError(roleArn, err);
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date)) {
      throw new TransientError('STS_UNAVAILABLE', `AssumeRole ${roleArn}: the answer held no credentials`);
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
    };
  }
}

/** The throttling codes of the SDK's retry classification that STS may answer (query protocol, HTTP 400). */
const STS_THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'PriorRequestNotComplete',
]);

/** STS errors about the caller's own credentials rather than the role asked for. */
const CALLER_CREDENTIALS_REFUSED = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'UnrecognizedClientException',
]);

/**
 * STS answers AccessDenied both for a role that does not exist and for one whose trust policy does not
 * name the caller (STS API reference, AssumeRole errors). Neither heals by itself within a message's
 * retries: the message is dead-lettered at once with TARGET_ROLE_UNAVAILABLE and redriven once the
 * StackSet has deployed the role (README, "Fleet"). Throttling and 5xx the STS client already retried.
 */
export function translateStsError(roleArn: string, err: unknown): Error {
  const e = err as {
    name?: string;
    message?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const message = `AssumeRole ${roleArn}: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
  const status = e?.$metadata?.httpStatusCode;
  // The caller's own credentials were refused (expired, unknown or mis-signed; AWS common errors, and
  // botocore's STS model: ExpiredTokenException 400), not the target role: saying "deploy the role"
  // would send the operator the wrong way. Retried through the queue like an outage; a worker whose
  // credentials stay refused dead-letters with this message after maxReceiveCount.
  if (CALLER_CREDENTIALS_REFUSED.has(e?.name ?? '')) {
    return new TransientError(
      'STS_CALLER_CREDENTIALS_REFUSED',
      `${message} (the caller's own credentials were refused, not the target role)`,
      { cause: err },
    );
  }
  if (e?.name === 'AccessDenied' || e?.name === 'AccessDeniedException' || status === 403) {
    return new PermanentError(
      TARGET_ROLE_UNAVAILABLE,
      `${message}. Deploy infra/target-account.yml in that account (it trusts this stage's worker roles), then redrive the message`,
      { cause: err },
    );
  }
  // STS throttles with HTTP 400 and the code `Throttling` (a client fault in the SDK's terms), which the
  // SDK retried: still transient, or a burst of AssumeRole calls would dead-letter requests as if the
  // role were missing.
  if (
    STS_THROTTLING.has(e?.name ?? '') ||
    (e as { $retryable?: { throttling?: boolean } })?.$retryable?.throttling
  ) {
    return new TransientError('STS_UNAVAILABLE', message, { cause: err });
  }
  if (e?.$fault === 'client' && status !== 429) {
    return new PermanentError(TARGET_ROLE_UNAVAILABLE, message, { cause: err });
  }
  return new TransientError('STS_UNAVAILABLE', message, { cause: err });
}

/**
 * The EKS clients of the policy's other account-regions (adapters/target-clients.ts); undefined when
 * every cluster is in the deployment's own account and region.
 */
export function targetClientsFor(
  config: { eksMaxAttempts: number; targetRoleName?: string; sessionName?: string },
  clusters: ClusterDirectory,
  homeClient: EKSClient,
  sts: STSClient | undefined,
  newClient?: EksClientFactory,
): TargetClients | undefined {
  if (clusters.targets().every((t) => clusters.isHome(t))) return undefined;
  const accounts = clusters.remoteAccounts();
  if (accounts.length > 0 && (!config.targetRoleName || !sts)) {
    throw new ConfigError(
      `the guardrail policy has clusters in accounts ${accounts.join(', ')}: set TARGET_ROLE_NAME to the target role deployed there (infra/target-account.yml)`,
    );
  }
  return new TargetClients({
    home: clusters.home,
    accounts,
    roleName: config.targetRoleName ?? '',
    // RoleSessionName: 2-64 of [\w+=,.@-] (STS API reference); a function name fits.
    sessionName: (config.sessionName ?? 'eks-access-grants').replace(/[^\w+=,.@-]/g, '-').slice(0, 64),
    sts: sts ?? new STSClient({}),
    homeClient,
    ...(newClient && { newClient }),
    eks: { maxAttempts: config.eksMaxAttempts },
  });
}
