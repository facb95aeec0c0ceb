// Public types of the EKS access-entry emulator. The test or the local runner drives faults and
// inspects state through these objects in-process, never over HTTP, so the wire stays pure EKS.

export type AuthenticationMode = 'API' | 'API_AND_CONFIG_MAP' | 'CONFIG_MAP';

export type AccessEntryType =
  | 'STANDARD'
  | 'EC2_LINUX'
  | 'EC2_WINDOWS'
  | 'FARGATE_LINUX'
  | 'EC2'
  | 'HYBRID_LINUX'
  | 'HYPERPOD_LINUX';

export type EksOperation =
  | 'CreateAccessEntry'
  | 'DescribeAccessEntry'
  | 'UpdateAccessEntry'
  | 'DeleteAccessEntry'
  | 'ListAccessEntries'
  | 'AssociateAccessPolicy'
  | 'DisassociateAccessPolicy'
  | 'ListAssociatedAccessPolicies'
  | 'ListAccessPolicies'
  | 'DescribeCluster';

export interface AccessScope {
  type: 'cluster' | 'namespace';
  namespaces?: string[];
}

/** Where a cluster is: EKS keeps each account-region apart. */
export interface AccountRegion {
  account: string;
  region: string;
}

export interface EksEmulatorOptions {
  port?: number;
  /** The default account-region: where callers with a plain local access key act. */
  region?: string;
  accountId?: string;
  /** Clusters to create; account and region default to the emulator's. */
  clusters?: Array<{
    name: string;
    authenticationMode?: AuthenticationMode;
    account?: string;
    region?: string;
  }>;
  /**
   * The local STS (infra/local/sts.ts): its sessions act in their role's account. Absent: every caller
   * acts in the default account-region.
   */
  sts?: {
    issued(accessKeyId: string): boolean;
    sessionOf(accessKeyId: string): { account: string } | undefined;
  };
  entryQuota?: number;
  /** Ceiling on namespaces per access scope (see rules.ts DEFAULT_MAX_NAMESPACES_PER_SCOPE). */
  maxNamespacesPerScope?: number;
}

export interface FaultConfig {
  /** Probability 0..1 of a ServerException 500; an operation's own rate wins over '*'. */
  errorRate?: Partial<Record<EksOperation | '*', number>>;
  /** Deterministic: the next `count` matching calls fail with `status`; entries are consumed in order. */
  errorSequence?: Array<{ operation: EksOperation | '*'; status: 429 | 500 | 503; count: number }>;
  /** Token bucket over all calls (it starts full); an empty bucket answers 429 ThrottlingException. */
  throttle?: { ratePerSecond: number; burst: number };
  latencyMs?: number | { min: number; max: number };
  /**
   * For this long after CreateAccessEntry, every call on that entry (Describe, Update, Delete, Associate,
   * Disassociate, ListAssociated) answers 404 "principalArn could not be found" (eventual consistency).
   */
  postCreateNotFoundMs?: number;
  /** For this long after DeleteAccessEntry, CreateAccessEntry for that principal answers 409 ResourceInUseException. */
  postDeleteConflictMs?: number;
  /**
   * For this long after createPrincipal/recreatePrincipal, CreateAccessEntry for that principal answers
   * InvalidParameterException "The specified principalArn is invalid: invalid principal" (IAM propagation).
   */
  iamPropagationMs?: number;
  /** Injectable RNG for errorRate and latency ranges. */
  random?: () => number;
}

export interface EksCall {
  operation: EksOperation;
  clusterName?: string;
  principalArn?: string;
  /** Set only for calls outside the default account-region. */
  account?: string;
  region?: string;
  status: number;
  /** Epoch milliseconds when the request arrived. */
  at: number;
}

export interface SeedEntry {
  principalArn: string;
  type?: AccessEntryType;
  kubernetesGroups?: string[];
  username?: string;
  tags?: Record<string, string>;
  policies?: Array<{ policyArn: string; accessScope: AccessScope }>;
  /** Epoch ms the entry was created (default: now), e.g. long before its role was recreated. */
  createdAt?: number;
}

export interface EntrySnapshot {
  principalArn: string;
  type: AccessEntryType;
  kubernetesGroups: string[];
  username: string;
  tags: Record<string, string>;
  policies: Array<{
    policyArn: string;
    accessScope: { type: 'cluster' | 'namespace'; namespaces: string[] };
  }>;
}

export interface EksEmulator {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  region: string;
  close(): Promise<void>;
  setFaults(f: FaultConfig): void;
  clearFaults(): void;
  /** Every HTTP call received for a known operation, including failed ones, in completion order. */
  calls(): EksCall[];
  resetCalls(): void;
  /** `at` (here and below): the cluster's account-region; default: the emulator's. */
  addCluster(name: string, authenticationMode?: AuthenticationMode, at?: AccountRegion): void;
  /** Bypasses faults, the quota and the eventual-consistency window; throws on a duplicate or bad input. */
  seedEntry(cluster: string, entry: SeedEntry, at?: AccountRegion): void;
  /** Entries sorted by principalArn, policies by policyArn, groups and namespaces sorted. */
  snapshot(cluster: string, at?: AccountRegion): EntrySnapshot[];
  /** Simulates deleting and recreating the IAM principal: same ARN, new principal id, freshly created. */
  recreatePrincipal(principalArn: string): void;
  /** Simulates creating the IAM principal now (it is unknown to EKS for `iamPropagationMs`). */
  createPrincipal(principalArn: string): void;
  /** Simulates deleting the IAM principal: CreateAccessEntry calls it invalid until it is created again. */
  deletePrincipal(principalArn: string): void;
  /** True when the entry was created for an earlier incarnation of the principal (it no longer works in EKS). */
  isStale(cluster: string, principalArn: string, at?: AccountRegion): boolean;
}
