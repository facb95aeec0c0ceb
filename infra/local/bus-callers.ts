/**
 * Who calls the local EventBridge, from the access key (infra/local/identities.ts, contract C3): one of this
 * system's functions or actors (then the template role it runs as, so the bus policies of
 * infra/resources/audit.yml apply as deployed), CloudTrail (the AWS service, alone allowed `aws.` sources), or
 * a stranger: any other principal of the account.
 */
import type { BusCaller, IdentifyCaller } from './eventbridge.js';
import { LOCAL_ACCOUNT_ID, LOCAL_IDENTITIES } from './identities.js';

/** The account of local EventBridge events and of the template's roles as local mode names them. */
export const LOCAL_ACCOUNT = LOCAL_ACCOUNT_ID;
/**
 * CloudTrail delivering IAM API calls to the default bus. In AWS no caller can put an `aws.` source; local mode
 * plays CloudTrail with PutEvents under this key, which the local EventBridge takes for the AWS service.
 */
export const CLOUDTRAIL_CREDENTIALS = {
  accessKeyId: 'LOCALCLOUDTRAILDELIVERY',
  secretAccessKey: 'local-cloudtrail-delivery',
};

/** A template role's local ARN, by logical id: the local identity's, for every role that has one. */
export function localRoleArn(logicalId: string): string {
  return (
    Object.values(LOCAL_IDENTITIES).find((i) => i.role === logicalId)?.roleArn ??
    `arn:aws:iam::${LOCAL_ACCOUNT}:role/${logicalId}`
  );
}

export interface BusCallersOptions {
  /** The role ARN an access key acts as; undefined: a stranger. Default: the local identities' table. */
  roleArnOf?: (accessKeyId: string) => string | undefined;
}

export function busCallers(opts: BusCallersOptions = {}): IdentifyCaller {
  const byKey = new Map(Object.values(LOCAL_IDENTITIES).map((i) => [i.accessKeyId, i.roleArn]));
  const roleArnOf = opts.roleArnOf ?? ((key: string) => byKey.get(key));
  return (accessKeyId): BusCaller => {
    if (accessKeyId === CLOUDTRAIL_CREDENTIALS.accessKeyId)
      return { principalArn: 'cloudtrail.amazonaws.com', service: 'cloudtrail.amazonaws.com' };
    const roleArn = accessKeyId === undefined ? undefined : roleArnOf(accessKeyId);
    if (roleArn) return { principalArn: roleArn };
    // Unsigned or unknown: someone else in the account, allowed events:PutEvents by their own identity policy.
    return { principalArn: `arn:aws:iam::${LOCAL_ACCOUNT}:user/stranger-${accessKeyId ?? 'anonymous'}` };
  };
}
