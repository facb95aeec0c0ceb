/** `revoke --cluster C --principal P --grant ID --reason R [--no-wait]`: an early revoke by an operator. */
import { type Command, str } from '../context.js';
import { operatorRequestId, sendAndWait, WAIT_FLAGS } from '../send.js';

export const revoke: Command = {
  spec: {
    name: 'revoke',
    summary: 'revoke a grant now (source operator, sent as the operator identity); waits for the outcome',
    flags: {
      cluster: { type: 'string', arg: 'C', help: 'the EKS cluster' },
      principal: { type: 'string', arg: 'P', help: 'the IAM role or user ARN' },
      grant: { type: 'string', arg: 'ID', help: 'the grant to end (grants lists them)' },
      reason: { type: 'string', arg: 'R', help: 'why, for the audit trail' },
      ...WAIT_FLAGS,
    },
    required: ['cluster', 'principal', 'grant', 'reason'],
  },
  run(ctx) {
    return sendAndWait(ctx, {
      requestId: operatorRequestId('revoke'),
      action: 'revoke',
      clusterName: str(ctx, 'cluster'),
      principalArn: str(ctx, 'principal'),
      grantId: str(ctx, 'grant'),
      reason: str(ctx, 'reason'),
    });
  },
};
