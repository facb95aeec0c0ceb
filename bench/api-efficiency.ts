/**
 * API efficiency: the EKS calls one request costs, reads and writes apart, for each kind of request,
 * counted at the EKS emulator (every HTTP call it received; no faults are injected, so there are no
 * retries in the counts). Each case has the minimum a correct plan needs, worked out by hand below from
 * the EKS API (DESIGN.md §3), so "more than the plan needs" is visible.
 */
import { expiryRequest } from '../functions/adapters/scheduler.js';
import type { AccessRequest } from '../functions/core/types.js';
import { fixture } from '../test/helpers/fixtures.js';
import { type Harness, startHarness } from '../test/helpers/harness.js';
import type { SummaryRow } from './lib/report.js';

const READS = new Set([
  'DescribeAccessEntry',
  'ListAssociatedAccessPolicies',
  'ListAccessEntries',
  'DescribeCluster',
]);
const VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
const TEAM_A = 'arn:aws:iam::111122223333:role/team-a-dev';

export interface ApiCase {
  case: string;
  /** Calls made, in order. */
  calls: string[];
  reads: number;
  writes: number;
  /** The least a correct implementation must call. */
  minReads: number;
  minWrites: number;
  why: string;
  outcome: string;
}

export interface PendingCase {
  case: string;
  status: 'pending';
  note: string;
}

export interface ApiEfficiencyResult {
  cases: Array<ApiCase | PendingCase>;
}

/** The worker's clock, moved by a scenario so a time-boxed grant is due without waiting for it. */
interface Clock {
  offsetMs: number;
}

interface Scenario {
  case: string;
  minReads: number;
  minWrites: number;
  why: string;
  /** State before the measured request (not counted). */
  setup?: (h: Harness, clock: Clock) => Promise<void>;
  /** The measured request. */
  request: AccessRequest;
}

const grant = (requestId: string, namespaces: string[], groups?: string[]) =>
  fixture('dev-view-grant', {
    requestId,
    kubernetesGroups: groups,
    accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'namespace', namespaces } }],
  });

const revoke = (requestId: string, grantId: string) => fixture('dev-view-revoke', { requestId, grantId });

const granted =
  (...requests: AccessRequest[]) =>
  async (h: Harness): Promise<void> => {
    for (const r of requests) await h.send(r);
  };

const HOUR_MS = 3_600_000;
// A one-hour grant on an entry we create, so its expiry removes everything (Delete).
const timeBoxed = { ...grant('g1', ['team-a'], ['team-a-readers']), duration: 'PT1H' };
// What the grant's schedule would deliver; the same body the reconciler re-enqueues for a lost schedule.
const expiry = expiryRequest(timeBoxed, 'g1');

/** Grants, then moves the clock past the expiry (the worker ignores an expiry more than 60 s early). */
const grantedThenDue = async (h: Harness, clock: Clock): Promise<void> => {
  await h.send(timeBoxed);
  await h.drain();
  clock.offsetMs = HOUR_MS + 1000;
};

const SCENARIOS: Scenario[] = [
  {
    case: 'new grant (no entry yet)',
    minReads: 1,
    minWrites: 2,
    why: 'Describe (404); Create (groups, tag); Associate (a create cannot carry policies)',
    request: grant('g1', ['team-a'], ['team-a-readers']),
  },
  {
    case: 'new grant (entry exists, not ours)',
    minReads: 2,
    minWrites: 2,
    why: 'Describe + ListAssociated; Update (merged groups); Associate',
    setup: async (h) => h.eks.seedEntry('dev', { principalArn: TEAM_A, kubernetesGroups: ['ops-humans'] }),
    request: grant('g1', ['team-a'], ['team-a-readers']),
  },
  {
    case: 'scope change (wider namespaces)',
    minReads: 2,
    minWrites: 1,
    why: 'Describe + ListAssociated; one Associate replaces the scope',
    setup: granted(grant('g1', ['team-a'])),
    request: grant('g2', ['team-b']),
  },
  {
    case: 'unchanged repeat',
    minReads: 2,
    minWrites: 0,
    why: 'Describe + ListAssociated to confirm; nothing to write',
    setup: granted(grant('g1', ['team-a'])),
    request: grant('g1', ['team-a']),
  },
  {
    case: 'revoke (another grant remains)',
    minReads: 2,
    minWrites: 1,
    why: 'Describe + ListAssociated; one Associate narrows the scope',
    setup: granted(grant('g1', ['team-a']), grant('g2', ['team-b'])),
    request: revoke('r1', 'g1'),
  },
  {
    case: 'revoke (last grant, our entry)',
    minReads: 2,
    minWrites: 1,
    why: 'Describe + ListAssociated; Delete drops the entry and its policies',
    setup: granted(grant('g1', ['team-a'], ['team-a-readers'])),
    request: revoke('r1', 'g1'),
  },
  {
    case: 'expiry',
    minReads: 2,
    minWrites: 1,
    why: 'Describe + ListAssociated; Delete drops the entry and its policies (Disassociate if other access remained)',
    setup: grantedThenDue,
    request: expiry,
  },
  {
    case: 'expiry replayed',
    minReads: 1,
    minWrites: 0,
    // A replay is the schedule firing after the reconciler re-enqueued it, or a redelivery.
    why: 'Describe (404) confirms the entry is gone; the ledger alone cannot tell a finished expiry from one whose attempt died between the ledger write and EKS',
    setup: async (h, clock) => {
      await grantedThenDue(h, clock);
      await h.send(expiry);
    },
    request: expiry,
  },
];

export async function apiEfficiency(opts: { log: (s: string) => void }): Promise<ApiEfficiencyResult> {
  const cases: Array<ApiCase | PendingCase> = [];
  for (const s of SCENARIOS) {
    const clock: Clock = { offsetMs: 0 };
    const h = await startHarness({ now: () => new Date(Date.now() + clock.offsetMs) });
    try {
      await s.setup?.(h, clock);
      await h.drain();
      h.eks.resetCalls();
      await h.send(s.request);
      await h.drain();
      const calls = h.eks.calls().map((c) => c.operation);
      const reads = calls.filter((c) => READS.has(c)).length;
      cases.push({
        case: s.case,
        calls,
        reads,
        writes: calls.length - reads,
        minReads: s.minReads,
        minWrites: s.minWrites,
        why: s.why,
        outcome: h.auditsFor(s.request.requestId).at(-1)?.outcome ?? 'none',
      });
      opts.log(`api: ${s.case}: ${calls.join(', ') || 'no calls'}`);
    } finally {
      await h.close();
    }
  }
  return { cases };
}

export function apiEfficiencySummary(result: ApiEfficiencyResult): SummaryRow[] {
  return result.cases.map((c): SummaryRow => {
    if ('status' in c) {
      return {
        benchmark: 'API efficiency',
        case: c.case,
        figure: 'pending',
        target: 'no writes if unchanged',
        status: 'pending',
      };
    }
    const ok = c.writes <= c.minWrites && c.reads <= c.minReads;
    return {
      benchmark: 'API efficiency',
      case: c.case,
      figure: `${c.reads} reads + ${c.writes} writes (${c.outcome})`,
      target: `≤ ${c.minReads} + ${c.minWrites}`,
      status: ok ? 'pass' : 'FAIL',
    };
  });
}
