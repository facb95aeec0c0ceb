/**
 * `extend --cluster C --principal P --grant ID --by PT1H --reason R [--approved-by A,B] [--no-wait]`: moves
 * a time-boxed grant's end later, as source `operator` sent as the operator identity, to the queue of the
 * worker that owns the grant. The worker decides it by the rule of the grant's route (approvals as it
 * requires, the total capped by its maxDuration from the grant's start: functions/core/extension.ts),
 * moves the expiry schedule and audits `extended`; a refusal exits 2 with its code.
 */

import { UsageError } from '../args.js';
import { type Command, optStr, str } from '../context.js';
import { durationFlag } from '../output.js';
import { operatorRequestId, sendAndWait, WAIT_FLAGS } from '../send.js';

export const extend: Command = {
  spec: {
    name: 'extend',
    summary:
      "extend a time-boxed grant (source operator; decided by the grant's rule, rescheduled); waits for the outcome",
    flags: {
      cluster: { type: 'string', arg: 'C', help: 'the EKS cluster' },
      principal: { type: 'string', arg: 'P', help: 'the IAM role or user ARN' },
      grant: { type: 'string', arg: 'ID', help: 'the grant to extend (grants lists them)' },
      by: {
        type: 'string',
        arg: 'PT1H',
        help: 'how much later it ends (ISO-8601 duration, added to its current end)',
        check: durationFlag,
      },
      reason: { type: 'string', arg: 'R', help: 'why, for the audit trail' },
      'approved-by': {
        type: 'string',
        arg: 'A,B',
        help: "approvers, comma-separated canonical identities, where the grant's rule requires approvals",
        check: (name, value) => {
          if (value.split(',').some((a) => a.trim() === '')) {
            throw new UsageError(`--${name} lists an empty approver; separate identities with single commas`);
          }
        },
      },
      ...WAIT_FLAGS,
    },
    required: ['cluster', 'principal', 'grant', 'by', 'reason'],
  },
  run(ctx) {
    const approvers = optStr(ctx, 'approved-by')
      ?.split(',')
      .map((a) => a.trim());
    return sendAndWait(ctx, {
      requestId: operatorRequestId('extend'),
      action: 'extend',
      clusterName: str(ctx, 'cluster'),
      principalArn: str(ctx, 'principal'),
      grantId: str(ctx, 'grant'),
      extendBy: str(ctx, 'by'),
      reason: str(ctx, 'reason'),
      ...(approvers && { approvedBy: approvers }),
    });
  },
};
