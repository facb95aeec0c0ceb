/**
 * Seeded request streams shaped by the sample policy (infra/policy.example.yaml): dev takes ticket grants
 * of View/Edit on team-* namespaces with team-*-readers groups and iam-role-created View grants; prod takes
 * time-boxed, approved ticket View grants. Every generated request is valid, so the model in
 * access-model.ts can predict each outcome.
 */
import type { AccessRequest } from '../../functions/core/types.js';
import type { SeedEntry } from '../../infra/local/eks-emulator.js';
import type { ModelAccess } from './access-model.js';

export const ACCOUNT = '111122223333';
export const VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
export const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
const TEAMS = ['a', 'b', 'c', 'd', 'e', 'f'];

/** mulberry32: tiny, fast, and the same sequence everywhere for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface Principal {
  clusterName: 'dev' | 'prod';
  principalArn: string;
  /** The entry the principal had before any request (seeded into the emulator), if any. */
  seed?: SeedEntry;
  baseline?: ModelAccess;
}

export interface Message {
  clusterName: string;
  principalArn: string;
  body: string;
  request: AccessRequest;
}

export interface Workload {
  principals: Principal[];
  /** In send order; per principal, the order its requests must be applied in. */
  messages: Message[];
}

/**
 * `requests` requests over `principals` (cluster, principal) pairs. A fifth of the pairs are on prod and
 * share their role with a dev pair (same ARN, two clusters, two FIFO groups); a fifth start with an
 * access entry of their own (a baseline the system must preserve). Per principal: a first grant, then
 * new grants, revokes of earlier grants (some already revoked), exact re-sends of earlier messages, and a
 * few revokes of grants that never existed.
 */
export function faultWorkload(
  random: () => number,
  opts: { requests: number; principals: number },
): Workload {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const principals: Principal[] = [];
  for (let i = 0; i < opts.principals; i++) {
    const onProd = i % 5 === 4;
    const principalArn = `arn:aws:iam::${ACCOUNT}:role/reliability/p${onProd ? i - 4 : i}`;
    const p: Principal = { clusterName: onProd ? 'prod' : 'dev', principalArn };
    if (!onProd && i % 10 === 3) {
      p.seed = {
        principalArn,
        kubernetesGroups: ['ops-humans'],
        policies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['team-a'] } }],
      };
      p.baseline = {
        groups: ['ops-humans'],
        policies: { [VIEW]: { type: 'namespace', namespaces: ['team-a'] } },
      };
    } else if (!onProd && i % 10 === 7) {
      p.seed = { principalArn, kubernetesGroups: ['team-b-readers'] };
      p.baseline = { groups: ['team-b-readers'], policies: {} };
    }
    principals.push(p);
  }

  const namespaces = (max: number): string[] => {
    const out = new Set<string>();
    const n = 1 + Math.floor(random() * max);
    while (out.size < n) out.add(random() < 0.1 ? 'team-z-preview-*' : `team-${pick(TEAMS)}`);
    return [...out];
  };

  const grant = (p: Principal, requestId: string): AccessRequest => {
    const base = {
      schemaVersion: 1 as const,
      requestId,
      action: 'grant' as const,
      clusterName: p.clusterName,
      principalArn: p.principalArn,
    };
    if (p.clusterName === 'prod') {
      return {
        ...base,
        source: 'ticket',
        accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces: namespaces(2) } }],
        duration: `PT${1 + Math.floor(random() * 8)}H`,
        requestedBy: 'alice@example.com',
        approvedBy: ['bob@example.com'],
        ticket: `OPS-${requestId}`,
      };
    }
    if (random() < 0.15) {
      return {
        ...base,
        source: 'iam-role-created',
        accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces: namespaces(2) } }],
      };
    }
    const policies = [VIEW, EDIT].filter(() => random() < 0.6);
    const groups = [...new Set(Array.from({ length: Math.floor(random() * 3) }, () => pick(TEAMS)))].map(
      (t) => `team-${t}-readers`,
    );
    if (policies.length === 0 && groups.length === 0) policies.push(VIEW);
    return {
      ...base,
      source: 'ticket',
      ...(groups.length > 0 && { kubernetesGroups: groups }),
      ...(policies.length > 0 && {
        accessPolicies: policies.map((policyArn) => ({
          policyArn,
          accessScope: { type: 'namespace' as const, namespaces: namespaces(3) },
        })),
      }),
      requestedBy: 'alice@example.com',
      ticket: `OPS-${requestId}`,
    };
  };

  const revoke = (p: Principal, requestId: string, grantId: string): AccessRequest => ({
    schemaVersion: 1,
    requestId,
    action: 'revoke',
    source: 'ticket',
    clusterName: p.clusterName,
    principalArn: p.principalArn,
    grantId,
    requestedBy: 'alice@example.com',
  });

  // Per principal streams first, then interleaved at random: only the order within a stream matters.
  const perPrincipal = Math.max(1, Math.floor(opts.requests / opts.principals));
  const streams = principals.map((p, i) => {
    const length = perPrincipal + (i < opts.requests - perPrincipal * opts.principals ? 1 : 0);
    const out: Message[] = [];
    const grantIds: string[] = [];
    for (let k = 0; k < length; k++) {
      const requestId = `r${i}-${k}`;
      const roll = random();
      let request: AccessRequest;
      if (k === 0 || roll < 0.55) {
        request = grant(p, requestId);
        grantIds.push(requestId);
      } else if (roll < 0.85) {
        request = revoke(p, requestId, pick(grantIds));
      } else if (roll < 0.95) {
        out.push({ ...pick(out) });
        continue;
      } else {
        request = revoke(p, requestId, `never-granted-${i}-${k}`);
      }
      out.push({
        clusterName: p.clusterName,
        principalArn: p.principalArn,
        body: JSON.stringify(request),
        request,
      });
    }
    return out;
  });
  const order = streams.flatMap((s, i) => s.map(() => i));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const cursor = streams.map(() => 0);
  const messages = order.map((i) => streams[i]![cursor[i]!++]!);
  return { principals, messages };
}
