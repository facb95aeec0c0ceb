import { describe, expect, test } from 'vitest';
import { ACCESS_POLICY_NAMES, isAccessPolicyName } from '../../functions/core/access-policies.js';
import { MANAGED_POLICY_NAMES } from '../../infra/local/eks-emulator.js';

// aws-cli awscli/examples/eks/list-access-policies.rst: what real ListAccessPolicies returned.
const AWS_CLI_EXAMPLE = [
  'AmazonEKSAdminPolicy',
  'AmazonEKSAdminViewPolicy',
  'AmazonEKSAutoNodePolicy',
  'AmazonEKSBlockStorageClusterPolicy',
  'AmazonEKSBlockStoragePolicy',
  'AmazonEKSClusterAdminPolicy',
  'AmazonEKSComputeClusterPolicy',
  'AmazonEKSComputePolicy',
  'AmazonEKSEditPolicy',
  'AmazonEKSHybridPolicy',
  'AmazonEKSLoadBalancingClusterPolicy',
  'AmazonEKSLoadBalancingPolicy',
  'AmazonEKSNetworkingClusterPolicy',
  'AmazonEKSNetworkingPolicy',
  'AmazonEKSViewPolicy',
  'AmazonEMRJobPolicy',
  'AmazonSagemakerHyperpodClusterPolicy',
  'AmazonSagemakerHyperpodControllerPolicy',
  'AmazonSagemakerHyperpodSystemNamespacePolicy',
];
// EKS user guide, "Review access policy permissions": newer than that example.
const USER_GUIDE_ADDITIONS = [
  'AmazonAIOpsAssistantPolicy',
  'AmazonARCRegionSwitchScalingPolicy',
  'AmazonEKSClusterInsightsPolicy',
  'AmazonEKSSecretReaderPolicy',
];

describe('the access-policy catalogue (contract C5)', () => {
  test('holds every policy of the aws-cli example and the newer user-guide ones, once each', () => {
    expect([...ACCESS_POLICY_NAMES].sort()).toEqual([...AWS_CLI_EXAMPLE, ...USER_GUIDE_ADDITIONS].sort());
    expect(new Set(ACCESS_POLICY_NAMES).size).toBe(ACCESS_POLICY_NAMES.length);
  });

  test('is the same set as the EKS emulator serves from its own, independent copy', () => {
    expect([...MANAGED_POLICY_NAMES].sort()).toEqual([...ACCESS_POLICY_NAMES].sort());
  });

  test('knows a catalogue name and refuses others', () => {
    expect(isAccessPolicyName('AmazonEKSAutoNodePolicy')).toBe(true);
    expect(isAccessPolicyName('AmazonEKSReadPolicy')).toBe(false);
    expect(isAccessPolicyName(undefined)).toBe(false);
  });
});
