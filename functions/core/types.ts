/**
 * The domain vocabulary shared by every layer. Pure types: no AWS imports.
 */

export const SOURCES = [
  'ticket',
  'iam-role-created',
  'break-glass',
  'expiry',
  'reconcile',
  'operator',
] as const;
export type Source = (typeof SOURCES)[number];

/**
 * `extend` moves the end of one time-boxed grant (`grantId`) later, by `extendBy` or to a new `expiresAt`;
 * it never changes what the grant gives. Operators only (core/extension.ts says who and why).
 */
export const ACTIONS = ['grant', 'revoke', 'extend'] as const;
export type Action = (typeof ACTIONS)[number];

export type ScopeType = 'cluster' | 'namespace';

export interface AccessScope {
  type: ScopeType;
  /** Present (non-empty) only when type is `namespace`. */
  namespaces?: string[];
}

export interface PolicyAssociation {
  policyArn: string;
  accessScope: AccessScope;
}

/** AccessRequest v1: the body of every message on the requests queue. */
export interface AccessRequest {
  schemaVersion: 1;
  requestId: string;
  action: Action;
  source: Source;
  clusterName: string;
  principalArn: string;
  kubernetesGroups?: string[];
  username?: string;
  accessPolicies?: PolicyAssociation[];
  /** ISO-8601 duration, e.g. PT1H. Mutually exclusive with expiresAt. */
  duration?: string;
  /** ISO-8601 instant. */
  expiresAt?: string;
  requestedBy?: string;
  approvedBy?: string[];
  reason?: string;
  ticket?: string;
  incidentId?: string;
  /** For revoke, expiry and extend: the grant to end or extend (a grant's id is the requestId that created it). */
  grantId?: string;
  /** Only on an extend: how much later the grant ends (ISO-8601 duration). Mutually exclusive with expiresAt. */
  extendBy?: string;
  /**
   * Only on an `iam-role-created` grant: the role was (re)created, so an access entry that already exists
   * for this ARN belongs to an earlier role with the same ARN and a different role id. EKS keeps such an
   * entry but it silently stops working; the worker deletes and recreates it (DESIGN §3).
   */
  principalRecreated?: boolean;
}

/** A coded, human-readable reason. Codes are stable API; messages are for people. */
export interface Reason {
  code: string;
  message: string;
}

/** The access a principal has on one cluster, as EKS reports it (or as we want it). */
export interface AccessState {
  /** False when there is no access entry at all. */
  exists: boolean;
  /** STANDARD, EC2_LINUX, ... Access policies and usernames apply to STANDARD only. */
  type?: string;
  kubernetesGroups: string[];
  username?: string;
  policies: PolicyAssociation[];
  /** Tags on the entry; used to tell entries this system created. */
  tags?: Record<string, string>;
}

export const EMPTY_STATE: AccessState = { exists: false, kubernetesGroups: [], policies: [] };

export const MANAGED_TAG_KEY = 'eks-access-grants:managed';
