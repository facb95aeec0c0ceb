/**
 * The only module that talks to EKS. Reads an access entry's current state and
 * applies planned changes, translating SDK errors into typed, retry-classified errors.
 */
import {
  AssociateAccessPolicyCommand,
  type AssociateAccessPolicyCommandInput,
  CreateAccessEntryCommand,
  type CreateAccessEntryCommandInput,
  DeleteAccessEntryCommand,
  type DeleteAccessEntryCommandInput,
  DescribeAccessEntryCommand,
  type DescribeAccessEntryCommandOutput,
  DisassociateAccessPolicyCommand,
  type DisassociateAccessPolicyCommandInput,
  type EKSClient,
  ListAssociatedAccessPoliciesCommand,
  type ListAssociatedAccessPoliciesCommandOutput,
  UpdateAccessEntryCommand,
  type UpdateAccessEntryCommandInput,
} from '@aws-sdk/client-eks';
import type { ClusterTarget } from '../core/cluster-target.js';
import { type EksLimitReasonCode, MAX_NAMESPACES_PER_SCOPE } from '../core/eks-limits.js';
import { AppError, PermanentError, TransientError } from '../core/errors.js';
import type { EksChange } from '../core/plan.js';
import type { AccessScope, AccessState, PolicyAssociation } from '../core/types.js';
import type { EksTargetClients } from './target-clients.js';

/**
 * What CreateAccessEntry answers while a just-created IAM role is not yet known to EKS. The exact
 * text terraform-provider-aws retries on (internal/service/eks/access_entry.go,
 * `RetryWhenIsAErrorMessageContains[*types.InvalidParameterException]`, for its 2-minute
 * propagationTimeout); terraform-aws-eks#2969 quotes it. Every other InvalidParameterException stays
 * permanent.
 */
export const IAM_PROPAGATION_MESSAGE = 'The specified principalArn is invalid: invalid principal';

/**
 * When EKS says each entry it read was created, kept beside the domain state (not in it: the state
 * is stored as a baseline and compared). The worker uses it to tell a recreated role's stale entry
 * from the fresh one an earlier attempt already created.
 */
const createdAtOf = new WeakMap<AccessState, number>();

/** Epoch ms at which EKS created the entry `state` was read from, if EKS said so. */
export function entryCreatedAt(state: AccessState): number | undefined {
  return createdAtOf.get(state);
}

/** Counts calls per operation so the worker can report API efficiency. */
export type CallCounter = (operation: string) => void;

/**
 * A cluster to act on: a resolved ClusterTarget (core/cluster-target.ts), or a plain EKS name in
 * the default client's account and region.
 */
export type EksCluster = string | ClusterTarget;

/** The error names with which EKS refuses the caller's credentials rather than the request. */
const CREDENTIALS_REFUSED = new Set([
  'AccessDeniedException',
  'ExpiredTokenException',
  'UnrecognizedClientException',
]);

export class EksAdapter {
  /**
   * `targets`: the EKS client of each target's account-region (adapters/target-clients.ts). Absent,
   * every cluster is reached with `client`.
   */
  constructor(
    private readonly client: EKSClient,
    private readonly countCall: CallCounter = () => {},
    private readonly targets?: EksTargetClients,
  ) {}

  async readCurrent(cluster: EksCluster, principalArn: string, signal?: AbortSignal): Promise<AccessState> {
    const clusterName = nameOf(cluster);
    let entry: DescribeAccessEntryCommandOutput;
    try {
      entry = await this.send<DescribeAccessEntryCommandOutput>(
        'DescribeAccessEntry',
        new DescribeAccessEntryCommand({ clusterName, principalArn }),
        signal,
        cluster,
      );
    } catch (err) {
      if (err instanceof PermanentError && err.code === 'ENTRY_NOT_FOUND') {
        return { exists: false, kubernetesGroups: [], policies: [] };
      }
      throw err;
    }
    const e = entry.accessEntry;
    const type = e?.type ?? 'STANDARD';
    // Access policies exist only on STANDARD entries; listing them on others is an error.
    const policies = type === 'STANDARD' ? await this.listPolicies(cluster, principalArn, signal) : [];
    const state: AccessState = {
      exists: true,
      type,
      kubernetesGroups: [...(e?.kubernetesGroups ?? [])].sort(),
      ...(e?.username !== undefined && { username: e.username }),
      policies,
      tags: e?.tags ?? {},
    };
    if (e?.createdAt instanceof Date) createdAtOf.set(state, e.createdAt.getTime());
    return state;
  }

  private async listPolicies(cluster: EksCluster, principalArn: string, signal?: AbortSignal) {
    const clusterName = nameOf(cluster);
    const out: PolicyAssociation[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.send<ListAssociatedAccessPoliciesCommandOutput>(
        'ListAssociatedAccessPolicies',
        new ListAssociatedAccessPoliciesCommand({ clusterName, principalArn, nextToken, maxResults: 100 }),
        signal,
        cluster,
      );
      for (const p of page.associatedAccessPolicies ?? []) {
        if (!p.policyArn) continue;
        const scope: AccessScope =
          p.accessScope?.type === 'namespace'
            ? { type: 'namespace', namespaces: [...(p.accessScope.namespaces ?? [])].sort() }
            : { type: 'cluster' };
        out.push({ policyArn: p.policyArn, accessScope: scope });
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return out.sort((a, b) => a.policyArn.localeCompare(b.policyArn));
  }

  async apply(
    cluster: EksCluster,
    principalArn: string,
    change: EksChange,
    signal?: AbortSignal,
  ): Promise<void> {
    const input = callInput(nameOf(cluster), principalArn, change);
    const send = (command: object) => this.send(input.operation, command, signal, cluster);
    switch (input.operation) {
      case 'CreateAccessEntry':
        await send(new CreateAccessEntryCommand(withoutOperation(input)));
        return;
      case 'UpdateAccessEntry':
        await send(new UpdateAccessEntryCommand(withoutOperation(input)));
        return;
      case 'AssociateAccessPolicy':
        refuseOversizedScope(input.policyArn ?? '', input.accessScope);
        await send(new AssociateAccessPolicyCommand(withoutOperation(input)));
        return;
      case 'DisassociateAccessPolicy':
        await this.idempotentRemoval(() =>
          send(new DisassociateAccessPolicyCommand(withoutOperation(input))),
        );
        return;
      case 'DeleteAccessEntry':
        await this.idempotentRemoval(() => send(new DeleteAccessEntryCommand(withoutOperation(input))));
        return;
    }
  }

  /** A removal that finds nothing to remove has reached its goal (e.g. a replayed revoke). */
  private async idempotentRemoval(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      if (err instanceof TransientError && err.code === 'ALREADY_ABSENT') return;
      throw err;
    }
  }

  /** Output types are given by the caller: the client's overloads do not accept a generic command. */
  private async send<Output = unknown>(
    operation: string,
    command: object,
    signal: AbortSignal | undefined,
    cluster: EksCluster,
  ): Promise<Output> {
    const target = typeof cluster === 'string' ? undefined : cluster;
    const attempt = () => {
      this.countCall(operation);
      const client = target && this.targets ? this.targets.clientFor(target) : this.client;
      const send = client.send.bind(client) as (c: object, o?: object) => Promise<Output>;
      return send(command, signal ? { abortSignal: signal } : undefined);
    };
    try {
      try {
        return await attempt();
      } catch (err) {
        // Sessions of a target role die with it (deleted, or recreated under the same name: IAM knows a
        // session by the role's unique id). Cached credentials may be such a session: assume again, once.
        const name = (err as { name?: string })?.name ?? '';
        if (target && this.targets && CREDENTIALS_REFUSED.has(name) && this.targets.renew(target)) {
          return await attempt();
        }
        throw err;
      }
    } catch (err) {
      throw translateEksError(operation, err);
    }
  }
}

/** One EKS API call exactly as `apply` sends it: the operation name and its request parameters. */
export type EksCallInput =
  | ({ operation: 'CreateAccessEntry' } & CreateAccessEntryCommandInput)
  | ({ operation: 'UpdateAccessEntry' } & UpdateAccessEntryCommandInput)
  | ({ operation: 'AssociateAccessPolicy' } & AssociateAccessPolicyCommandInput)
  | ({ operation: 'DisassociateAccessPolicy' } & DisassociateAccessPolicyCommandInput)
  | ({ operation: 'DeleteAccessEntry' } & DeleteAccessEntryCommandInput);

/**
 * A planned change → the request `apply` sends for it. Pure, so the operator CLI's dry run (`plan`) shows
 * the very parameters the worker would send.
 */
export function callInput(clusterName: string, principalArn: string, change: EksChange): EksCallInput {
  switch (change.op) {
    case 'CreateAccessEntry':
      return {
        operation: change.op,
        clusterName,
        principalArn,
        kubernetesGroups: change.kubernetesGroups,
        ...(change.username !== undefined && { username: change.username }),
        // The API model gives TagMap "min": 1: an empty map is an invalid request, so send none.
        ...(Object.keys(change.tags).length > 0 && { tags: change.tags }),
        type: 'STANDARD',
      };
    case 'UpdateAccessEntry':
      return {
        operation: change.op,
        clusterName,
        principalArn,
        kubernetesGroups: change.kubernetesGroups,
        ...(change.username !== undefined && { username: change.username }),
      };
    case 'AssociateAccessPolicy':
      return {
        operation: change.op,
        clusterName,
        principalArn,
        policyArn: change.policyArn,
        accessScope: change.accessScope,
      };
    case 'DisassociateAccessPolicy':
      return { operation: change.op, clusterName, principalArn, policyArn: change.policyArn };
    case 'DeleteAccessEntry':
      return { operation: change.op, clusterName, principalArn };
  }
}

function nameOf(cluster: EksCluster): string {
  return typeof cluster === 'string' ? cluster : cluster.name;
}

function withoutOperation<T extends { operation: string }>(input: T): Omit<T, 'operation'> {
  const { operation: _operation, ...rest } = input;
  return rest;
}

/** Never send EKS more namespaces per scope than the system's ceiling (core/eks-limits.ts). */
function refuseOversizedScope(
  policyArn: string,
  scope: { type?: string; namespaces?: string[] } | undefined,
): void {
  const count = scope?.type === 'namespace' ? new Set(scope.namespaces ?? []).size : 0;
  if (count > MAX_NAMESPACES_PER_SCOPE) {
    throw new PermanentError(
      'SCOPE_TOO_MANY_NAMESPACES' satisfies EksLimitReasonCode,
      `AssociateAccessPolicy: not sent: the scope of ${policyArn} names ${count} namespaces, more than the ${MAX_NAMESPACES_PER_SCOPE} allowed per scope`,
    );
  }
}

/**
 * SDK error → typed error. The SDK has already retried throttling, 5xx and network
 * faults with backoff by the time an error reaches us.
 */
export function translateEksError(operation: string, err: unknown): Error {
  // Already typed: the target role's credentials could not be had (adapters/target-clients.ts).
  if (err instanceof AppError) return err;
  const e = err as {
    name?: string;
    message?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e?.name ?? 'Error';
  const message = `${operation}: ${name}: ${e?.message ?? String(err)}`;
  switch (name) {
    case 'ResourceNotFoundException':
      // EKS says "No cluster found for name: X." Match that phrase only: policy ARNs in other
      // 404 messages contain "cluster-access-policy".
      if (/no cluster found/i.test(e.message ?? '')) {
        return new PermanentError('CLUSTER_NOT_FOUND', message, { cause: err });
      }
      // Describe of an absent entry is a normal answer. On any other call right after a
      // create, "principalArn could not be found" is EKS eventual consistency: try again.
      if (operation === 'DescribeAccessEntry')
        return new PermanentError('ENTRY_NOT_FOUND', message, { cause: err });
      if (operation === 'DisassociateAccessPolicy' || operation === 'DeleteAccessEntry') {
        return new TransientError('ALREADY_ABSENT', message, { cause: err });
      }
      return new TransientError('EVENTUAL_CONSISTENCY', message, { cause: err });
    case 'ResourceInUseException':
      // Someone created the entry between our read and our create: re-read and re-plan.
      return new TransientError('CONFLICT', message, { cause: err });
    case 'InvalidParameterException':
      // Right after CreateRole, EKS calls the role an invalid principal until IAM has propagated:
      // worth another try. How long that is allowed to last is the worker's call (grant-service).
      if (operation === 'CreateAccessEntry' && (e.message ?? '').includes(IAM_PROPAGATION_MESSAGE)) {
        return new TransientError('IAM_PROPAGATION' satisfies EksLimitReasonCode, message, { cause: err });
      }
      return new PermanentError('EKS_INVALID_PARAMETER', message, { cause: err });
    case 'InvalidRequestException':
      return new PermanentError('EKS_INVALID_REQUEST', message, { cause: err });
    case 'ResourceLimitExceededException':
      return new PermanentError('EKS_QUOTA_EXCEEDED', message, { cause: err });
    case 'AccessDeniedException':
      return new PermanentError('EKS_ACCESS_DENIED', message, { cause: err });
    case 'AbortError':
      return new TransientError('DEADLINE', `${operation}: gave up before the invocation deadline`, {
        cause: err,
      });
    default:
      if (e?.$fault === 'client' && e.$metadata?.httpStatusCode !== 429) {
        return new PermanentError('EKS_CLIENT_ERROR', message, { cause: err });
      }
      return new TransientError(
        name === 'ThrottlingException' ? 'EKS_THROTTLED' : 'EKS_UNAVAILABLE',
        message,
        {
          cause: err,
        },
      );
  }
}
