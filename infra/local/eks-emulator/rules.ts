// EKS's validation rules for access entries and policy associations (DESIGN.md section 3), as pure
// functions that throw the EksApiError the real API answers with.
import { EksApiError } from './errors.js';
import type { AccessEntryType, AccessScope } from './types.js';

export const MANAGED_POLICY_NAMES = [
  'AmazonEKSClusterAdminPolicy',
  'AmazonEKSAdminPolicy',
  'AmazonEKSEditPolicy',
  'AmazonEKSViewPolicy',
  'AmazonEKSAdminViewPolicy',
  'AmazonEKSSecretReaderPolicy',
] as const;

export const policyArnOf = (name: string): string => `arn:aws:eks::aws:cluster-access-policy/${name}`;
export const MANAGED_POLICY_ARNS = new Set<string>(MANAGED_POLICY_NAMES.map(policyArnOf));

export const ENTRY_TYPES = new Set<string>([
  'STANDARD',
  'EC2_LINUX',
  'EC2_WINDOWS',
  'FARGATE_LINUX',
  'EC2',
  'HYBRID_LINUX',
]);
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
    return type === 'FARGATE_LINUX' || type === 'HYBRID_LINUX'
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
  return username;
}

export function validPolicyAndScope(
  policyArn: string,
  scope: AccessScope,
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
