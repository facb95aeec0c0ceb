/**
 * Issue 3, property: for random sequences of grants, revokes (by grant id and by name) and
 * expiries, in any order and with duplicates, over an optional pre-existing entry, EKS always
 * holds exactly baseline ∪ active grants.
 *
 * "Expected" comes from a small model written here from the rules, not from
 * computeDesired/planChanges. Each message goes through the real worker handler
 * (h.invoke, one at a time, no queue) against the EKS emulator, dynalite and the
 * Scheduler emulator over HTTP, with an injected clock that the test advances.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expiryRequest } from '../../functions/adapters/scheduler.js';
import type { AuditRecord } from '../../functions/core/audit.js';
import { type AccessRequest, MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { EDIT, VIEW } from '../helpers/fixtures.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const ADMIN_VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy';
const NAMESPACES = ['team-a', 'team-b', 'team-c', 'team-d'];
const GROUPS = ['team-a-readers', 'team-b-readers'];
const SLOTS = 4;
const DAY = 86_400_000;
/** The worker ends a grant on an expiry that arrives at most this long before the grant's end. */
const EARLY_EXPIRY_TOLERANCE_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Scenario shape
// ---------------------------------------------------------------------------------------------

type Scope = { type: 'cluster' } | { type: 'namespace'; namespaces: string[] };
interface Assoc {
  policyArn: string;
  scope: Scope;
}
interface GrantSpec {
  policies: Assoc[];
  groups: string[];
  /** From the start of the run; absent = permanent. */
  expiresInMs?: number;
}
interface BaselineSpec {
  groups: string[];
  policies: Assoc[];
  username?: string;
}
type Command =
  | { kind: 'grant'; slot: number }
  | { kind: 'revokeById'; slot: number }
  | { kind: 'revokeByName'; policies: Assoc[]; groups: string[] }
  /** onTime: the clock first moves to when the schedule would fire; otherwise the expiry may be early. */
  | { kind: 'expire'; slot: number; onTime: boolean }
  | { kind: 'tick'; ms: number };
interface Scenario {
  baseline?: BaselineSpec;
  slots: GrantSpec[];
  commands: Command[];
}

const namespaceSet = fc.subarray(NAMESPACES, { minLength: 1 });
const nsScope = namespaceSet.map((namespaces): Scope => ({ type: 'namespace', namespaces }));
const slot = fc.integer({ min: 0, max: SLOTS - 1 });

const grantSpec: fc.Arbitrary<GrantSpec> = fc
  .record({
    view: fc.option(nsScope, { nil: undefined }),
    edit: fc.option(nsScope, { nil: undefined }),
    groups: fc.subarray(GROUPS),
    expiresInMs: fc.option(fc.integer({ min: 1_000, max: 180_000 }), { nil: undefined, freq: 4 }),
  })
  .filter((s) => s.view !== undefined || s.edit !== undefined || s.groups.length > 0)
  .map((s) => ({
    policies: [
      ...(s.view ? [{ policyArn: VIEW, scope: s.view }] : []),
      ...(s.edit ? [{ policyArn: EDIT, scope: s.edit }] : []),
    ],
    groups: s.groups,
    ...(s.expiresInMs !== undefined && { expiresInMs: s.expiresInMs }),
  }));

const baselineSpec: fc.Arbitrary<BaselineSpec> = fc
  .record({
    groups: fc.subarray(['team-a-readers', 'ops-humans']),
    view: fc.option(fc.oneof(fc.constant<Scope>({ type: 'cluster' }), nsScope), { nil: undefined }),
    edit: fc.option(nsScope, { nil: undefined }),
    // A policy no grant ever names: someone else's, never touched.
    adminView: fc.boolean(),
    username: fc.option(fc.constant('baseline-user'), { nil: undefined }),
  })
  .map((b) => ({
    groups: b.groups,
    policies: [
      ...(b.view ? [{ policyArn: VIEW, scope: b.view }] : []),
      ...(b.edit ? [{ policyArn: EDIT, scope: b.edit }] : []),
      ...(b.adminView ? [{ policyArn: ADMIN_VIEW, scope: { type: 'cluster' } as Scope }] : []),
    ],
    ...(b.username !== undefined && { username: b.username }),
  }));

const revokeByName: fc.Arbitrary<Command> = fc
  .record({
    view: fc.option(fc.oneof({ arbitrary: nsScope, weight: 4 }, fc.constant<Scope>({ type: 'cluster' })), {
      nil: undefined,
    }),
    edit: fc.option(nsScope, { nil: undefined }),
    groups: fc.subarray(GROUPS),
  })
  .map((r) => ({
    kind: 'revokeByName' as const,
    policies: [
      ...(r.view ? [{ policyArn: VIEW, scope: r.view }] : []),
      ...(r.edit ? [{ policyArn: EDIT, scope: r.edit }] : []),
    ],
    groups: r.groups,
  }));

const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: slot.map((s) => ({ kind: 'grant' as const, slot: s })), weight: 5 },
  { arbitrary: slot.map((s) => ({ kind: 'revokeById' as const, slot: s })), weight: 1 },
  { arbitrary: revokeByName, weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant('expire' as const), slot, onTime: fc.boolean() }),
    weight: 3,
  },
  {
    arbitrary: fc.integer({ min: 1_000, max: 90_000 }).map((ms) => ({ kind: 'tick' as const, ms })),
    weight: 2,
  },
);

const scenario: fc.Arbitrary<Scenario> = fc.record({
  baseline: fc.option(baselineSpec, { nil: undefined }),
  slots: fc.array(grantSpec, { minLength: SLOTS, maxLength: SLOTS }),
  commands: fc.array(command, { minLength: 1, maxLength: 24 }),
});

// ---------------------------------------------------------------------------------------------
// The model: the rules, written out independently
// ---------------------------------------------------------------------------------------------

interface ModelGrant {
  policies: Assoc[];
  groups: string[];
  expiresAt?: number;
  status: 'active' | 'revoked' | 'expired';
}

/** What the principal's entry should look like: groups and policy → scope, or no entry. */
interface Access {
  groups: string[];
  policies: Record<string, string[] | 'cluster'>;
}

function union(into: Record<string, string[] | 'cluster'>, a: Assoc): void {
  const had = into[a.policyArn];
  if (had === 'cluster' || a.scope.type === 'cluster') into[a.policyArn] = 'cluster';
  else into[a.policyArn] = [...new Set([...(had ?? []), ...a.scope.namespaces])].sort();
}

/** Baseline ∪ every active grant; no entry when there was none before and nothing is active. */
function expectedAccess(
  baseline: BaselineSpec | undefined,
  grants: Map<number, ModelGrant>,
  clock: number,
): Access | undefined {
  const active = [...grants.values()].filter(
    (g) => g.status === 'active' && (g.expiresAt === undefined || g.expiresAt > clock),
  );
  if (!baseline && active.length === 0) return undefined;
  const policies: Record<string, string[] | 'cluster'> = {};
  const groups = new Set(baseline?.groups ?? []);
  for (const p of baseline?.policies ?? []) union(policies, p);
  for (const g of active) {
    for (const p of g.policies) union(policies, p);
    for (const name of g.groups) groups.add(name);
  }
  return { groups: [...groups].sort(), policies };
}

/** A revoke by name narrows every active grant by what it names; naming nothing revokes them all. */
function narrow(g: ModelGrant, policies: Assoc[], groups: string[]): ModelGrant {
  if (policies.length === 0 && groups.length === 0) return { ...g, status: 'revoked' };
  const keptGroups = g.groups.filter((x) => !groups.includes(x));
  const keptPolicies: Assoc[] = [];
  for (const p of g.policies) {
    const named = policies.find((n) => n.policyArn === p.policyArn);
    if (!named) keptPolicies.push(p);
    else if (named.scope.type === 'namespace' && p.scope.type === 'namespace') {
      const namedNs = named.scope.namespaces;
      const left = p.scope.namespaces.filter((ns) => !namedNs.includes(ns));
      if (left.length > 0)
        keptPolicies.push({ policyArn: p.policyArn, scope: { type: 'namespace', namespaces: left } });
    }
  }
  if (keptGroups.length === 0 && keptPolicies.length === 0) return { ...g, status: 'revoked' };
  return { ...g, groups: keptGroups, policies: keptPolicies };
}

// ---------------------------------------------------------------------------------------------

function toRequestPolicies(policies: Assoc[]): AccessRequest['accessPolicies'] {
  return policies.map((p) => ({
    policyArn: p.policyArn,
    accessScope:
      p.scope.type === 'cluster'
        ? { type: 'cluster' }
        : { type: 'namespace', namespaces: p.scope.namespaces },
  }));
}

describe('convergence property: EKS = baseline ∪ active grants', () => {
  let h: Harness;
  let clock = 0;
  let run = 0;

  beforeAll(async () => {
    h = await startHarness({ now: () => new Date(clock) });
    // Messages are driven by hand; schedules (at the injected clock's times) must not fire on their own.
    h.aws.schedulerEmulator.pause();
  });
  afterAll(async () => {
    await h.close();
  });

  function actualAccess(principalArn: string) {
    const entry = h.eks.snapshot('dev').find((e) => e.principalArn === principalArn);
    if (!entry) return { access: undefined, entry };
    const policies: Record<string, string[] | 'cluster'> = {};
    for (const p of entry.policies) {
      policies[p.policyArn] = p.accessScope.type === 'cluster' ? 'cluster' : p.accessScope.namespaces;
    }
    return { access: { groups: entry.kubernetesGroups, policies } as Access, entry };
  }

  async function execute(sc: Scenario): Promise<void> {
    run += 1;
    const start = Date.UTC(2031, 0, 1) + run * DAY;
    clock = start;
    const principalArn = `arn:aws:iam::111122223333:role/prop/run-${run}`;
    const grantId = (s: number) => `prop-${run}-g${s}`;
    let seeded: ReturnType<typeof actualAccess>['entry'];
    if (sc.baseline) {
      h.eks.seedEntry('dev', {
        principalArn,
        kubernetesGroups: sc.baseline.groups,
        ...(sc.baseline.username !== undefined && { username: sc.baseline.username }),
        policies: sc.baseline.policies.map((p) => ({
          policyArn: p.policyArn,
          accessScope: p.scope.type === 'cluster' ? { type: 'cluster' } : p.scope,
        })),
      });
      seeded = actualAccess(principalArn).entry;
    }

    const ledger = new Map<number, ModelGrant>();
    const trace: string[] = [];

    const send = async (request: AccessRequest, rejectedWith?: string): Promise<AuditRecord> => {
      const before = h.audits().length;
      const response = await h.invoke([JSON.stringify(request)]);
      const added = h.audits().slice(before);
      trace.push(`${request.action}/${request.source} ${request.requestId} → ${added.map((a) => a.outcome)}`);
      expect(response.batchItemFailures, trace.join('\n')).toEqual([]);
      expect(added, trace.join('\n')).toHaveLength(1);
      const audit = added[0] as AuditRecord;
      if (rejectedWith) {
        expect(audit, trace.join('\n')).toMatchObject({
          outcome: 'rejected',
          reason: { code: rejectedWith },
        });
      } else {
        expect(['granted', 'revoked', 'expired', 'unchanged'], trace.join('\n')).toContain(audit.outcome);
      }
      return audit;
    };

    let lastConverged = actualAccess(principalArn).access;
    for (const cmd of sc.commands) {
      let rejectedWith: string | undefined;
      switch (cmd.kind) {
        case 'tick':
          clock += cmd.ms;
          trace.push(`tick +${cmd.ms}`);
          continue;
        case 'grant': {
          const spec = sc.slots[cmd.slot] as GrantSpec;
          const expiresAt = spec.expiresInMs === undefined ? undefined : start + spec.expiresInMs;
          if (expiresAt !== undefined && expiresAt <= clock) rejectedWith = 'ALREADY_EXPIRED';
          else if (!ledger.has(cmd.slot)) {
            ledger.set(cmd.slot, {
              policies: spec.policies,
              groups: spec.groups,
              ...(expiresAt !== undefined && { expiresAt }),
              status: 'active',
            });
          }
          // A duplicate is the same message again: same id, same body.
          await send(
            {
              schemaVersion: 1,
              requestId: grantId(cmd.slot),
              action: 'grant',
              source: 'ticket',
              clusterName: 'dev',
              principalArn,
              ...(spec.policies.length > 0 && { accessPolicies: toRequestPolicies(spec.policies) }),
              ...(spec.groups.length > 0 && { kubernetesGroups: spec.groups }),
              ...(expiresAt !== undefined && { expiresAt: new Date(expiresAt).toISOString() }),
              requestedBy: 'prop@example.com',
            },
            rejectedWith,
          );
          break;
        }
        case 'revokeById': {
          const g = ledger.get(cmd.slot);
          if (!g) rejectedWith = 'GRANT_NOT_FOUND';
          else if (g.status === 'active') g.status = 'revoked';
          await send(
            {
              schemaVersion: 1,
              requestId: `prop-${run}-revoke-${trace.length}`,
              action: 'revoke',
              source: 'ticket',
              clusterName: 'dev',
              principalArn,
              grantId: grantId(cmd.slot),
            },
            rejectedWith,
          );
          break;
        }
        case 'revokeByName': {
          for (const [s, g] of ledger)
            if (g.status === 'active') ledger.set(s, narrow(g, cmd.policies, cmd.groups));
          await send({
            schemaVersion: 1,
            requestId: `prop-${run}-narrow-${trace.length}`,
            action: 'revoke',
            source: 'ticket',
            clusterName: 'dev',
            principalArn,
            ...(cmd.policies.length > 0 && { accessPolicies: toRequestPolicies(cmd.policies) }),
            ...(cmd.groups.length > 0 && { kubernetesGroups: cmd.groups }),
          });
          break;
        }
        case 'expire': {
          const spec = sc.slots[cmd.slot] as GrantSpec;
          // Only time-boxed grants get a schedule.
          if (spec.expiresInMs === undefined) continue;
          const expiresAt = start + spec.expiresInMs;
          // Scheduler's at() has whole seconds, rounded up.
          if (cmd.onTime) clock = Math.max(clock, Math.ceil(expiresAt / 1000) * 1000);
          const g = ledger.get(cmd.slot);
          if (!g) rejectedWith = 'GRANT_NOT_FOUND';
          else if (g.status === 'active' && expiresAt <= clock + EARLY_EXPIRY_TOLERANCE_MS)
            g.status = 'expired';
          await send(expiryRequest({ clusterName: 'dev', principalArn }, grantId(cmd.slot)), rejectedWith);
          break;
        }
      }

      const { access, entry } = actualAccess(principalArn);
      if (rejectedWith) {
        // A rejected request changes nothing.
        expect(access, trace.join('\n')).toEqual(lastConverged);
        continue;
      }
      expect(access, trace.join('\n')).toEqual(expectedAccess(sc.baseline, ledger, clock));
      if (entry && seeded) {
        // A pre-existing entry keeps its identity: username and tags are not ours to change.
        expect(entry.username).toBe(seeded.username);
        expect(entry.tags).toEqual(seeded.tags);
      } else if (entry) {
        expect(entry.tags[MANAGED_TAG_KEY]).toBe('true');
      }
      lastConverged = access;
    }
  }

  test('random grants, revokes and expiries in any order, with duplicates, converge to baseline ∪ active grants', async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        await execute(sc);
      }),
      // Fixed seed, so a failure reproduces; CONVERGENCE_SEED explores other sequences locally.
      { seed: Number(process.env.CONVERGENCE_SEED ?? 20_260_311), numRuns: 150 },
    );
    const outcomes: Record<string, number> = {};
    for (const a of h.audits()) {
      const key = a.reason ? `${a.outcome}:${a.reason.code}` : a.outcome;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    console.info(
      `convergence property: ${run} runs, ${h.audits().length} messages in ${Date.now() - started} ms`,
      outcomes,
    );
    // A ceiling for a stuck run: it took 201 s of the former 300 s on a busy machine.
  }, 600_000);
});
