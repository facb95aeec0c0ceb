// The access-entry state of the emulated clusters and the operations on it (DESIGN.md section 3).
// Pure in-memory logic: validation rules are in rules.ts, HTTP framing and faults elsewhere.
import { randomUUID } from 'node:crypto';
import { EksApiError } from './errors.js';
import {
  DEFAULT_MAX_NAMESPACES_PER_SCOPE,
  ENTRY_TYPES,
  isServiceLinkedRole,
  MANAGED_POLICY_NAMES,
  parsePrincipal,
  policiesAllowedFor,
  policyArnOf,
  SERVICE_LINKED_ROLE_MESSAGE,
  STANDARD_ONLY_MESSAGE,
  validGroups,
  validPolicyAndScope,
  validTags,
  validUsername,
} from './rules.js';
import type { AccessEntryType, AccessScope, AuthenticationMode, EntrySnapshot, SeedEntry } from './types.js';
import {
  optionalString,
  optionalStringList,
  optionalStringMap,
  paginate,
  requiredString,
  tokenField,
} from './wire.js';

// The exact text terraform-provider-aws retries on (internal/service/eks/access_entry.go,
// RetryWhenIsAErrorMessageContains[*types.InvalidParameterException]) and terraform-aws-eks#2969 quotes.
export const INVALID_PRINCIPAL_MESSAGE = 'The specified principalArn is invalid: invalid principal';

const NOT_FOUND_ENTRY =
  "The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.";

interface StoredPolicy {
  policyArn: string;
  accessScope: { type: 'cluster' | 'namespace'; namespaces: string[] };
  associatedAt: number;
  modifiedAt: number;
}

interface StoredEntry {
  principalArn: string;
  type: AccessEntryType;
  kubernetesGroups: string[];
  username: string;
  tags: Record<string, string>;
  accessEntryArn: string;
  createdAt: number;
  modifiedAt: number;
  /** The principal's id when the entry was created; EKS binds the entry to it, not to the ARN. */
  principalId: string;
  clientRequestToken?: string;
  /** Epoch ms of the API create; seeded entries use -Infinity so they are never "just created". */
  createdByApiAt: number;
  policies: Map<string, StoredPolicy>;
}

interface Cluster {
  name: string;
  arn: string;
  authenticationMode: AuthenticationMode;
  createdAt: number;
  entries: Map<string, StoredEntry>;
  /** Epoch ms of the last API delete per principal ARN (the post-delete window). */
  deletedAt: Map<string, number>;
}

/**
 * IAM principals as EKS sees them. IAM is one per partition, not per cluster or account-region: a role
 * deleted and recreated is stale on every cluster of every account it has entries in, so the models
 * of all account-regions (eks-emulator.ts) share one registry.
 */
export class PrincipalRegistry {
  /** Current id of every IAM principal the emulator has seen, keyed by ARN. */
  readonly ids = new Map<string, string>();
  /** When createPrincipal/recreatePrincipal last created each principal; absent = long-standing. */
  readonly createdAt = new Map<string, number>();
  /** Principals deleted in IAM and not created again. */
  readonly deleted = new Set<string>();
  counter = 0;
}

export interface ModelOptions {
  region: string;
  accountId: string;
  /** Shared between account-regions; default: this model's own. */
  principals?: PrincipalRegistry;
  entryQuota: number;
  maxNamespacesPerScope?: number;
  now?: () => number;
}

/** Time windows of eventual consistency, from the fault configuration. */
export interface CreateWindows {
  postDeleteConflictMs: number;
  iamPropagationMs: number;
}

export class EksModel {
  private readonly clusters = new Map<string, Cluster>();
  private readonly iam: PrincipalRegistry;
  private readonly principalIds: Map<string, string>;
  private readonly principalCreatedAt: Map<string, number>;
  private readonly deletedPrincipals: Set<string>;
  private readonly now: () => number;

  constructor(private readonly opts: ModelOptions) {
    this.now = opts.now ?? Date.now;
    this.iam = opts.principals ?? new PrincipalRegistry();
    this.principalIds = this.iam.ids;
    this.principalCreatedAt = this.iam.createdAt;
    this.deletedPrincipals = this.iam.deleted;
  }

  // ---- control surface (in-process, no faults) ----

  addCluster(name: string, authenticationMode: AuthenticationMode = 'API_AND_CONFIG_MAP'): void {
    const existing = this.clusters.get(name);
    if (existing) {
      existing.authenticationMode = authenticationMode;
      return;
    }
    this.clusters.set(name, {
      name,
      arn: `arn:aws:eks:${this.opts.region}:${this.opts.accountId}:cluster/${name}`,
      authenticationMode,
      createdAt: this.now(),
      entries: new Map(),
      deletedAt: new Map(),
    });
  }

  seedEntry(clusterName: string, seed: SeedEntry): void {
    const cluster = this.cluster(clusterName);
    if (cluster.entries.has(seed.principalArn)) {
      throw new Error(`seedEntry: ${seed.principalArn} already has an access entry on ${clusterName}`);
    }
    const entry = this.buildEntry(cluster, {
      principalArn: seed.principalArn,
      type: seed.type,
      kubernetesGroups: seed.kubernetesGroups,
      username: seed.username,
      tags: seed.tags,
    });
    entry.createdByApiAt = Number.NEGATIVE_INFINITY;
    if (seed.createdAt !== undefined) {
      entry.createdAt = seed.createdAt;
      entry.modifiedAt = seed.createdAt;
    }
    for (const p of seed.policies ?? []) {
      const scope = this.validateAssociation(entry, p.policyArn, p.accessScope);
      const at = this.now();
      entry.policies.set(p.policyArn, {
        policyArn: p.policyArn,
        accessScope: scope,
        associatedAt: at,
        modifiedAt: at,
      });
    }
    cluster.entries.set(entry.principalArn, entry);
  }

  snapshot(clusterName: string): EntrySnapshot[] {
    const cluster = this.cluster(clusterName);
    return [...cluster.entries.values()]
      .sort((a, b) => compare(a.principalArn, b.principalArn))
      .map((e) => ({
        principalArn: e.principalArn,
        type: e.type,
        kubernetesGroups: [...e.kubernetesGroups].sort(compare),
        username: e.username,
        tags: { ...e.tags },
        policies: [...e.policies.values()]
          .sort((a, b) => compare(a.policyArn, b.policyArn))
          .map((p) => ({
            policyArn: p.policyArn,
            accessScope: {
              type: p.accessScope.type,
              namespaces: [...p.accessScope.namespaces].sort(compare),
            },
          })),
      }));
  }

  recreatePrincipal(principalArn: string): void {
    this.principalIds.set(principalArn, this.newPrincipalId(principalArn));
    this.createPrincipal(principalArn, false);
  }

  createPrincipal(principalArn: string, newId = true): void {
    if (newId && (this.deletedPrincipals.has(principalArn) || !this.principalIds.has(principalArn))) {
      this.principalIds.set(principalArn, this.newPrincipalId(principalArn));
    }
    this.deletedPrincipals.delete(principalArn);
    this.principalCreatedAt.set(principalArn, this.now());
  }

  deletePrincipal(principalArn: string): void {
    this.deletedPrincipals.add(principalArn);
    this.principalCreatedAt.delete(principalArn);
  }

  isStale(clusterName: string, principalArn: string): boolean {
    const entry = this.cluster(clusterName).entries.get(principalArn);
    if (!entry) throw new Error(`isStale: no access entry for ${principalArn} on ${clusterName}`);
    return this.principalIds.get(principalArn) !== entry.principalId;
  }

  // ---- API operations ----

  describeCluster(name: string): unknown {
    const c = this.cluster(name);
    return {
      cluster: {
        name: c.name,
        arn: c.arn,
        createdAt: c.createdAt / 1000,
        version: '1.33',
        status: 'ACTIVE',
        accessConfig: { authenticationMode: c.authenticationMode },
        tags: {},
      },
    };
  }

  listAccessPolicies(query: URLSearchParams): unknown {
    const all = MANAGED_POLICY_NAMES.map((name) => ({ name, arn: policyArnOf(name) }));
    const page = paginate(all, (p) => p.arn, query);
    return { accessPolicies: page.items, ...tokenField(page.nextToken) };
  }

  createAccessEntry(
    clusterName: string,
    body: Record<string, unknown>,
    windows: CreateWindows = { postDeleteConflictMs: 0, iamPropagationMs: 0 },
  ): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    const principalArn = requiredString(body, 'principalArn');
    refuseServiceLinkedRole(principalArn);
    const token = optionalString(body, 'clientRequestToken');
    const existing = cluster.entries.get(principalArn);
    if (!existing) this.requirePropagatedPrincipal(principalArn, windows.iamPropagationMs);
    // A just-deleted entry still holds its name for a while: a delete-then-create is answered 409 like a
    // create over a live entry (terraform-aws-eks#3293: a replace, i.e. delete then create, got
    // "ResourceInUseException: The specified access entry resource is already in use on this cluster").
    const deletedAt = cluster.deletedAt.get(principalArn);
    const stillDeleting = deletedAt !== undefined && this.now() - deletedAt < windows.postDeleteConflictMs;
    if (existing || stillDeleting) {
      // The SDK fills clientRequestToken itself, so a retried create that already succeeded is answered
      // with the entry, as EKS does for an idempotent replay, instead of ResourceInUseException.
      if (existing && token !== undefined && existing.clientRequestToken === token)
        return { accessEntry: this.view(cluster, existing) };
      throw new EksApiError(
        'ResourceInUseException',
        'The specified access entry resource is already in use on this cluster.',
        { clusterName },
      );
    }
    const entry = this.buildEntry(cluster, {
      principalArn,
      type: optionalString(body, 'type'),
      kubernetesGroups: optionalStringList(body, 'kubernetesGroups'),
      username: optionalString(body, 'username'),
      tags: validTags(optionalStringMap(body, 'tags')),
    });
    if (cluster.entries.size >= this.opts.entryQuota) {
      throw new EksApiError(
        'ResourceLimitExceededException',
        `Cannot create access entry: the cluster has reached the limit of ${this.opts.entryQuota} access entries.`,
        { clusterName },
      );
    }
    if (token !== undefined) entry.clientRequestToken = token;
    cluster.entries.set(principalArn, entry);
    return { accessEntry: this.view(cluster, entry) };
  }

  describeAccessEntry(clusterName: string, principalArn: string, visibleAfterCreateMs: number): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    const entry = this.visibleEntry(cluster, principalArn, visibleAfterCreateMs);
    return { accessEntry: this.view(cluster, entry) };
  }

  updateAccessEntry(
    clusterName: string,
    principalArn: string,
    body: Record<string, unknown>,
    visibleAfterCreateMs: number,
  ): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    refuseServiceLinkedRole(principalArn);
    const entry = this.visibleEntry(cluster, principalArn, visibleAfterCreateMs);
    const groups = optionalStringList(body, 'kubernetesGroups');
    const username = optionalString(body, 'username');
    const parsed = parsePrincipal(entry.principalArn);
    // Replace semantics: whatever is omitted goes back to its default, like the real API.
    entry.kubernetesGroups = validGroups(entry.type, groups);
    entry.username = validUsername(entry.type, parsed, username);
    entry.modifiedAt = this.now();
    return { accessEntry: this.view(cluster, entry) };
  }

  deleteAccessEntry(clusterName: string, principalArn: string, visibleAfterCreateMs = 0): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    refuseServiceLinkedRole(principalArn);
    // A delete right after the create can miss the entry too: "404 means already gone" is then wrong.
    this.visibleEntry(cluster, principalArn, visibleAfterCreateMs);
    // Policies live inside the entry, so they go with it.
    cluster.entries.delete(principalArn);
    cluster.deletedAt.set(principalArn, this.now());
    return {};
  }

  listAccessEntries(clusterName: string, query: URLSearchParams): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    const filter = query.get('associatedPolicyArn');
    const arns = [...cluster.entries.values()]
      .filter((e) => filter === null || e.policies.has(filter))
      .map((e) => e.principalArn)
      .sort(compare);
    const page = paginate(arns, (a) => a, query);
    return { accessEntries: page.items, ...tokenField(page.nextToken) };
  }

  associateAccessPolicy(
    clusterName: string,
    principalArn: string,
    body: Record<string, unknown>,
    visibleAfterCreateMs: number,
  ): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    refuseServiceLinkedRole(principalArn);
    const entry = this.visibleEntry(cluster, principalArn, visibleAfterCreateMs);
    const policyArn = requiredString(body, 'policyArn');
    const rawScope = body.accessScope;
    if (rawScope === undefined || rawScope === null || typeof rawScope !== 'object') {
      throw new EksApiError('InvalidParameterException', 'accessScope is required.', { clusterName });
    }
    const scope = this.validateAssociation(entry, policyArn, rawScope as AccessScope);
    const at = this.now();
    const existing = entry.policies.get(policyArn);
    // One scope per policy per entry: associating again replaces the scope in place.
    const stored: StoredPolicy = {
      policyArn,
      accessScope: scope,
      associatedAt: existing?.associatedAt ?? at,
      modifiedAt: at,
    };
    entry.policies.set(policyArn, stored);
    return { clusterName: cluster.name, principalArn, associatedAccessPolicy: policyView(stored) };
  }

  disassociateAccessPolicy(
    clusterName: string,
    principalArn: string,
    policyArn: string,
    visibleAfterCreateMs = 0,
  ): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    refuseServiceLinkedRole(principalArn);
    const entry = this.visibleEntry(cluster, principalArn, visibleAfterCreateMs);
    if (entry.type !== 'STANDARD' && entry.type !== 'EC2') {
      throw new EksApiError('InvalidParameterException', STANDARD_ONLY_MESSAGE, { clusterName });
    }
    if (!entry.policies.delete(policyArn)) {
      throw new EksApiError(
        'ResourceNotFoundException',
        `The specified policyArn ${policyArn} is not associated with the access entry.`,
        { clusterName },
      );
    }
    return {};
  }

  listAssociatedAccessPolicies(
    clusterName: string,
    principalArn: string,
    query: URLSearchParams,
    visibleAfterCreateMs: number,
  ): unknown {
    const cluster = this.accessEntryCluster(clusterName);
    const entry = this.visibleEntry(cluster, principalArn, visibleAfterCreateMs);
    if (entry.type !== 'STANDARD' && entry.type !== 'EC2') {
      throw new EksApiError('InvalidParameterException', STANDARD_ONLY_MESSAGE, { clusterName });
    }
    const policies = [...entry.policies.values()].sort((a, b) => compare(a.policyArn, b.policyArn));
    const page = paginate(policies, (p) => p.policyArn, query);
    return {
      clusterName: cluster.name,
      principalArn,
      associatedAccessPolicies: page.items.map(policyView),
      ...tokenField(page.nextToken),
    };
  }

  // ---- helpers ----

  private cluster(name: string): Cluster {
    const c = this.clusters.get(name);
    if (!c)
      throw new EksApiError('ResourceNotFoundException', `No cluster found for name: ${name}.`, {
        clusterName: name,
      });
    return c;
  }

  private accessEntryCluster(name: string): Cluster {
    const c = this.cluster(name);
    if (c.authenticationMode === 'CONFIG_MAP') {
      throw new EksApiError(
        'InvalidRequestException',
        "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        { clusterName: name },
      );
    }
    return c;
  }

  private entry(cluster: Cluster, principalArn: string): StoredEntry {
    const e = cluster.entries.get(principalArn);
    if (!e)
      throw new EksApiError('ResourceNotFoundException', NOT_FOUND_ENTRY, { clusterName: cluster.name });
    return e;
  }

  /** Like entry(), but a freshly created entry is not yet visible (EKS is eventually consistent). */
  private visibleEntry(cluster: Cluster, principalArn: string, visibleAfterCreateMs: number): StoredEntry {
    const e = this.entry(cluster, principalArn);
    if (this.now() - e.createdByApiAt < visibleAfterCreateMs) {
      throw new EksApiError('ResourceNotFoundException', NOT_FOUND_ENTRY, { clusterName: cluster.name });
    }
    return e;
  }

  private buildEntry(
    cluster: Cluster,
    input: {
      principalArn: string;
      type: string | undefined;
      kubernetesGroups: string[] | undefined;
      username: string | undefined;
      tags: Record<string, string> | undefined;
    },
  ): StoredEntry {
    const parsed = parsePrincipal(input.principalArn);
    const type = input.type ?? 'STANDARD';
    if (!ENTRY_TYPES.has(type)) {
      throw new EksApiError('InvalidParameterException', `The access entry type ${type} is not valid.`, {
        clusterName: cluster.name,
      });
    }
    const entryType = type as AccessEntryType;
    if (entryType !== 'STANDARD') {
      // Node entries must name a role of the cluster's own account (EKS user guide, "Create access entries").
      if (parsed.kind !== 'role' || parsed.account !== this.opts.accountId) {
        throw new EksApiError(
          'InvalidParameterException',
          `Access entries of type ${entryType} require an IAM role in the cluster's account.`,
          { clusterName: cluster.name },
        );
      }
    }
    const at = this.now();
    return {
      principalArn: input.principalArn,
      type: entryType,
      kubernetesGroups: validGroups(entryType, input.kubernetesGroups),
      username: validUsername(entryType, parsed, input.username),
      tags: { ...(input.tags ?? {}) },
      accessEntryArn:
        `arn:aws:eks:${this.opts.region}:${this.opts.accountId}:access-entry/${cluster.name}/` +
        `${parsed.kind}/${parsed.account}/${parsed.name}/${randomUUID()}`,
      createdAt: at,
      modifiedAt: at,
      principalId: this.currentPrincipalId(input.principalArn),
      createdByApiAt: at,
      policies: new Map(),
    };
  }

  private validateAssociation(
    entry: StoredEntry,
    policyArn: string,
    scope: AccessScope,
  ): { type: 'cluster' | 'namespace'; namespaces: string[] } {
    const allowed = policiesAllowedFor(entry.type);
    if (allowed !== 'all' && !allowed.includes(policyArn)) {
      throw new EksApiError(
        'InvalidParameterException',
        allowed.length === 0
          ? STANDARD_ONLY_MESSAGE
          : `Access entries of type ${entry.type} accept only ${allowed.join(', ')}; got ${policyArn}.`,
      );
    }
    const valid = validPolicyAndScope(
      policyArn,
      scope,
      this.opts.maxNamespacesPerScope ?? DEFAULT_MAX_NAMESPACES_PER_SCOPE,
    );
    // The user guide associates AmazonEKSAutoNodePolicy to an EC2 entry with `--access-scope type=cluster`.
    if (entry.type === 'EC2' && valid.type !== 'cluster') {
      throw new EksApiError(
        'InvalidParameterException',
        'Access policies on EC2 access entries must have a cluster access scope.',
      );
    }
    return valid;
  }

  private view(cluster: Cluster, e: StoredEntry): unknown {
    return {
      clusterName: cluster.name,
      principalArn: e.principalArn,
      kubernetesGroups: [...e.kubernetesGroups],
      accessEntryArn: e.accessEntryArn,
      // restJson1 timestamps default to epoch seconds (a JSON number; fractions allowed).
      createdAt: e.createdAt / 1000,
      modifiedAt: e.modifiedAt / 1000,
      tags: { ...e.tags },
      username: e.username,
      type: e.type,
    };
  }

  /** IAM propagation: a principal created moments ago, or deleted, is not yet (or no longer) known to EKS. */
  private requirePropagatedPrincipal(principalArn: string, iamPropagationMs: number): void {
    const createdAt = this.principalCreatedAt.get(principalArn);
    const fresh = createdAt !== undefined && this.now() - createdAt < iamPropagationMs;
    if (fresh || this.deletedPrincipals.has(principalArn)) {
      throw new EksApiError('InvalidParameterException', INVALID_PRINCIPAL_MESSAGE);
    }
  }

  private currentPrincipalId(principalArn: string): string {
    let id = this.principalIds.get(principalArn);
    if (id === undefined) {
      id = this.newPrincipalId(principalArn);
      this.principalIds.set(principalArn, id);
    }
    return id;
  }

  private newPrincipalId(principalArn: string): string {
    this.iam.counter += 1;
    // IAM ids are 21 chars: AROA for roles, AIDA for users, then 17 upper-case alphanumerics.
    const prefix = principalArn.includes(':user/') ? 'AIDA' : 'AROA';
    return prefix + this.iam.counter.toString(36).toUpperCase().padStart(17, '0');
  }
}

function policyView(p: StoredPolicy): unknown {
  return {
    policyArn: p.policyArn,
    accessScope: { type: p.accessScope.type, namespaces: [...p.accessScope.namespaces] },
    associatedAt: p.associatedAt / 1000,
    modifiedAt: p.modifiedAt / 1000,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function refuseServiceLinkedRole(principalArn: string): void {
  if (isServiceLinkedRole(principalArn)) {
    throw new EksApiError('InvalidParameterException', SERVICE_LINKED_ROLE_MESSAGE);
  }
}
