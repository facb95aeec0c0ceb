/**
 * Where the system runs, resolved once per invocation: local mode from `.local/serve.json` (written by
 * `npm start -- --serve`), or a deployed stack from its CloudFormation outputs with the standard AWS
 * credential chain (environment, profiles, SSO, instance roles).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { TARGET_ROLE_SUFFIX } from '../scripts/compile-iam.js';
import type { Flags } from './args.js';
import { CliError, describeError } from './errors.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const DEFAULT_SERVE_FILE = join(ROOT, '.local/serve.json');
/** The service name in serverless.yml: osls names the stack `<service>-<stage>`. */
export const SERVICE = 'eks-access-grants';

/** What an SDK client accepts as credentials: static keys or a provider. */
export type Credentials = NonNullable<SQSClientConfig['credentials']>;
type AwsCredentialIdentity = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

export type Service =
  | 'eks'
  | 'sqs'
  | 'dynamodb'
  | 'scheduler'
  | 'eventbridge'
  | 'logs'
  | 'cloudwatch'
  | 'sts';

export interface QueueRef {
  /** The queue's name, from its URL. */
  name: string;
  url: string;
  /** Which worker consumes it (or, for a DLQ, whose failures it holds). */
  worker: 'requests' | 'break-glass';
  dlq: boolean;
}

export interface Target {
  mode: 'local' | 'deployed';
  region: string;
  /** Loopback endpoints in local mode; absent: the SDK's default endpoint. */
  endpoints: Partial<Record<Service, string>>;
  /** Credentials for reads; absent: the SDK's default chain. */
  credentials?: Credentials;
  /** The operator identity requests are sent with (C1: the queues accept source `operator` only from it). */
  operatorCredentials(): Promise<Credentials | undefined>;
  /** Who the operator is, for requestedBy. */
  operatorName(): Promise<string>;
  /**
   * Fleet: the read-only role the operator identity assumes in another account the policy names, to read
   * its clusters (`access`, `plan`); the same name in every account (infra/target-account.yml). Absent:
   * the target cannot read other accounts (an old serve file).
   */
  operatorTargetRoleName?: string;
  queues: QueueRef[];
  ledgerTable: string;
  /** Guardrail policy file (JSON locally, YAML or JSON in the repo for a deployed stack). */
  policyPath: string;
  /** Local mode: the audit log (JSON lines). */
  auditLog?: string;
  /** Deployed: the log groups holding the audit records (one `audit <outcome>` line per record). */
  auditLogGroups?: string[];
}

export async function resolveTarget(flags: Flags): Promise<Target> {
  const local = flags.local === true;
  const stage = flags.stage as string | undefined;
  const region = flags.region as string | undefined;
  if (local && (stage !== undefined || region !== undefined || flags.stack !== undefined)) {
    throw new UsageTargetError('--local cannot be combined with --stage, --region or --stack');
  }
  if (!local && flags['serve-file'] !== undefined) throw new UsageTargetError('--serve-file needs --local');
  if (local) return localTarget((flags['serve-file'] as string | undefined) ?? DEFAULT_SERVE_FILE);
  if (stage === undefined || region === undefined) {
    throw new UsageTargetError('say where the system runs: --local, or --stage S --region R');
  }
  if (!/^[A-Za-z0-9-]{1,64}$/.test(stage))
    throw new UsageTargetError(`--stage ${JSON.stringify(stage)} is not a stage name`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new UsageTargetError(`--region ${JSON.stringify(region)} is not an AWS region such as eu-west-1`);
  }
  return deployedTarget(stage, region, (flags.stack as string | undefined) ?? `${SERVICE}-${stage}`);
}

/** A target problem the user fixes with different flags: printed with usage, exit 1. */
export class UsageTargetError extends CliError {}

interface ServeFile {
  region?: unknown;
  eksEndpoint?: unknown;
  sqsEndpoint?: unknown;
  dynamodbEndpoint?: unknown;
  schedulerEndpoint?: unknown;
  eventBridgeEndpoint?: unknown;
  requestQueueUrl?: unknown;
  dlqUrl?: unknown;
  breakGlassQueueUrl?: unknown;
  breakGlassDlqUrl?: unknown;
  auditLog?: unknown;
  operatorCredentials?: { accessKeyId?: unknown; secretAccessKey?: unknown };
  ledgerTable?: unknown;
  policyPath?: unknown;
  stsEndpoint?: unknown;
  operatorTargetRoleName?: unknown;
}

/** Who a local operator request says asked (override with EKS_ACCESS_GRANTS_OPERATOR). */
const LOCAL_OPERATOR = 'arn:aws:sts::000000000000:assumed-role/OperatorRole/local-operator';

/** The credentials every local process used before per-actor identities (infra/local/stack.ts). */
const LOCAL_DEFAULT_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export function localTarget(file: string): Target {
  if (!existsSync(file)) {
    throw new CliError(`${file} does not exist: start local mode first with \`npm start -- --serve\``);
  }
  let info: ServeFile;
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as ServeFile;
  } catch (err) {
    throw new CliError(`${file} is not valid JSON (${describeError(err)}); restart \`npm start -- --serve\``);
  }
  const str = (key: keyof ServeFile, required = true): string | undefined => {
    const v = info[key];
    if (typeof v === 'string' && v !== '') return v;
    if (required)
      throw new CliError(
        `${file}: field ${key} is missing or not a string; restart \`npm start -- --serve\``,
      );
    return undefined;
  };
  const op = info.operatorCredentials;
  const operator =
    op && typeof op.accessKeyId === 'string' && typeof op.secretAccessKey === 'string'
      ? { accessKeyId: op.accessKeyId, secretAccessKey: op.secretAccessKey }
      : undefined;
  const queues: QueueRef[] = [];
  const addQueue = (url: string | undefined, worker: QueueRef['worker'], dlq: boolean) => {
    if (url) queues.push({ name: queueName(url), url, worker, dlq });
  };
  addQueue(str('requestQueueUrl'), 'requests', false);
  addQueue(str('dlqUrl'), 'requests', true);
  addQueue(str('breakGlassQueueUrl', false), 'break-glass', false);
  addQueue(str('breakGlassDlqUrl', false), 'break-glass', true);
  const endpoints: Target['endpoints'] = {
    eks: str('eksEndpoint'),
    sqs: str('sqsEndpoint'),
    dynamodb: str('dynamodbEndpoint'),
  };
  const scheduler = str('schedulerEndpoint', false);
  if (scheduler) endpoints.scheduler = scheduler;
  const eventbridge = str('eventBridgeEndpoint', false);
  if (eventbridge) endpoints.eventbridge = eventbridge;
  const sts = str('stsEndpoint', false);
  if (sts) endpoints.sts = sts;
  const operatorTargetRoleName = str('operatorTargetRoleName', false);
  return {
    mode: 'local',
    region: str('region') as string,
    endpoints,
    // Reads use the operator's key too: every local actor has its own (C3), and the operator is us.
    credentials: operator ?? LOCAL_DEFAULT_CREDENTIALS,
    operatorCredentials: async () => operator ?? LOCAL_DEFAULT_CREDENTIALS,
    // requestedBy must be a canonical identity (functions/core/identity.ts): the local operator session's ARN.
    operatorName: async () => process.env.EKS_ACCESS_GRANTS_OPERATOR ?? LOCAL_OPERATOR,
    ...(operatorTargetRoleName && { operatorTargetRoleName }),
    queues,
    ledgerTable: str('ledgerTable', false) ?? 'grants',
    policyPath: str('policyPath', false) ?? join(dirname(file), 'policy.json'),
    auditLog: str('auditLog') as string,
  };
}

async function deployedTarget(stage: string, region: string, stackName: string): Promise<Target> {
  const cfn = new CloudFormationClient({ region });
  let outputs: Record<string, string>;
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries(
      (out.Stacks?.[0]?.Outputs ?? []).flatMap((o) =>
        o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
  } catch (err) {
    throw new CliError(`cannot read the outputs of stack ${stackName} in ${region}: ${describeError(err)}`, {
      cause: err,
    });
  } finally {
    cfn.destroy();
  }
  const need = (key: string): string => {
    const v = outputs[key];
    if (!v) throw new CliError(`stack ${stackName} has no output ${key}; deploy the current template`);
    return v;
  };
  const queues: QueueRef[] = [];
  const addQueue = (key: string, worker: QueueRef['worker'], dlq: boolean, required: boolean) => {
    const url = required ? need(key) : outputs[key];
    if (url) queues.push({ name: queueName(url), url, worker, dlq });
  };
  addQueue('RequestQueueUrl', 'requests', false, true);
  addQueue('RequestDeadLetterQueueUrl', 'requests', true, true);
  addQueue('BreakGlassQueueUrl', 'break-glass', false, false);
  addQueue('BreakGlassDeadLetterQueueUrl', 'break-glass', true, false);
  const prefix = `${SERVICE}-${stage}`;
  let operator: Promise<{ credentials: AwsCredentialIdentity; name: string }> | undefined;
  // Requests are sent as the operator role (the queues' sender binding accepts source `operator` only
  // from it); the caller's own credentials only need sts:AssumeRole on it.
  const assumeOperator = () => {
    operator ??= (async () => {
      const roleArn = need('OperatorRoleArn');
      const sts = new STSClient({ region });
      try {
        const me = await sts.send(new GetCallerIdentityCommand({}));
        const session = `cli-${(me.Arn ?? 'operator').split('/').pop()}`
          .replace(/[^\w+=,.@-]/g, '-')
          .slice(0, 64);
        const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: session }));
        const c = out.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey)
          throw new CliError(`AssumeRole ${roleArn} returned no credentials`);
        return {
          credentials: {
            accessKeyId: c.AccessKeyId,
            secretAccessKey: c.SecretAccessKey,
            ...(c.SessionToken && { sessionToken: c.SessionToken }),
          },
          name: me.Arn ?? session,
        };
      } catch (err) {
        throw err instanceof CliError
          ? err
          : new CliError(`cannot assume the operator role ${roleArn}: ${describeError(err)}`, { cause: err });
      } finally {
        sts.destroy();
      }
    })();
    return operator;
  };
  return {
    mode: 'deployed',
    region,
    endpoints: {},
    operatorCredentials: async () => (await assumeOperator()).credentials,
    // The caller as STS reports it (an IAM/STS ARN is a canonical identity), unless overridden.
    operatorName: async () => process.env.EKS_ACCESS_GRANTS_OPERATOR ?? (await assumeOperator()).name,
    // The stage's name for it (target-account.ts), as the stack prefix is `<service>-<stage>`.
    operatorTargetRoleName: `${prefix}-${TARGET_ROLE_SUFFIX.operator}`,
    queues,
    ledgerTable: need('LedgerTableName'),
    // What the build ships (infra/scripts/build.ts reads POLICY_FILE too); plan --policy overrides it.
    policyPath: process.env.POLICY_FILE ?? join(ROOT, 'infra/policy.example.yaml'),
    // The audit adapter logs every record before publishing it (functions/adapters/audit-bus.ts).
    auditLogGroups: ['grantWorker', 'breakGlassWorker', 'reconciler'].map(
      (f) => `/aws/lambda/${prefix}-${f}`,
    ),
  };
}

export function queueName(url: string): string {
  return url.replace(/\/+$/, '').split('/').pop() ?? url;
}
