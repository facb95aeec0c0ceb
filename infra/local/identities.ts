// Local identities (contract C3): every local function and actor has its own access key, as every Lambda
// function, Scheduler role and operator session has its own credentials in AWS. The local SQS stamps a message's
// SenderId from the key that signed the SendMessage (infra/local/sqs.ts), and the workers' TRUSTED_SENDERS are
// computed from the template's own routing (serverless.yml), with these role ids in place of Fn::GetAtt RoleId.
// Keys here are not secrets (the emulators do not check signatures): they model who is who, not access control.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  parseDeadLetterSenders,
  parseTrustedSenders,
  type SenderBinding,
} from '../../functions/core/senders.js';
import type { Source } from '../../functions/core/types.js';

/** The account local-aws-sqs puts in queue ARNs; the local roles live in it too. */
export const LOCAL_ACCOUNT_ID = '123456789012';

export const ACTORS = [
  'ticketIntake',
  'breakGlassIntake',
  'roleLifecycleIntake',
  'grantWorker',
  'breakGlassWorker',
  'reconciler',
  'expiryScheduler',
  'breakGlassScheduler',
  'operator',
] as const;
export type Actor = (typeof ACTORS)[number];

export interface LocalIdentity {
  actor: Actor;
  /** The template's IAM role (logical id) this actor runs as. */
  role: string;
  roleArn: string;
  /** Like an IAM role id (AROA + 17 characters): what Fn::GetAtt <role>.RoleId yields. */
  roleId: string;
  /** The STS session name: Lambda names a function's session after the function. */
  session: string;
  /** What SQS stamps for this actor: `<role id>:<session>`, as for any assumed role. */
  senderId: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The one declarative table: actor → [template role, short code for its ids, session name]. */
const TABLE: Record<Actor, [role: string, code: string, session: string]> = {
  ticketIntake: ['TicketIntakeRole', 'TICKETINTAKE', 'eks-access-grants-local-ticketIntake'],
  breakGlassIntake: ['BreakGlassIntakeRole', 'BGINTAKE', 'eks-access-grants-local-breakGlassIntake'],
  roleLifecycleIntake: [
    'RoleLifecycleIntakeRole',
    'ROLEINTAKE',
    'eks-access-grants-local-roleLifecycleIntake',
  ],
  grantWorker: ['GrantWorkerRole', 'GRANTWORKER', 'eks-access-grants-local-grantWorker'],
  breakGlassWorker: ['BreakGlassWorkerRole', 'BGWORKER', 'eks-access-grants-local-breakGlassWorker'],
  reconciler: ['ReconcilerRole', 'RECONCILER', 'eks-access-grants-local-reconciler'],
  expiryScheduler: ['ExpirySchedulerRole', 'EXPIRYSCHED', 'scheduler'],
  breakGlassScheduler: ['BreakGlassSchedulerRole', 'BGSCHED', 'scheduler'],
  operator: ['OperatorRole', 'OPERATOR', 'local-operator'],
};

export const LOCAL_IDENTITIES: Readonly<Record<Actor, LocalIdentity>> = Object.fromEntries(
  ACTORS.map((actor) => {
    const [role, code, session] = TABLE[actor];
    const roleId = `AROA${`LOCAL${code}`.padEnd(17, '0')}`;
    return [
      actor,
      {
        actor,
        role,
        roleArn: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/${role}`,
        roleId,
        session,
        senderId: `${roleId}:${session}`,
        accessKeyId: `AKIA${code.padEnd(16, '0')}`,
        secretAccessKey: `local-${actor}-secret`,
      },
    ];
  }),
) as Record<Actor, LocalIdentity>;

/** Static credentials for an SDK client acting as `actor`. */
export function credentialsOf(actor: Actor): { accessKeyId: string; secretAccessKey: string } {
  const { accessKeyId, secretAccessKey } = LOCAL_IDENTITIES[actor];
  return { accessKeyId, secretAccessKey };
}

/** The SDK's environment variables for a function running as `actor` (what Lambda puts in its env). */
export function credentialEnv(actor: Actor): Record<string, string> {
  const c = credentialsOf(actor);
  return { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey };
}

const BY_KEY = new Map(Object.values(LOCAL_IDENTITIES).map((i) => [i.accessKeyId, i]));
const BY_ROLE_ARN = new Map(Object.values(LOCAL_IDENTITIES).map((i) => [i.roleArn, i]));

export function identityOfKey(accessKeyId: string | undefined): LocalIdentity | undefined {
  return accessKeyId === undefined ? undefined : BY_KEY.get(accessKeyId);
}

/**
 * The access key id of a SigV4-signed request, from its Authorization header
 * (`AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, SignedHeaders=…, Signature=…`):
 * how an emulator tells who is calling, as AWS does from the signature's credential scope.
 */
export function accessKeyIdOf(authorization: string | undefined): string | undefined {
  const m = /Credential=([^/,\s]+)\//.exec(authorization ?? '');
  return m?.[1];
}

/** The actor whose role this is (Scheduler assumes a schedule's Target.RoleArn to send). */
export function identityOfRoleArn(roleArn: string): LocalIdentity | undefined {
  return BY_ROLE_ARN.get(roleArn);
}

/**
 * What SQS would stamp for a caller: a known key's `<role id>:<session>`, else a stranger, an IAM user id
 * (AIDA…) derived from the key so one stranger is always the same stranger. No key at all: anonymous.
 */
export function senderIdForKey(accessKeyId: string | undefined): string {
  const known = identityOfKey(accessKeyId);
  if (known) return known.senderId;
  const digest = createHash('sha256')
    .update(accessKeyId ?? 'anonymous')
    .digest('hex')
    .toUpperCase();
  return `AIDA${digest.slice(0, 17)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Routing: the template's TRUSTED_SENDERS / DEAD_LETTER_SENDERS, read from serverless.yml.
// ---------------------------------------------------------------------------------------------------------

export type WorkerName = 'grantWorker' | 'breakGlassWorker';

const TEMPLATE = join(import.meta.dirname, '../../serverless.yml');

export interface LocalSenderRouting {
  /** The worker's environment, as the template sets it, with local role ids. */
  env: { TRUSTED_SENDERS: string; DEAD_LETTER_SENDERS: string };
  binding: SenderBinding;
  /** Source → the actors trusted to send it, in the template's order. */
  senders: Partial<Record<Source, Actor[]>>;
}

let templateEnv: Record<WorkerName, Record<string, unknown>> | undefined;

/** The worker's sender routing as the template declares it (one source of truth for AWS and local). */
export function localSenderRouting(worker: WorkerName): LocalSenderRouting {
  templateEnv ??= readTemplateEnv();
  const env = templateEnv[worker];
  const sub = (name: string): string => {
    const raw = env[name];
    if (typeof raw !== 'string')
      throw new Error(`serverless.yml: functions.${worker}.environment.${name} is not a !Sub string`);
    return raw.replace(/\$\{(\w+)\.RoleId\}/g, (_, role: string) => {
      const identity = Object.values(LOCAL_IDENTITIES).find((i) => i.role === role);
      if (!identity) throw new Error(`serverless.yml: ${worker} trusts ${role}, which has no local identity`);
      return identity.roleId;
    });
  };
  const TRUSTED_SENDERS = sub('TRUSTED_SENDERS');
  const DEAD_LETTER_SENDERS = sub('DEAD_LETTER_SENDERS');
  const trusted = parseTrustedSenders(TRUSTED_SENDERS);
  const byRoleId = new Map(Object.values(LOCAL_IDENTITIES).map((i) => [i.roleId, i.actor]));
  const senders: Partial<Record<Source, Actor[]>> = {};
  for (const [source, ids] of Object.entries(trusted) as [Source, string[]][]) {
    senders[source] = ids.flatMap((id) => byRoleId.get(id) ?? []);
  }
  return {
    env: { TRUSTED_SENDERS, DEAD_LETTER_SENDERS },
    binding: { trusted, deadLetterSenders: parseDeadLetterSenders(DEAD_LETTER_SENDERS) },
    senders,
  };
}

/** The actor that legitimately sends `source` to `worker`'s queue (the first the template names). */
export function senderOf(worker: WorkerName, source: Source): Actor | undefined {
  return localSenderRouting(worker).senders[source]?.[0];
}

function readTemplateEnv(): Record<WorkerName, Record<string, unknown>> {
  // Unknown tags (!Sub, !Ref, !GetAtt) leave their scalar as the plain string, which is what we read.
  const doc = parse(readFileSync(TEMPLATE, 'utf8'), { logLevel: 'error', merge: true }) as {
    functions?: Record<string, { environment?: Record<string, unknown> }>;
  };
  const envOf = (name: WorkerName) => {
    const env = doc.functions?.[name]?.environment;
    if (!env) throw new Error(`serverless.yml has no functions.${name}.environment`);
    return env;
  };
  return { grantWorker: envOf('grantWorker'), breakGlassWorker: envOf('breakGlassWorker') };
}
