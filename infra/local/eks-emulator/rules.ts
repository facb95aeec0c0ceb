// EKS's validation rules for access entries and policy associations (DESIGN.md section 3), as pure
// functions that throw the EksApiError the real API answers with.
import { EksApiError } from './errors.js';
import type { AccessEntryType, AccessScope } from './types.js';

// The emulator's own copy of the catalogue `ListAccessPolicies` serves, kept apart from functions/ on
// purpose: a policy the system names but EKS does not know must fail here as it would on AWS.
// Sources: aws-cli `awscli/examples/eks/list-access-policies.rst` (19 names) and the EKS user guide,
// "Review access policy permissions" (AIOpsAssistant and ARCRegionSwitchScaling in its list example;
// ClusterInsights published 2024-12-02; SecretReader published 2025-11-06).
export const MANAGED_POLICY_NAMES = [
  'AmazonAIOpsAssistantPolicy',
  'AmazonARCRegionSwitchScalingPolicy',
  'AmazonEKSAdminPolicy',
  'AmazonEKSAdminViewPolicy',
  'AmazonEKSAutoNodePolicy',
  'AmazonEKSBlockStorageClusterPolicy',
  'AmazonEKSBlockStoragePolicy',
  'AmazonEKSClusterAdminPolicy',
  'AmazonEKSClusterInsightsPolicy',
  'AmazonEKSComputeClusterPolicy',
  'AmazonEKSComputePolicy',
  'AmazonEKSEditPolicy',
  'AmazonEKSHybridPolicy',
  'AmazonEKSLoadBalancingClusterPolicy',
  'AmazonEKSLoadBalancingPolicy',
  'AmazonEKSNetworkingClusterPolicy',
  'AmazonEKSNetworkingPolicy',
  'AmazonEKSSecretReaderPolicy',
  'AmazonEKSViewPolicy',
  'AmazonEMRJobPolicy',
  'AmazonSagemakerHyperpodClusterPolicy',
  'AmazonSagemakerHyperpodControllerPolicy',
  'AmazonSagemakerHyperpodSystemNamespacePolicy',
] as const;

export const policyArnOf = (name: string): string => `arn:aws:eks::aws:cluster-access-policy/${name}`;
export const MANAGED_POLICY_ARNS = new Set<string>(MANAGED_POLICY_NAMES.map(policyArnOf));

// botocore service-2.json, CreateAccessEntryRequest.type: "Valid values are STANDARD, FARGATE_LINUX,
// EC2_LINUX, EC2_WINDOWS, EC2 (for EKS Auto Mode), HYBRID_LINUX, and HYPERPOD_LINUX."
export const ENTRY_TYPES = new Set<string>([
  'STANDARD',
  'EC2_LINUX',
  'EC2_WINDOWS',
  'FARGATE_LINUX',
  'EC2',
  'HYBRID_LINUX',
  'HYPERPOD_LINUX',
]);

/**
 * Which access policies an entry type takes. EKS user guide: "You can assign one or more access
 * policies to access entries of type STANDARD" (access-policies.adoc), and an EKS Auto Mode custom
 * node class needs an `EC2` entry associated with AmazonEKSAutoNodePolicy, scope cluster
 * (create-node-class.adoc, "Create node class access entry"; eksctl#8098). For the other node types
 * the API model says "you can't ... associate an AccessPolicy to the access entry".
 */
export function policiesAllowedFor(type: AccessEntryType): 'all' | readonly string[] {
  if (type === 'STANDARD') return 'all';
  if (type === 'EC2') return [policyArnOf('AmazonEKSAutoNodePolicy')];
  return [];
}

/** The text EKS answers an access-policy operation on a node entry with (aws-controllers-k8s/community#2144). */
export const STANDARD_ONLY_MESSAGE =
  'This operation can only be performed on Access Entries with a type of "STANDARD".';

/**
 * EKS user guide, "Create access entries": "Access entries do not support service linked roles ...
 * the format arn:aws:iam::*:role/aws-service-role/*". The API's answer is quoted in
 * terraform-provider-aws#36447.
 */
export const SERVICE_LINKED_ROLE_MESSAGE =
  'The caller is not allowed to modify access entries with a principalArn value of a Service Linked Role';
export const isServiceLinkedRole = (arn: string): boolean => /:role\/aws-service-role\//.test(arn);

/**
 * The project's ceiling on namespaces per access scope. The API model gives AccessScope.namespaces no
 * maximum and neither the API reference, the user guide nor the issue threads we found state one; the
 * emulator enforces this (configurable) ceiling so that anything sending more fails loudly here.
 */
export const DEFAULT_MAX_NAMESPACES_PER_SCOPE = 50;

const RESERVED_USERNAME_PREFIXES = ['system:', 'eks:', 'aws:', 'amazon:', 'iam:'];
// An IAM role or user ARN, path allowed; the name is the last segment. STS assumed-role ARNs do not match.
const PRINCIPAL_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)\/(?:[\x21-\x7e]*\/)?([\w+=,.@-]{1,64})$/;
// A DNS-1123 label, optionally a prefix ending in `*` (EKS accepts wildcard namespace scopes).
const NAMESPACE = /^(?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|[a-z0-9][-a-z0-9]{0,61}\*|\*)$/;

export interface ParsedPrincipal {
  partition: string;
  account: string;
  kind: 'role' | 'user';
  name: string;
}

export function parsePrincipal(arn: string): ParsedPrincipal {
  const m = PRINCIPAL_ARN.exec(arn);
  if (!m) {
    throw new EksApiError(
      'InvalidParameterException',
      `The principalArn ${arn} is not a valid IAM role or user ARN.`,
    );
  }
  return { partition: m[1]!, account: m[2]!, kind: m[3] as 'role' | 'user', name: m[4]! };
}

export function validGroups(type: AccessEntryType, groups: string[] | undefined): string[] {
  if (type !== 'STANDARD') {
    if (groups !== undefined && groups.length > 0) {
      throw new EksApiError(
        'InvalidParameterException',
        `kubernetesGroups cannot be set for ${type} access entries.`,
      );
    }
    // EKS manages node entries' groups itself; this approximates what it reports.
    return ['system:nodes'];
  }
  for (const g of groups ?? []) {
    if (g.startsWith('system:')) {
      throw new EksApiError(
        'InvalidParameterException',
        `The kubernetes group name ${g} is invalid, it cannot start with system:`,
      );
    }
    if (g.length === 0)
      throw new EksApiError('InvalidParameterException', 'A kubernetes group name cannot be empty.');
  }
  return [...new Set(groups ?? [])];
}

export function validUsername(
  type: AccessEntryType,
  p: ParsedPrincipal,
  username: string | undefined,
): string {
  if (type !== 'STANDARD') {
    if (username !== undefined) {
      throw new EksApiError(
        'InvalidParameterException',
        `username cannot be set for ${type} access entries.`,
      );
    }
    // The user guide's table gives these for EC2_LINUX/EC2_WINDOWS, FARGATE_LINUX and HYBRID_LINUX; for
    // EC2 and HYPERPOD_LINUX it gives none, so these two are approximations.
    return type === 'FARGATE_LINUX' || type === 'HYBRID_LINUX' || type === 'HYPERPOD_LINUX'
      ? 'system:node:{{SessionName}}'
      : 'system:node:{{EC2PrivateDNSName}}';
  }
  if (username === undefined) {
    return p.kind === 'role'
      ? `arn:${p.partition}:sts::${p.account}:assumed-role/${p.name}/{{SessionName}}`
      : `arn:${p.partition}:iam::${p.account}:user/${p.name}`;
  }
  if (username.length === 0) throw new EksApiError('InvalidParameterException', 'username cannot be empty.');
  const reserved = RESERVED_USERNAME_PREFIXES.find((prefix) => username.startsWith(prefix));
  if (reserved !== undefined) {
    throw new EksApiError(
      'InvalidParameterException',
      `The username ${username} is invalid, it cannot start with ${reserved}`,
    );
  }
  // EKS user guide, "Create access entries": with {{SessionName}} or {{SessionNameRaw}} "the username
  // must include a colon before {{SessionName}} ... you can't have a username of john{{SessionName}}".
  const template = username.indexOf('{{SessionName');
  if (template >= 0 && !username.slice(0, template).includes(':')) {
    throw new EksApiError(
      'InvalidParameterException',
      `The username ${username} is invalid, it must include a colon before {{SessionName}}`,
    );
  }
  return username;
}

/**
 * botocore service-2.json, TagMap: "min": 1, "max": 50; TagKey 1–128 characters, TagValue at most 256.
 * An absent map is fine; an empty one is not.
 */
export function validTags(tags: Record<string, string> | undefined): Record<string, string> {
  if (tags === undefined) return {};
  const entries = Object.entries(tags);
  if (entries.length < 1 || entries.length > 50) {
    throw new EksApiError(
      'InvalidParameterException',
      `tags must have between 1 and 50 entries; got ${entries.length}.`,
    );
  }
  for (const [k, v] of entries) {
    if (k.length < 1 || k.length > 128 || v.length > 256) {
      throw new EksApiError('InvalidParameterException', `The tag ${k} is invalid.`);
    }
  }
  return { ...tags };
}

export function validPolicyAndScope(
  policyArn: string,
  scope: AccessScope,
  maxNamespaces: number = DEFAULT_MAX_NAMESPACES_PER_SCOPE,
): { type: 'cluster' | 'namespace'; namespaces: string[] } {
  // Real EKS may answer ResourceNotFoundException here; InvalidParameterException keeps it non-retryable
  // and distinct from the eventual-consistency 404 that callers retry.
  if (!MANAGED_POLICY_ARNS.has(policyArn)) {
    throw new EksApiError(
      'InvalidParameterException',
      `The policyArn ${policyArn} is not a valid access policy.`,
    );
  }
  const namespaces = scope.namespaces ?? [];
  if (!Array.isArray(namespaces) || namespaces.some((n) => typeof n !== 'string')) {
    throw new EksApiError('InvalidParameterException', 'accessScope.namespaces must be a list of strings.');
  }
  if (scope.type === 'cluster') {
    if (namespaces.length > 0) {
      throw new EksApiError(
        'InvalidParameterException',
        'Namespaces cannot be specified for a cluster access scope.',
      );
    }
  } else if (scope.type === 'namespace') {
    if (namespaces.length === 0) {
      throw new EksApiError(
        'InvalidParameterException',
        'At least one namespace is required for a namespace access scope.',
      );
    }
    if (new Set(namespaces).size > maxNamespaces) {
      throw new EksApiError(
        'InvalidParameterException',
        `An access scope can name at most ${maxNamespaces} namespaces; got ${new Set(namespaces).size}.`,
      );
    }
    const bad = namespaces.find((n) => !NAMESPACE.test(n));
    if (bad !== undefined)
      throw new EksApiError('InvalidParameterException', `The namespace ${bad} is invalid.`);
  } else {
    throw new EksApiError(
      'InvalidParameterException',
      `The access scope type ${String(scope.type)} is invalid.`,
    );
  }
  return { type: scope.type, namespaces: [...new Set(namespaces)] };
}
