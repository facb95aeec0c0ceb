// The restJson1 routes of the access-entry operations, as the SDK's operation schemas declare them
// (@aws-sdk/client-eks, `{ http: [method, uriPattern, 200] }`). ARN labels arrive percent-encoded
// with `/` as %2F, so each one is a single path segment.
import type { EksOperation } from './types.js';

export interface Route {
  operation: EksOperation;
  clusterName?: string;
  principalArn?: string;
  policyArn?: string;
}

export function matchRoute(method: string, pathname: string): Route | undefined {
  const raw = pathname.split('/').slice(1);
  let seg: string[];
  try {
    seg = raw.map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
  const [root, cluster, entries, principal, policies, policy] = seg;

  if (root === 'access-policies' && seg.length === 1) {
    return method === 'GET' ? { operation: 'ListAccessPolicies' } : undefined;
  }
  if (root !== 'clusters' || cluster === undefined || cluster === '') return undefined;
  if (seg.length === 2) {
    return method === 'GET' ? { operation: 'DescribeCluster', clusterName: cluster } : undefined;
  }
  if (entries !== 'access-entries') return undefined;
  if (seg.length === 3) {
    if (method === 'POST') return { operation: 'CreateAccessEntry', clusterName: cluster };
    if (method === 'GET') return { operation: 'ListAccessEntries', clusterName: cluster };
    return undefined;
  }
  if (principal === undefined || principal === '') return undefined;
  const onEntry = { clusterName: cluster, principalArn: principal };
  if (seg.length === 4) {
    if (method === 'GET') return { operation: 'DescribeAccessEntry', ...onEntry };
    if (method === 'POST') return { operation: 'UpdateAccessEntry', ...onEntry };
    if (method === 'DELETE') return { operation: 'DeleteAccessEntry', ...onEntry };
    return undefined;
  }
  if (policies !== 'access-policies') return undefined;
  if (seg.length === 5) {
    if (method === 'POST') return { operation: 'AssociateAccessPolicy', ...onEntry };
    if (method === 'GET') return { operation: 'ListAssociatedAccessPolicies', ...onEntry };
    return undefined;
  }
  if (seg.length === 6 && method === 'DELETE' && policy !== undefined && policy !== '') {
    return { operation: 'DisassociateAccessPolicy', ...onEntry, policyArn: policy };
  }
  return undefined;
}
