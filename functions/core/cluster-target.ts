/**
 * Fleet addressing (issue 13): a cluster is named by its policy alias, which resolves to the EKS
 * cluster `name` in an `account` and `region`. Requests keep naming the alias (`clusterName`); adapters
 * act on the resolved ClusterTarget. Pure: no AWS, no environment.
 *
 * Keys. The ledger, the FIFO group ids and the schedule names are keyed by the physical cluster (not
 * the alias: re-pointing an alias at another cluster must not carry a baseline over), in one form:
 * `clusterKey`. A cluster in the deployment's own account and region keeps today's key, its plain EKS
 * name, so everything the single-account version wrote stays valid without a migration; any other
 * cluster's key is `<account>:<region>:<name>`. EKS names are `[A-Za-z0-9_-]`, so neither `:` nor the
 * ledger's `#` separator can occur in a name and the two forms cannot collide.
 */
import { ConfigError } from './errors.js';
import type { GuardrailPolicy } from './policy.js';

export interface ClusterTarget {
  /** The policy key; what requests and audit records call the cluster (`clusterName`). */
  readonly alias: string;
  /** The EKS cluster name in its account and region. */
  readonly name: string;
  readonly account: string;
  readonly region: string;
}

/** The account and region the deployment itself runs in: the default of every cluster. */
export interface Deployment {
  readonly account: string;
  readonly region: string;
}

export function isHome(target: Pick<ClusterTarget, 'account' | 'region'>, home: Deployment): boolean {
  return target.account === home.account && target.region === home.region;
}

/** The physical cluster's key in the ledger, group ids and schedule names (see the header). */
export function clusterKey(target: ClusterTarget, home: Deployment): string {
  return isHome(target, home) ? target.name : `${target.account}:${target.region}:${target.name}`;
}

/** Whether a cluster key names a cluster outside the deployment's account and region. */
export function isRemoteKey(key: string): boolean {
  return key.includes(':');
}

/** The partition a region belongs to (ARNs, and the STS/EKS endpoints the SDK picks). */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** `arn:aws:eks:<region>:<account>:cluster/<name>`, as EKS reports the cluster's ARN. */
export function clusterArn(target: ClusterTarget): string {
  return `arn:${partitionOf(target.region)}:eks:${target.region}:${target.account}:cluster/${target.name}`;
}

/** The target-role name of one stage, the same in every target account (infra/target-account.yml). */
export function targetRoleName(stackPrefix: string): string {
  return `${stackPrefix}-target`;
}

/**
 * Every cluster of a policy, resolved against the deployment. Built once per cold start; the
 * constructor refuses two aliases of one physical cluster (they would fight over its entries and
 * keep two ledgers of one principal).
 */
export class ClusterDirectory {
  private readonly byAlias = new Map<string, ClusterTarget>();
  private readonly byKey = new Map<string, ClusterTarget>();

  constructor(
    policy: GuardrailPolicy,
    readonly home: Deployment,
  ) {
    const clashes: string[] = [];
    for (const [alias, cluster] of Object.entries(policy.clusters)) {
      const target: ClusterTarget = Object.freeze({
        alias,
        name: cluster.name ?? alias,
        account: cluster.account ?? home.account,
        region: cluster.region ?? home.region,
      });
      const key = clusterKey(target, home);
      const other = this.byKey.get(key);
      if (other)
        clashes.push(`clusters.${alias}: is the same EKS cluster as clusters.${other.alias} (${key})`);
      this.byAlias.set(alias, target);
      this.byKey.set(key, target);
    }
    if (clashes.length > 0) throw new ConfigError(clashes.join('\n'));
  }

  /** The target of an alias, or undefined when the policy does not name it (deny by default). */
  resolve(alias: string): ClusterTarget | undefined {
    return this.byAlias.get(alias);
  }

  /** The target stored under a clusterKey (ledger items, group ids), if the policy still names it. */
  fromKey(key: string): ClusterTarget | undefined {
    return this.byKey.get(key);
  }

  key(target: ClusterTarget): string {
    return clusterKey(target, this.home);
  }

  /**
   * The key of an alias; an alias the policy does not name keeps itself (its request is refused by
   * the policy anyway, and it must still land in some message group).
   */
  keyOf(alias: string): string {
    const target = this.resolve(alias);
    return target ? this.key(target) : alias;
  }

  isHome(target: ClusterTarget): boolean {
    return isHome(target, this.home);
  }

  /** Every cluster, in policy order. */
  targets(): ClusterTarget[] {
    return [...this.byAlias.values()];
  }

  /**
   * Accounts other than the deployment's that the policy names: the only ones whose target role the
   * worker may assume (a forged or buggy target cannot send it into an account nobody configured).
   */
  remoteAccounts(): string[] {
    return [...new Set(this.targets().flatMap((t) => (t.account === this.home.account ? [] : [t.account])))];
  }
}

/**
 * The deployment's own account from its request queue, which the stack creates in that account:
 * `https://sqs.<region>.amazonaws.com/<account>/<name>` or `arn:aws:sqs:<region>:<account>:<name>`.
 * Saves every function an environment variable that could disagree with where it really runs.
 */
export function accountOfQueue(queueUrlOrArn: string): string | undefined {
  return /(?:^arn:[^:]+:sqs:[^:]*:|\/)(\d{12})[:/][^/:]+$/.exec(queueUrlOrArn)?.[1];
}

/**
 * The message-group key of an alias for a producer (an intake, the reconciler, the CLI): the
 * directory's when the deployment is known, else the alias itself (right for every cluster of a
 * single-account policy). Producers and the worker's Scheduler agree, so one principal's messages
 * share a FIFO group whoever sent them.
 */
export function groupKeys(
  policy: GuardrailPolicy,
  region: string | undefined,
  queueUrl: string,
): (alias: string) => string {
  const account = accountOfQueue(queueUrl);
  if (!account || !region) return (alias) => alias;
  const directory = new ClusterDirectory(policy, { account, region });
  return (alias) => directory.keyOf(alias);
}
