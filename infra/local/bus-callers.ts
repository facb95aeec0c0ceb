/**
 * Who calls the local EventBridge, from the access key: one of this system's functions or actors (then the
 * template role it runs as, so the bus policies of infra/resources/audit.yml apply as deployed), CloudTrail
 * (the AWS service, alone allowed `aws.` sources), or a stranger: any other principal of the account.
 */
import type { BusCaller, IdentifyCaller } from './eventbridge.js';

/** The account of local EventBridge events and of the template's roles as local mode names them. */
export const LOCAL_ACCOUNT = '123456789012';
/**
 * CloudTrail delivering IAM API calls to the default bus. In AWS no caller can put an `aws.` source; local mode
 * plays CloudTrail with PutEvents under this key, which the local EventBridge takes for the AWS service.
 */
export const CLOUDTRAIL_CREDENTIALS = {
  accessKeyId: 'LOCALCLOUDTRAILDELIVERY',
  secretAccessKey: 'local-cloudtrail-delivery',
};

/** The template role (logical id) each local function or actor runs as. */
export const ACTOR_ROLES = {
  ticketIntake: 'TicketIntakeRole',
  breakGlassIntake: 'BreakGlassIntakeRole',
  roleLifecycleIntake: 'RoleLifecycleIntakeRole',
  grantWorker: 'GrantWorkerRole',
  breakGlassWorker: 'BreakGlassWorkerRole',
  reconciler: 'ReconcilerRole',
  expiryScheduler: 'ExpirySchedulerRole',
  breakGlassScheduler: 'BreakGlassSchedulerRole',
  operator: 'OperatorRole',
} as const;
export type LocalActor = keyof typeof ACTOR_ROLES;

export const defaultRoleArn = (logicalId: string): string =>
  `arn:aws:iam::${LOCAL_ACCOUNT}:role/${logicalId}`;

export interface BusCallersOptions {
  /** The local actor an access key belongs to; undefined: a stranger. */
  actorOf(accessKeyId: string): LocalActor | undefined;
  roleArn?: (logicalId: string) => string;
}

export function busCallers(opts: BusCallersOptions): IdentifyCaller {
  const roleArn = opts.roleArn ?? defaultRoleArn;
  return (accessKeyId): BusCaller => {
    if (accessKeyId === CLOUDTRAIL_CREDENTIALS.accessKeyId)
      return { principalArn: 'cloudtrail.amazonaws.com', service: 'cloudtrail.amazonaws.com' };
    const actor = accessKeyId === undefined ? undefined : opts.actorOf(accessKeyId);
    if (actor) return { principalArn: roleArn(ACTOR_ROLES[actor]) };
    // Unsigned or unknown: someone else in the account, allowed events:PutEvents by their own identity policy.
    return { principalArn: `arn:aws:iam::${LOCAL_ACCOUNT}:user/stranger-${accessKeyId ?? 'anonymous'}` };
  };
}
