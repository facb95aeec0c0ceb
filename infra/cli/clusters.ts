/**
 * The policy's clusters as the CLI sees them (issue 13): the ledger is keyed by cluster key
 * (core/cluster-target.ts), operators name aliases, and every view says which account and region a
 * cluster is in. The deployment's own account is that of its request queue, as the workers read it.
 */
import type { EksCluster } from '../../functions/adapters/eks.js';
import { TARGET_ROLE_UNAVAILABLE } from '../../functions/adapters/target-clients.js';
import { accountOfQueue, ClusterDirectory, type ClusterTarget } from '../../functions/core/cluster-target.js';
import { AppError } from '../../functions/core/errors.js';
import { loadPolicyFile } from '../policy-file.js';
import type { Context } from './context.js';
import { CliError, describeError } from './errors.js';

const cache = new WeakMap<Context, Promise<ClusterDirectory | undefined>>();

/**
 * Undefined when no queue URL names the deployment's account (hand-made setups): views then show
 * aliases only, and every cluster is addressed as one of the deployment's own, as the workers then do.
 * A policy that cannot be read or is invalid is an error: guessing would address a cluster of another
 * account as a cluster of that name in this one (another cluster's entries under the alias in `access`
 * and `plan`; a `revoke` or `extend` looked up under the wrong ledger key, sent to the wrong queue and
 * message group).
 */
export function clustersOf(ctx: Context): Promise<ClusterDirectory | undefined> {
  let pending = cache.get(ctx);
  if (!pending) {
    pending = (async () => {
      const account = ctx.target.queues.map((q) => accountOfQueue(q.url)).find((a) => a !== undefined);
      if (!account) return undefined;
      const path = ctx.target.policyPath;
      let policy: Awaited<ReturnType<typeof loadPolicyFile>>;
      try {
        policy = await loadPolicyFile(path);
      } catch (err) {
        throw new CliError(
          `cannot read the guardrail policy ${path} (${describeError(err)}): the CLI needs it to find each cluster's account and region (deployed: set POLICY_FILE to the file the stack was built from; locally: restart npm start -- --serve)`,
          { cause: err },
        );
      }
      try {
        return new ClusterDirectory(policy, { account, region: ctx.target.region });
      } catch (err) {
        throw new CliError(`the guardrail policy ${path} is invalid: ${describeError(err)}`, { cause: err });
      }
    })();
    cache.set(ctx, pending);
  }
  return pending;
}

/** Where a cluster is, for tables: `<account>/<region>`; `-` when unknown. */
export function whereText(target: Pick<ClusterTarget, 'account' | 'region'> | undefined): string {
  return target ? `${target.account}/${target.region}` : '-';
}

/** Account and region from a cluster ARN (audit records carry `clusterArn`). */
export function whereOfArn(arn: string | undefined): { account: string; region: string } | undefined {
  const m = /^arn:[^:]+:eks:([^:]+):(\d{12}):cluster\//.exec(arn ?? '');
  return m?.[1] && m[2] ? { region: m[1], account: m[2] } : undefined;
}

/** Where a command acts on a cluster the operator named by its alias. */
export interface Place {
  alias: string;
  /** The resolved cluster, or the plain name when the policy does not know the alias. */
  cluster: EksCluster;
  /** Its key in the ledger (core/cluster-target.ts clusterKey): the alias for a home cluster. */
  key: string;
  target?: ClusterTarget;
  /** The policy's clusters, for an EKS adapter that reaches other account-regions. */
  directory?: ClusterDirectory;
}

/**
 * Resolves an alias as the workers do. An alias the policy does not name (or any alias when no queue
 * URL names the deployment's account, see clustersOf) is taken as an EKS cluster of the deployment's own
 * account and region, keyed by that name, which is what the single-account CLI did.
 */
export async function placeOf(ctx: Context, alias: string): Promise<Place> {
  const directory = await clustersOf(ctx);
  const target = directory?.resolve(alias);
  if (!directory || !target) return { alias, cluster: alias, key: alias };
  return { alias, cluster: target, key: directory.key(target), target, directory };
}

/** `<alias>` or `<alias> (account A, region R)` for a cluster outside the deployment's account-region. */
export function placeText(place: Place): string {
  const t = place.target;
  return t && place.directory && !place.directory.isHome(t)
    ? `${place.alias} (account ${t.account}, region ${t.region})`
    : place.alias;
}

/**
 * Runs EKS reads on a cluster; a target role that cannot be assumed becomes one line saying what to
 * deploy, rather than the workers' advice to redrive (adapters/target-clients.ts).
 */
export async function readingCluster<T>(ctx: Context, place: Place, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AppError && err.code === TARGET_ROLE_UNAVAILABLE) {
      const cause = describeError((err as { cause?: unknown }).cause ?? err);
      throw new CliError(
        `cannot read ${placeText(place)}: the operator target role ${ctx.target.operatorTargetRoleName ?? ''} ` +
          `cannot be assumed there (${cause}). Deploy infra/target-account.yml in account ${place.target?.account} ` +
          "with OperatorRoleArn set to the stage's OperatorRoleArn output",
        { cause: err },
      );
    }
    throw err;
  }
}
