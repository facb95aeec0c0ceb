/**
 * The policy's clusters as the CLI sees them (issue 13): the ledger is keyed by cluster key
 * (core/cluster-target.ts), operators name aliases, and every view says which account and region a
 * cluster is in. The deployment's own account is that of its request queue, as the workers read it.
 */
import { accountOfQueue, ClusterDirectory, type ClusterTarget } from '../../functions/core/cluster-target.js';
import { loadPolicyFile } from '../policy-file.js';
import type { Context } from './context.js';
import { CliError } from './errors.js';

const cache = new WeakMap<Context, Promise<ClusterDirectory | undefined>>();

/** Undefined when the policy or the queue account cannot be read: views then show aliases only. */
export function clustersOf(ctx: Context): Promise<ClusterDirectory | undefined> {
  let pending = cache.get(ctx);
  if (!pending) {
    pending = (async () => {
      const account = ctx.target.queues.map((q) => accountOfQueue(q.url)).find((a) => a !== undefined);
      if (!account) return undefined;
      try {
        return new ClusterDirectory(await loadPolicyFile(ctx.target.policyPath), {
          account,
          region: ctx.target.region,
        });
      } catch {
        return undefined;
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

/**
 * The live state of a cluster in another account or region is reachable only through its target role, which
 * the CLI does not assume yet: a command that reads EKS refuses such a cluster rather than reading the home
 * account's cluster of the same alias (or the home ledger key).
 */
export async function requireHomeCluster(ctx: Context, alias: string, command: string): Promise<void> {
  const clusters = await clustersOf(ctx);
  const target = clusters?.resolve(alias);
  if (target && !clusters?.isHome(target)) {
    throw new CliError(
      `${command} for ${alias} (account ${target.account}, region ${target.region}) is not supported yet: ` +
        "the CLI reads EKS only in the deployment's own account and region",
    );
  }
}
