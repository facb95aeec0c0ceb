/**
 * `plan --file F` (`-` for stdin): a dry run of an AccessRequest against the live state. Validation,
 * the policy decision and the rule that decided, then the EKS calls the worker would make now: the same
 * core functions the worker runs (parseAccessRequest, decide, computeDesired, planChanges) over a ledger
 * read and an EKS read. It writes nothing anywhere: every call it makes is a read (DynamoDB Query,
 * DescribeAccessEntry, ListAssociatedAccessPolicies).
 */
import { readFile } from 'node:fs/promises';
import { callInput, type EksCallInput } from '../../../functions/adapters/eks.js';
import { clusterArn } from '../../../functions/core/cluster-target.js';
import { computeDesired } from '../../../functions/core/desired.js';
import { planChanges, planRecreate } from '../../../functions/core/plan.js';
import { decide } from '../../../functions/core/policy.js';
import { parseAccessRequest } from '../../../functions/core/request.js';
import type { AccessState, Reason } from '../../../functions/core/types.js';
import { loadPolicyFile } from '../../policy-file.js';
import { placeOf, readingCluster } from '../clusters.js';
import { type Command, optStr, str } from '../context.js';
import { CliError } from '../errors.js';
import { table } from '../output.js';
import { simulateLedger } from '../simulate.js';

export interface PlanResult {
  allowed: boolean;
  /** The policy path that allowed it, e.g. clusters.dev.rules.ticket. */
  rule?: string;
  /** The EKS cluster the calls go to (fleet: which account and region); absent when the policy does not name it. */
  clusterArn?: string;
  reason?: Reason;
  expiresAt?: string;
  /** The EKS calls the worker would make, in order, with their parameters. */
  calls: EksCallInput[];
  /** EKS now, and as it would be after the calls. */
  current?: AccessState;
  after?: AccessState;
  note?: string;
}

export const plan: Command = {
  spec: {
    name: 'plan',
    summary:
      'dry run of an AccessRequest: validation, policy decision and rule, the exact EKS calls; writes nothing',
    flags: {
      file: { type: 'string', arg: 'F|-', help: 'the AccessRequest JSON (- reads stdin)' },
      policy: {
        type: 'string',
        arg: 'F',
        help: "the guardrail policy file (default: local mode's; deployed: POLICY_FILE or infra/policy.example.yaml)",
      },
    },
    required: ['file'],
  },
  async run(ctx) {
    const file = str(ctx, 'file');
    let body: string;
    try {
      body = file === '-' ? await ctx.readStdin() : await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const result = await dryRun(ctx, body);
    return { json: result, text: planText(result), exit: result.allowed ? 0 : 2 };
  },
};

async function dryRun(ctx: Parameters<Command['run']>[0], body: string): Promise<PlanResult> {
  const parsed = parseAccessRequest(body);
  if (!parsed.ok) return { allowed: false, reason: parsed.reason, calls: [] };
  const request = parsed.request;
  const now = ctx.now();
  const policy = await loadPolicyFile(optStr(ctx, 'policy') ?? ctx.target.policyPath);
  const decision = decide(policy, request, now);
  if (!decision.allowed) return { allowed: false, reason: decision.reason, calls: [] };
  // The worker's own addressing: the ledger by cluster key, EKS in the cluster's account and region.
  const place = await placeOf(ctx, request.clusterName);
  const [record, current] = await readingCluster(ctx, place, () =>
    Promise.all([
      ctx.clients.ledger().load(place.key, request.principalArn),
      ctx.clients.eksAdapter(place.directory).readCurrent(place.cluster, request.principalArn),
    ]),
  );
  const sim = simulateLedger(request, decision.expiresAt, record, current, now, policy);
  // An extend is decided against the rule of the grant's route, which only the ledger names.
  const expiresAt = sim.extension?.expiresAt ?? decision.expiresAt;
  const base = {
    rule: sim.rule ?? decision.rule,
    ...(place.target && { clusterArn: clusterArn(place.target) }),
    ...(expiresAt !== undefined && { expiresAt }),
  };
  if (sim.rejection)
    return { allowed: false, ...base, reason: sim.rejection, calls: [], current: strip(current) };
  const desired = computeDesired(sim.record, now);
  const p = sim.recreate ? planRecreate(current, desired) : planChanges(current, desired);
  return {
    allowed: true,
    ...base,
    calls: p.changes.map((c) =>
      callInput(place.target?.name ?? request.clusterName, request.principalArn, c),
    ),
    current: strip(current),
    after: p.after,
    ...(sim.notes.length > 0 && { note: sim.notes.join('; ') }),
  };
}

/** Tags are ours to read, not part of the access; keep the JSON about access. */
function strip(s: AccessState): AccessState {
  const { tags: _tags, ...rest } = s;
  return rest;
}

function planText(r: PlanResult): string {
  const lines: string[] = [];
  if (!r.allowed) {
    lines.push(`DENIED ${r.reason?.code}: ${r.reason?.message}`);
    if (r.rule) lines.push(`policy rule: ${r.rule}`);
    return lines.join('\n');
  }
  lines.push(`ALLOWED by ${r.rule}${r.expiresAt ? `, until ${r.expiresAt}` : ''}`);
  if (r.clusterArn) lines.push(`on ${r.clusterArn}`);
  if (r.note) lines.push(r.note);
  if (r.calls.length === 0) {
    lines.push('no EKS call: the principal already has exactly this access');
    return lines.join('\n');
  }
  lines.push('');
  lines.push(
    table(
      ['#', 'operation', 'parameters'],
      r.calls.map((c, i) => {
        const { operation, clusterName: _c, principalArn: _p, ...params } = c;
        return [String(i + 1), operation, JSON.stringify(params)];
      }),
    ),
  );
  return lines.join('\n');
}
