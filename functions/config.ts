/**
 * Environment → typed config, read and validated once per cold start. A bad value
 * fails the cold start with a message naming the variable, instead of failing later
 * on some message.
 */
import { accountOfQueue, type Deployment, partitionOf } from './core/cluster-target.js';
import { ConfigError } from './core/errors.js';
import { parseIsoDuration } from './core/request.js';
import { parseDeadLetterSenders, parseTrustedSenders, type SenderBinding } from './core/senders.js';

export interface WorkerConfig {
  region: string;
  requestQueueUrl: string;
  dlqUrl: string;
  ledgerTable: string;
  auditBusName: string;
  policyPath: string;
  /** Must equal the queue's redrive maxReceiveCount: the last attempt publishes `failed`. */
  maxReceiveCount: number;
  eksMaxAttempts: number;
  /** Base of the growing visibility timeout for retried messages. */
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** Time kept back from the invocation deadline to report and hand back messages. */
  deadlineMarginMs: number;
  /** How long after a grant is recorded EKS may call its principal invalid (IAM propagation). */
  iamPropagationWindowSeconds?: number;
  /** Where expiry schedules are created and what they send to. */
  scheduler: {
    groupName: string;
    roleArn: string;
    queueArn: string;
    /** The `expiring-soon` reminder schedules; absent: none (EXPIRING_SOON_LEAD=PT0S). */
    expiringSoon?: ExpiringSoonConfig;
  };
  /**
   * The name of this worker's target role in every other account the policy names
   * (infra/target-account.yml); required only when the policy has clusters in other accounts.
   */
  targetRoleName?: string;
  /** The AssumeRole session name, seen in the target accounts' CloudTrail (the function's name). */
  sessionName?: string;
  /**
   * Who may send which source (TRUSTED_SENDERS) and whose DLQ writes are ours (DEAD_LETTER_SENDERS).
   * Both required: a worker without them would have to trust every sender or none (fail closed).
   */
  senders: SenderBinding;
}

export interface ExpiringSoonConfig {
  /** As configured (ISO-8601), carried in the event. */
  leadTime: string;
  leadMs: number;
}

/** Longest lead accepted: a reminder more than a day ahead reminds nobody of anything. */
const MAX_LEAD_MS = 86_400_000;

export type Env = Record<string, string | undefined>;

/**
 * The worker's own account and region, the default of every cluster in the policy: the account is
 * read from its request queue's ARN (the stack creates that queue where it runs), so no variable
 * can disagree with it.
 */
export function deploymentOf(config: Pick<WorkerConfig, 'region' | 'scheduler'>): Deployment {
  const account = accountOfQueue(config.scheduler.queueArn);
  if (!account) {
    throw new ConfigError(
      `REQUEST_QUEUE_ARN=${config.scheduler.queueArn} is not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<name>)`,
    );
  }
  return { account, region: config.region };
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  // The sender binding first: a worker without it must say so before anything else (fail closed).
  const senders = {
    trusted: parseTrustedSenders(required(env, 'TRUSTED_SENDERS')),
    deadLetterSenders: parseDeadLetterSenders(required(env, 'DEAD_LETTER_SENDERS')),
  };
  return {
    region: required(env, 'AWS_REGION'),
    requestQueueUrl: required(env, 'REQUEST_QUEUE_URL'),
    dlqUrl: required(env, 'DLQ_URL'),
    ledgerTable: required(env, 'LEDGER_TABLE'),
    auditBusName: required(env, 'AUDIT_BUS_NAME'),
    policyPath: required(env, 'POLICY_PATH'),
    maxReceiveCount: integer(env, 'MAX_RECEIVE_COUNT', 5, 1, 1000),
    eksMaxAttempts: integer(env, 'EKS_MAX_ATTEMPTS', 4, 1, 20),
    retryBaseSeconds: integer(env, 'RETRY_BASE_SECONDS', 10, 0, 43_200),
    retryMaxSeconds: integer(env, 'RETRY_MAX_SECONDS', 900, 0, 43_200),
    deadlineMarginMs: integer(env, 'DEADLINE_MARGIN_MS', 3000, 0, 60_000),
    iamPropagationWindowSeconds: integer(env, 'IAM_PROPAGATION_WINDOW_SECONDS', 120, 0, 3600),
    scheduler: {
      groupName: required(env, 'SCHEDULER_GROUP'),
      roleArn: required(env, 'SCHEDULER_ROLE_ARN'),
      queueArn: required(env, 'REQUEST_QUEUE_ARN'),
      ...expiringSoonOf(env),
    },
    ...optionalText(env, 'TARGET_ROLE_NAME', 'targetRoleName'),
    ...optionalText(env, 'AWS_LAMBDA_FUNCTION_NAME', 'sessionName'),
    senders,
  };
}

/**
 * EXPIRING_SOON_LEAD: how long before a time-boxed grant ends its `expiring-soon` event is published
 * (ISO-8601 duration, default PT15M, at most P1D; PT0S turns the reminders off). The event goes to the
 * audit bus (auditBusArn below), so no second variable can name another bus.
 */
export function expiringSoonOf(env: Env): { expiringSoon?: ExpiringSoonConfig } {
  const raw = env.EXPIRING_SOON_LEAD?.trim() || 'PT15M';
  const leadMs = parseIsoDuration(raw);
  if (leadMs === undefined || leadMs > MAX_LEAD_MS) {
    throw new ConfigError(
      `environment variable EXPIRING_SOON_LEAD=${JSON.stringify(raw)} must be an ISO-8601 duration from PT0S (off) to P1D, such as PT15M`,
    );
  }
  return leadMs === 0 ? {} : { expiringSoon: { leadTime: raw, leadMs } };
}

/** The audit bus's ARN (a Scheduler target needs an ARN), in the deployment's own account and region. */
export function auditBusArn(config: Pick<WorkerConfig, 'auditBusName'>, home: Deployment): string {
  return `arn:${partitionOf(home.region)}:events:${home.region}:${home.account}:event-bus/${config.auditBusName}`;
}

function optionalText<K extends string>(env: Env, name: string, key: K): Partial<Record<K, string>> {
  const v = env[name]?.trim();
  return v ? ({ [key]: v } as Record<K, string>) : {};
}

export function required(env: Env, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new ConfigError(`environment variable ${name} is required and is empty or missing`);
  return v;
}

export function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `environment variable ${name}=${JSON.stringify(raw)} must be an integer from ${min} to ${max}`,
    );
  }
  return n;
}

export interface ReconcilerConfig {
  region: string;
  requestQueueUrl: string;
  /** Break-glass expiries go to the break-glass worker's queue; defaults to the requests queue. */
  breakGlassQueueUrl: string;
  ledgerTable: string;
  auditBusName: string;
  policyPath: string;
  /** Off by default: drift is reported, and only repaired when an operator opts in. */
  repairDrift: boolean;
  concurrency: number;
  eksMaxAttempts: number;
  /** The reconcile queue (FIFO): the scheduled run's fan-out and the tasks' continuations. */
  reconcileQueueUrl: string;
  /**
   * EKS calls per second the reconcile tasks may make in one account-region (every attempt counts).
   * EKS rate limits are per account and region and shared with the workers and anyone else there.
   */
  eksCallsPerSecond: number;
  /** Principals a task reads from the ledger and checkpoints at a time. */
  pageSize: number;
  /** A pass that saved no progress for this long is abandoned by the next scheduled run. */
  staleSeconds: number;
  /** Time a task keeps back from its invocation's deadline to finish in-flight reads, checkpoint and continue. */
  taskMarginMs: number;
  /** Its read-only target role in other accounts the policy names (infra/target-account.yml). */
  targetRoleName?: string;
  sessionName?: string;
  /**
   * Role ids whose reconcile-queue messages the task consumer accepts (RECONCILE_TASK_SENDERS, a JSON
   * list; deployed: the reconciler role's own). Required, as TRUSTED_SENDERS is for the workers: a
   * deployment that forgot it fails its cold start instead of trusting whoever reaches the queue.
   */
  taskSenders: string[];
}

export function loadReconcilerConfig(env: Env = process.env): ReconcilerConfig {
  const requestQueueUrl = required(env, 'REQUEST_QUEUE_URL');
  return {
    region: required(env, 'AWS_REGION'),
    requestQueueUrl,
    breakGlassQueueUrl: env.BREAK_GLASS_QUEUE_URL?.trim() || requestQueueUrl,
    ledgerTable: required(env, 'LEDGER_TABLE'),
    auditBusName: required(env, 'AUDIT_BUS_NAME'),
    policyPath: required(env, 'POLICY_PATH'),
    repairDrift: boolean(env, 'DRIFT_REPAIR', false),
    concurrency: integer(env, 'RECONCILE_CONCURRENCY', 16, 1, 128),
    eksMaxAttempts: integer(env, 'EKS_MAX_ATTEMPTS', 4, 1, 20),
    reconcileQueueUrl: required(env, 'RECONCILE_QUEUE_URL'),
    eksCallsPerSecond: integer(env, 'RECONCILE_EKS_CALLS_PER_SECOND', 20, 1, 10_000),
    pageSize: integer(env, 'RECONCILE_PAGE_SIZE', 100, 1, 1000),
    staleSeconds: integer(env, 'RECONCILE_STALE_SECONDS', 900, 60, 86_400),
    taskMarginMs: integer(env, 'RECONCILE_TASK_MARGIN_MS', 10_000, 0, 120_000),
    ...optionalText(env, 'TARGET_ROLE_NAME', 'targetRoleName'),
    ...optionalText(env, 'AWS_LAMBDA_FUNCTION_NAME', 'sessionName'),
    taskSenders: parseDeadLetterSenders(required(env, 'RECONCILE_TASK_SENDERS'), 'RECONCILE_TASK_SENDERS'),
  };
}

export function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ConfigError(`environment variable ${name}=${JSON.stringify(env[name])} must be true or false`);
}
