/**
 * Who may put work on the reconcile queue, as the task consumer judges it (the queue policy, which only
 * the reconciler role passes, is the first wall; infra/resources/queues.yml). A task runs only when the
 * reconciler sent it (SenderId, RECONCILE_TASK_SENDERS) and it sits in its account-region's one FIFO
 * group: SQS hands that group to one consumer at a time, which is what keeps the account-region's EKS
 * call budget exact. Over loopback: local SQS stamps each sender's id, the local Lambda runner delivers.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { Grant } from '../../functions/core/ledger.js';
import type { ReconcileTask } from '../../functions/core/reconcile-task.js';
import type { TaskOutcome } from '../../functions/service/reconcile-task.js';
import type { Actor } from '../../infra/local/identities.js';
import { ledgerOf, reconcilerFor } from '../helpers/expiry.js';
import { ns, VIEW } from '../helpers/fixtures.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const PRINCIPALS = Array.from({ length: 6 }, (_, i) => `arn:aws:iam::111122223333:role/fleet/dev-${i}`);
const HOME_GROUP = 'reconcile-123456789012-us-east-1';

describe('reconcile tasks: sender and message group', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    const ledger = ledgerOf(h);
    for (const principalArn of PRINCIPALS) {
      const grant: Grant = {
        grantId: `req-${principalArn.slice(-5)}`,
        requestId: `req-${principalArn.slice(-5)}`,
        source: 'ticket',
        policies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
        kubernetesGroups: [],
        status: 'active',
        createdAt: new Date().toISOString(),
        version: 1,
      };
      await ledger.captureBaseline('dev', principalArn, {
        exists: false,
        kubernetesGroups: [],
        policies: [],
      });
      await ledger.insertGrant('dev', principalArn, grant);
    }
  });
  afterEach(async () => {
    await h.close();
  });

  /** Starts a pass, then has `actor` put a task for dev of that pass in `group` before any task runs. */
  async function forge(actor: Actor, group: string) {
    const outcomes: TaskOutcome[] = [];
    const r = await reconcilerFor(h, { onOutcome: (o) => outcomes.push(o) });
    const started = await r.schedule();
    expect(started.pass).toBe('started');
    const task: ReconcileTask = {
      schemaVersion: 1,
      kind: 'reconcile-task',
      passId: started.passId,
      cluster: 'dev',
      slice: 0,
    };
    await h.aws.sqsAs(actor).send(
      new SendMessageCommand({
        QueueUrl: r.queue.queueUrl,
        MessageBody: JSON.stringify(task),
        MessageGroupId: group,
        MessageDeduplicationId: `forged-${actor}-${group}`,
      }),
    );
    h.eks.resetCalls();
    const summary = await r.drainTasks();
    expect(summary.idle).toBe(true);
    return { outcomes, r };
  }

  const devReads = () =>
    h.eks.calls().filter((c) => c.clusterName === 'dev' && c.operation === 'DescribeAccessEntry');

  test('a task of the current pass in another message group is dropped without an EKS call', async () => {
    const { outcomes, r } = await forge('reconciler', 'reconcile-999999999999-us-east-1');
    const refused = outcomes.filter((o) => o.outcome === 'dropped' && /message group/.test(o.reason));
    expect(refused).toHaveLength(1);
    // The legitimate task covered dev, each principal read once: the forged one read nothing.
    expect(
      devReads()
        .map((c) => c.principalArn)
        .sort(),
    ).toEqual([...PRINCIPALS].sort());
    expect(r.logger.lines.some((l) => l.message === 'reconcile task refused; acknowledged and dropped')).toBe(
      true,
    );
  });

  test.each<Actor>(['operator', 'grantWorker'])(
    'a task %s sent, in the right group, is dropped as UNTRUSTED_SENDER',
    async (actor) => {
      const { outcomes, r } = await forge(actor, HOME_GROUP);
      const refused = outcomes.filter((o) => o.outcome === 'dropped' && /not the reconciler/.test(o.reason));
      expect(refused).toHaveLength(1);
      const line = r.logger.lines.find(
        (l) => l.message === 'reconcile task refused; acknowledged and dropped',
      );
      expect(line?.extra[0]).toMatchObject({ code: 'UNTRUSTED_SENDER', clusterName: 'dev' });
      expect(
        devReads()
          .map((c) => c.principalArn)
          .sort(),
      ).toEqual([...PRINCIPALS].sort());
    },
  );

  test('positive control: the reconciler’s own tasks in their group run', async () => {
    const { outcomes } = await forge('reconciler', HOME_GROUP);
    expect(
      outcomes.filter((o) => o.outcome === 'dropped' && /message group|not the reconciler/.test(o.reason)),
    ).toEqual([]);
    expect(outcomes.filter((o) => o.outcome === 'cluster-done').length).toBeGreaterThanOrEqual(3);
  });
});
