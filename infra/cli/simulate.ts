/**
 * What the worker would do to the ledger for one request, computed without writing it: the worker's own
 * pure rule (planLedgerChange, functions/core/ledger-change.ts), applied to a copy of the record the way
 * GrantService applies it after its writes.
 */
import { RejectionError } from '../../functions/core/errors.js';
import type { GrantExtension } from '../../functions/core/extension.js';
import type { PrincipalRecord } from '../../functions/core/ledger.js';
import { planLedgerChange } from '../../functions/core/ledger-change.js';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import type { AccessRequest, AccessState, Reason } from '../../functions/core/types.js';

export interface Simulated {
  /** The record as the worker would leave it. */
  record: PrincipalRecord;
  /** A recreated role: the worker deletes the stale entry and creates it again (planRecreate). */
  recreate: boolean;
  /** A refusal the worker makes only once it sees the ledger and EKS. */
  rejection?: Reason;
  /** What the worker would log about it (e.g. an early expiry it ignores). */
  notes: string[];
  /** An extend the worker would record: its new end, and the rule that allows it. */
  extension?: GrantExtension;
  rule?: string;
}

/** The message id a dry run stamps on grants it would touch; never written anywhere. */
const DRY_RUN_MESSAGE = 'plan-dry-run';

export function simulateLedger(
  request: AccessRequest,
  expiresAt: string | undefined,
  original: PrincipalRecord,
  current: AccessState,
  now: Date,
  /** The worker decides an extend against it. */
  policy?: GuardrailPolicy,
): Simulated {
  const record: PrincipalRecord = structuredClone(original);
  let change: ReturnType<typeof planLedgerChange>;
  try {
    change = planLedgerChange({
      record,
      request,
      current,
      expiresAt,
      now,
      messageId: DRY_RUN_MESSAGE,
      ...(policy && { policy }),
    });
  } catch (err) {
    if (err instanceof RejectionError) {
      return { record, recreate: false, rejection: { code: err.code, message: err.message }, notes: [] };
    }
    throw err;
  }
  // A capture is write-once (a stored baseline wins); a replace (recreated role) overwrites.
  if (change.baseline?.kind === 'capture') record.baseline ??= change.baseline.baseline;
  else if (change.baseline?.kind === 'replace') record.baseline = change.baseline.baseline;
  if (change.insert) record.grants.push(change.insert);
  for (const { next } of change.updates) {
    const at = record.grants.findIndex((g) => g.grantId === next.grantId);
    if (at === -1) record.grants.push(next);
    else record.grants[at] = next;
  }
  return {
    record,
    recreate: change.recreate === true,
    notes: change.notes.map((n) => n.message),
    ...(change.extension && { extension: change.extension }),
    ...(change.rule !== undefined && { rule: change.rule }),
  };
}
