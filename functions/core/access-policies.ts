/**
 * The EKS access-policy catalogue (contract C5): the names the guardrail policy, the Jira mapping and
 * the policy schema accept. Short names expand to `arn:<partition>:eks::aws:cluster-access-policy/<name>`.
 * (The "fidelity" change replaces this list with the full ListAccessPolicies catalogue.)
 */
export const ACCESS_POLICY_NAMES = [
  'AmazonEKSClusterAdminPolicy',
  'AmazonEKSAdminPolicy',
  'AmazonEKSEditPolicy',
  'AmazonEKSViewPolicy',
  'AmazonEKSAdminViewPolicy',
  'AmazonEKSSecretReaderPolicy',
] as const;

export type AccessPolicyName = (typeof ACCESS_POLICY_NAMES)[number];

export function isAccessPolicyName(name: string | undefined): name is AccessPolicyName {
  return (ACCESS_POLICY_NAMES as readonly (string | undefined)[]).includes(name);
}
