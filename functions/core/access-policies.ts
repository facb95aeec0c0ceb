/**
 * The EKS access-policy catalogue: every policy `ListAccessPolicies` returns (contract C5).
 * The guardrail policy may name any of them; a name outside this list is a policy-file
 * error at cold start. Which of them a cluster actually grants is the guardrail policy's
 * business, not this list's.
 *
 * Sources (checked for this list):
 * - aws-cli `awscli/examples/eks/list-access-policies.rst`: the 19 names from
 *   AmazonEKSAdminPolicy to AmazonSagemakerHyperpodSystemNamespacePolicy.
 * - EKS user guide, "Review access policy permissions" (access-policy-reference.adoc): adds
 *   AmazonAIOpsAssistantPolicy and AmazonARCRegionSwitchScalingPolicy (its list example),
 *   AmazonEKSClusterInsightsPolicy (published 2024-12-02) and AmazonEKSSecretReaderPolicy
 *   (published 2025-11-06).
 * Short names expand to `arn:<partition>:eks::aws:cluster-access-policy/<name>`.
 */
export const ACCESS_POLICY_NAMES = [
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

export type AccessPolicyName = (typeof ACCESS_POLICY_NAMES)[number];

export function isAccessPolicyName(name: string | undefined): name is AccessPolicyName {
  return (ACCESS_POLICY_NAMES as readonly (string | undefined)[]).includes(name);
}
