/**
 * The operator CLI end to end: each command run as a child process against a loopback stack (the real
 * worker, EKS emulator, SQS, DynamoDB, Scheduler and audit log), in table and JSON form.
 */
import {
  AssociateAccessPolicyCommand,
  DisassociateAccessPolicyCommand,
  EKSClient,
} from '@aws-sdk/client-eks';
import { type Message, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { LedgerAdapter } from '../../functions/adapters/ledger.js';
import { scheduleName } from '../../functions/adapters/scheduler.js';
import type { AuditRecord } from '../../functions/core/audit.js';
import { validatePolicy } from '../../functions/core/policy.js';
import type { AccessRequest } from '../../functions/core/types.js';
import { run } from '../../infra/cli/main.js';
import { LOCAL_IDENTITIES, senderIdForKey } from '../../infra/local/identities.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { type CliStack, local, runCli, startCliStack } from '../helpers/cli.js';
import { reconcilerFor } from '../helpers/expiry.js';
import { EDIT, fixture, ns, VIEW } from '../helpers/fixtures.js';
import { CREDENTIALS, eksWrites, REGION } from '../helpers/harness.js';

// Each test runs the CLI as a child process (tsx start-up included), several times: on a busy 2-core
// machine that takes far longer than the default 60 s, which says nothing about the CLI.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

/** Runs the CLI's run() in this process, capturing what it prints. */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => '',
  });
  return { code, stdout, stderr };
}

const TEAM_A = 'arn:aws:iam::111122223333:role/team-a-dev';
const DEPLOYER = 'arn:aws:iam::111122223333:role/deployers/team-a-deployer';
const FOREIGN = 'arn:aws:iam::111122223333:role/someone-else';

function eksClient(stack: CliStack): EKSClient {
  return new EKSClient({ region: REGION, endpoint: stack.harness.eks.endpoint, credentials: CREDENTIALS });
}

/** The sample policy with a cluster it knows but EKS does not: a grant there fails permanently into the DLQ. */
async function policyWithGhostCluster() {
  const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as { clusters: Record<string, unknown> };
  doc.clusters.ghost = doc.clusters.dev;
  return validatePolicy(doc);
}

/**
 * A stack with these requests applied, whose worker then keeps polling, as in local mode, so the requests the
 * CLI sends are processed while it waits for their outcome.
 */
async function startPollingStack(
  ...requests: Parameters<CliStack['harness']['send']>[0][]
): Promise<CliStack> {
  const stack = await startCliStack();
  for (const request of requests) await stack.harness.send(request);
  await stack.harness.drain();
  stack.harness.runner.start();
  return stack;
}

/** Successful EKS writes the emulator saw since its last resetCalls(). */
const eksWritesOf = (stack: CliStack): string[] => eksWrites(stack.harness).map((c) => c.operation);

describe('cli: usage and errors', () => {
  test('an unknown command prints usage on stderr and exits 1', async () => {
    const r = await runCli(['frobnicate', '--local']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
    expect(r.stderr).toMatch(/usage: eks-access-grants <command>/);
    expect(r.stdout).toBe('');
  });

  test('an unknown flag, a missing value and a missing required flag print usage and exit 1, without a stack trace', async () => {
    for (const [args, message] of [
      [['access', '--local', '--cluster', 'dev', '--bogus'], /unknown option --bogus for access/],
      [['access', '--local', '--cluster'], /--cluster needs a value/],
      [['access', '--local'], /access needs --cluster/],
      [['grants', '--local', '--status', 'sometimes'], /--status "sometimes" is not one of active, all/],
      [['grants', '--local', '--expiring-within', '1h'], /not a positive ISO-8601 duration/],
      [['dlq', '--local'], /dlq needs a sub-command: dlq list, dlq redrive/],
      [['dlq', 'redrive', '--local', '--all', '--message', 'x'], /--all and --message cannot be combined/],
      [['status'], /--local, or --stage S --region R/],
      [['status', '--local', '--stage', 'dev'], /--local cannot be combined/],
    ] as const) {
      // In-process (the same run() the entry point calls): nine child processes are slow on a busy machine.
      const r = await runInProcess([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).toMatch(/usage: eks-access-grants/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test('--local without a serve file says how to start local mode and exits 1', async () => {
    const r = await runCli(['status', '--local', '--serve-file', '/nonexistent/serve.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not exist: start local mode first with `npm start -- --serve`/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('--help prints the usage of a command on stdout and exits 0', async () => {
    const r = await runCli(['revoke', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/revoke --cluster C --principal P --grant ID --reason R \[--no-wait\]/);
  });
});

describe('cli: reading commands', () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await startCliStack({ policy: await policyWithGhostCluster() });
    const h = stack.harness;
    h.eks.seedEntry('dev', {
      principalArn: FOREIGN,
      kubernetesGroups: ['ops'],
      policies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }],
    });
    await h.send(fixture('dev-view-grant', { duration: 'PT8H' }));
    await h.send(fixture('dev-edit-grant'));
    await h.send(fixture('dev-view-grant', { requestId: 'req-ghost-0001', clusterName: 'ghost' }));
    await h.drain();
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test('access --json lists every entry with managed, baseline, grants and drift', async () => {
    const r = await runCli(['access', ...local(stack), '--cluster', 'dev', '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((x) => x.principalArn)).toEqual([DEPLOYER, FOREIGN, TEAM_A]);
    expect(rows.find((x) => x.principalArn === FOREIGN)).toEqual({
      principalArn: FOREIGN,
      type: 'STANDARD',
      username: expect.any(String),
      kubernetesGroups: ['ops'],
      accessPolicies: [{ policyArn: VIEW, accessScope: { type: 'cluster' } }],
      managed: false,
      baseline: null,
      grants: [],
      drift: false,
    });
    expect(rows.find((x) => x.principalArn === TEAM_A)).toMatchObject({
      managed: true,
      baseline: { exists: false, kubernetesGroups: [], accessPolicies: [] },
      grants: [
        {
          grantId: 'req-dev-view-0001',
          source: 'ticket',
          status: 'active',
          expiresAt: expect.any(String),
          requestedBy: 'alice@example.com',
          approvedBy: ['bob@example.com'],
        },
      ],
      drift: false,
    });
  });

  test('access shows drift when EKS differs from the ledger, in the table and in JSON', async () => {
    const eks = eksClient(stack);
    await eks.send(
      new DisassociateAccessPolicyCommand({ clusterName: 'dev', principalArn: TEAM_A, policyArn: VIEW }),
    );
    try {
      const json = await runCli([
        'access',
        ...local(stack),
        '--cluster',
        'dev',
        '--principal',
        TEAM_A,
        '--json',
      ]);
      expect(JSON.parse(json.stdout)).toMatchObject([
        { principalArn: TEAM_A, accessPolicies: [], drift: true },
      ]);
      const text = await runCli(['access', ...local(stack), '--cluster', 'dev']);
      expect(text.code).toBe(0);
      // First which account and region the cluster is in (fleet), then the table.
      expect(text.stdout).toMatch(
        /^cluster dev: \d{12}\/us-east-1\nprincipal\s+type\s+groups\s+access policies\s+managed\s+grants\s+drift/,
      );
      expect(text.stdout).toMatch(
        /role\/team-a-dev\s+STANDARD\s+team-a-readers\s+-\s+yes\s+req-dev-view-0001 until \S+\s+DRIFT/,
      );
      expect(text.stdout).toMatch(/role\/someone-else\s+STANDARD\s+ops\s+ViewPolicy@cluster\s+no\s+-\s+no/);
    } finally {
      await eks.send(
        new AssociateAccessPolicyCommand({
          clusterName: 'dev',
          principalArn: TEAM_A,
          policyArn: VIEW,
          accessScope: ns('team-a', 'team-b'),
        }),
      );
      eks.destroy();
    }
  });

  test('access --csv writes one RFC 4180 line per entry for access reviews', async () => {
    const r = await runCli(['access', ...local(stack), '--cluster', 'dev', '--csv']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'principalArn,type,username,kubernetesGroups,accessPolicies,managed,baseline,grants,drift',
    );
    expect(lines).toHaveLength(4);
    expect(lines.find((l) => l.startsWith(`${TEAM_A},`))).toMatch(
      new RegExp(
        `,${VIEW}@team-a\\|team-b,true,\\(no entry\\),req-dev-view-0001:ticket:[^:]+:[^,]+,false$`.replace(
          /\//g,
          '\\/',
        ),
      ),
    );
  });

  test('grants lists active grants with what each grants; --status all and --expiring-within filter', async () => {
    const r = await runCli(['grants', ...local(stack), '--cluster', 'dev', '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((g) => g.grantId).sort()).toEqual(['req-dev-edit-0001', 'req-dev-view-0001']);
    expect(rows.find((g) => g.grantId === 'req-dev-edit-0001')).toMatchObject({
      clusterName: 'dev',
      principalArn: DEPLOYER,
      source: 'ticket',
      status: 'active',
      expiresAt: expect.any(String),
      requestedBy: 'alice@example.com',
      approvedBy: ['bob@example.com'],
      accessPolicies: [{ policyArn: EDIT, accessScope: { type: 'namespace' } }],
    });
    // dev-view lasts 8 hours, dev-edit 7 days.
    const soon = JSON.parse(
      (await runCli(['grants', ...local(stack), '--expiring-within', 'P1D', '--json'])).stdout,
    );
    expect(soon.map((g: { grantId: string }) => g.grantId)).toEqual(['req-dev-view-0001']);
    // A grant that failed before it was recorded (its cluster does not exist) is in no listing.
    const all = JSON.parse((await runCli(['grants', ...local(stack), '--status', 'all', '--json'])).stdout);
    expect(all.map((g: { grantId: string }) => g.grantId).sort()).toEqual([
      'req-dev-edit-0001',
      'req-dev-view-0001',
    ]);
    const text = await runCli(['grants', ...local(stack), '--principal', DEPLOYER]);
    expect(text.stdout).toMatch(
      /req-dev-edit-0001\s+dev\s+\S+team-a-deployer\s+ticket\s+active\s+\S+\s+alice@example.com\s+bob@example.com\s+EditPolicy@team-a\|team-a-preview-\*/,
    );
  });

  test('audit returns the history of a principal, oldest first, and filters by cluster and time', async () => {
    const r = await runCli(['audit', ...local(stack), '--principal', TEAM_A, '--json']);
    expect(r.code).toBe(0);
    const records = JSON.parse(r.stdout) as AuditRecord[];
    expect(records.map((a) => [a.requestId, a.outcome]).sort()).toEqual([
      ['req-dev-view-0001', 'granted'],
      ['req-ghost-0001', 'failed'],
    ]);
    const dev = JSON.parse(
      (await runCli(['audit', ...local(stack), '--principal', TEAM_A, '--cluster', 'dev', '--json'])).stdout,
    );
    expect(dev.map((a: AuditRecord) => a.requestId)).toEqual(['req-dev-view-0001']);
    const prod = JSON.parse((await runCli(['audit', ...local(stack), '--cluster', 'prod', '--json'])).stdout);
    expect(prod).toEqual([]);
    const text = await runCli(['audit', ...local(stack), '--cluster', 'ghost']);
    expect(text.stdout).toMatch(
      /failed\s+ticket\s+ghost\s+\S+team-a-dev\s+req-ghost-0001\s+-\s+CLUSTER_NOT_FOUND/,
    );
  });

  test('status reports every queue including the DLQ, expiries due in 24 h, and the last reconcile run', async () => {
    const before = JSON.parse((await runCli(['status', ...local(stack), '--json'])).stdout);
    expect(before).toEqual({
      queues: [
        { name: 'requests.fifo', visible: 0, inFlight: 0, oldestAgeSeconds: null },
        { name: 'requests-dlq.fifo', visible: 1, inFlight: 0, oldestAgeSeconds: null },
      ],
      expiriesDue24h: 1,
      lastReconcile: null,
      // Fleet: the sample policy's cluster in another account, with no audit record yet.
      targets: [
        {
          alias: 'staging',
          name: 'staging',
          account: '444455556666',
          region: 'eu-west-1',
          status: 'unknown',
          lastFailure: null,
        },
      ],
    });
    // The scheduled run and its reconcile tasks, until the pass completes and records itself.
    await (await reconcilerFor(stack.harness)).run();
    const after = await runCli(['status', ...local(stack)]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/requests-dlq\.fifo\s+1\s+0\s+-/);
    expect(after.stdout).toMatch(/expiries due in 24 h: 1/);
    expect(after.stdout).toMatch(/last reconcile: \S+Z \(expiriesEnqueued=0, principalsChecked=2, drifted=0/);
  });

  test('dlq list shows each dead letter with the reason from its failed audit record, and leaves it there', async () => {
    const r = await runCli(['dlq', 'list', ...local(stack), '--json']);
    expect(r.code).toBe(0);
    const letters = JSON.parse(r.stdout);
    expect(letters).toEqual([
      expect.objectContaining({
        queue: 'requests-dlq.fifo',
        requestId: 'req-ghost-0001',
        clusterName: 'ghost',
        // The CLI's policy (the serve file's) does not name ghost: where it is, is unknown.
        account: null,
        region: null,
        principalArn: TEAM_A,
        source: 'ticket',
        reason: { code: 'CLUSTER_NOT_FOUND', message: expect.stringMatching(/No cluster found/i) },
      }),
    ]);
    const again = await runCli(['dlq', 'list', ...local(stack)]);
    expect(again.stdout).toMatch(
      /requests-dlq\.fifo\s+\S+\s+req-ghost-0001\s+ticket\s+ghost\s+-\s+\S+\s+\S+\s+CLUSTER_NOT_FOUND/,
    );
  });
});

describe('cli: dlq redrive', () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await startCliStack({ policy: await policyWithGhostCluster() });
    await stack.harness.send(fixture('dev-view-grant', { requestId: 'req-ghost-a', clusterName: 'ghost' }));
    await stack.harness.send(fixture('dev-edit-grant', { requestId: 'req-ghost-b', clusterName: 'ghost' }));
    await stack.harness.drain();
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  const dlqIds = async () =>
    (
      JSON.parse((await runCli(['dlq', 'list', ...local(stack), '--json'])).stdout) as Array<{
        messageId: string;
        requestId: string;
      }>
    )
      .map((l) => [l.requestId, l.messageId] as const)
      .sort();

  test('--dry-run moves nothing; --message moves one message back and the worker applies it; --all the rest', async () => {
    const letters = await dlqIds();
    expect(letters.map(([req]) => req)).toEqual(['req-ghost-a', 'req-ghost-b']);
    const [, idA] = letters[0] as readonly [string, string];

    const dry = await runCli(['dlq', 'redrive', ...local(stack), '--all', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      moved: [{ queue: 'requests-dlq.fifo', to: 'requests.fifo' }],
    });
    expect(await dlqIds()).toEqual(letters);

    stack.harness.eks.addCluster('ghost');
    const one = await runCli(['dlq', 'redrive', ...local(stack), '--message', idA]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(`moved 1 message(s) from requests-dlq.fifo to requests.fifo: ${idA}`);
    expect((await dlqIds()).map(([req]) => req)).toEqual(['req-ghost-b']);
    await stack.harness.drain();
    expect(stack.harness.auditsFor('req-ghost-a').map((a) => a.outcome)).toEqual(['failed', 'granted']);

    const missing = await runCli(['dlq', 'redrive', ...local(stack), '--message', 'no-such-message']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no message no-such-message in requests-dlq\.fifo; see dlq list/);

    const all = await runCli(['dlq', 'redrive', ...local(stack), '--all', '--json']);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout).moved[0].messageIds).toHaveLength(1);
    expect(await dlqIds()).toEqual([]);
    await stack.harness.drain();
    expect(stack.harness.auditsFor('req-ghost-b').map((a) => a.outcome)).toEqual(['failed', 'granted']);
    // A ceiling for a stuck run: seven CLI processes and two drains, on a busy machine.
  }, 600_000);
});

describe('cli: plan writes nothing', () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await startCliStack();
    await stack.harness.send(fixture('dev-view-grant'));
    await stack.harness.drain();
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  /** Runs plan and returns its result with every call it caused at EKS, DynamoDB and SQS. */
  async function plan(request: unknown, extra: string[] = []) {
    const h = stack.harness;
    h.eks.resetCalls();
    stack.dynamoProxy.operations.length = 0;
    stack.sqsProxy.operations.length = 0;
    const r = await runCli(['plan', ...local(stack), '--file', '-', ...extra], {
      stdin: typeof request === 'string' ? request : JSON.stringify(request),
    });
    return {
      ...r,
      eks: h.eks.calls().map((c) => c.operation),
      dynamodb: [...stack.dynamoProxy.operations],
      sqs: [...stack.sqsProxy.operations],
    };
  }

  const READS = new Set([
    'DescribeAccessEntry',
    'ListAssociatedAccessPolicies',
    'ListAccessEntries',
    'Query',
    'GetItem',
    'Scan',
  ]);

  test('a new grant: allowed, its rule, and the exact EKS calls, with only reads at EKS and DynamoDB and nothing at SQS', async () => {
    const r = await plan(
      fixture('dev-view-grant', { requestId: 'req-plan-1', principalArn: DEPLOYER, duration: 'PT1H' }),
      ['--json'],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      allowed: true,
      rule: 'clusters.dev.rules.ticket',
      expiresAt: expect.any(String),
      calls: [
        {
          operation: 'CreateAccessEntry',
          clusterName: 'dev',
          principalArn: DEPLOYER,
          kubernetesGroups: ['team-a-readers'],
          tags: { 'eks-access-grants:managed': 'true' },
          type: 'STANDARD',
        },
        {
          operation: 'AssociateAccessPolicy',
          clusterName: 'dev',
          principalArn: DEPLOYER,
          policyArn: VIEW,
          accessScope: ns('team-a', 'team-b'),
        },
      ],
    });
    expect(r.eks).toEqual(['DescribeAccessEntry']);
    expect(r.dynamodb.length).toBeGreaterThan(0);
    expect(r.dynamodb.filter((op) => !READS.has(op))).toEqual([]);
    expect(r.sqs).toEqual([]);
    expect(stack.harness.eks.snapshot('dev').map((e) => e.principalArn)).toEqual([TEAM_A]);
  });

  test('a revoke of a live grant plans its removal from EKS, as a table', async () => {
    const r = await plan({
      schemaVersion: 1,
      requestId: 'req-plan-revoke',
      action: 'revoke',
      source: 'operator',
      clusterName: 'dev',
      principalArn: TEAM_A,
      grantId: 'req-dev-view-0001',
      reason: 'test',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ALLOWED by clusters\.dev/);
    expect(r.stdout).toMatch(/1\s+DeleteAccessEntry/);
    expect(r.eks.filter((op) => !READS.has(op))).toEqual([]);
    expect(r.dynamodb.filter((op) => !READS.has(op))).toEqual([]);
    expect(r.sqs).toEqual([]);
    expect(stack.harness.eks.snapshot('dev')).toHaveLength(1);
  });

  test('a denied request exits 2 with the reason; an invalid one exits 2 with its validation code', async () => {
    const denied = await plan(
      fixture('dev-view-grant', {
        requestId: 'req-plan-2',
        accessPolicies: [
          {
            policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy',
            accessScope: { type: 'cluster' },
          },
        ],
      }),
      ['--json'],
    );
    expect(denied.code).toBe(2);
    expect(JSON.parse(denied.stdout)).toEqual({
      allowed: false,
      reason: {
        code: 'POLICY_DENIED',
        message: expect.stringMatching(/^clusters\.dev\.rules\.ticket\.allowedPolicies: /),
      },
      calls: [],
    });
    const invalid = await plan('{"schemaVersion":1,"requestId":"x"}');
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toMatch(/^DENIED MISSING_FIELD: /);
    for (const r of [denied, invalid]) {
      expect(r.eks).toEqual([]);
      expect(r.sqs).toEqual([]);
      expect(r.dynamodb).toEqual([]);
    }
  });

  test('a file that does not exist is an error (exit 1)', async () => {
    const r = await runCli(['plan', ...local(stack), '--file', '/nonexistent/request.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read \/nonexistent\/request\.json/);
  });
});

describe('cli: revoke', () => {
  let stack: CliStack;
  const revokeArgs = (principal: string, grant: string, reason: string, ...extra: string[]) => [
    'revoke',
    ...local(stack),
    '--cluster',
    'dev',
    '--principal',
    principal,
    '--grant',
    grant,
    '--reason',
    reason,
    ...extra,
  ];

  beforeAll(async () => {
    stack = await startPollingStack(
      fixture('dev-view-grant', { duration: 'PT8H' }),
      fixture('dev-edit-grant'),
    );
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test('revokes a grant as source operator, waits for the terminal audit record, and EKS and the schedule follow it', async () => {
    const schedule = scheduleName('req-dev-view-0001');
    expect(stack.harness.aws.schedulerEmulator.schedules().map((s) => s.name)).toContain(schedule);
    const r = await runCli(revokeArgs(TEAM_A, 'req-dev-view-0001', 'left the team', '--json'));
    expect(r.code, r.stderr).toBe(0);
    const audit = JSON.parse(r.stdout) as AuditRecord;
    expect(audit).toMatchObject({
      outcome: 'revoked',
      source: 'operator',
      requestedBy: 'arn:aws:sts::000000000000:assumed-role/OperatorRole/local-operator',
      action: 'revoke',
      grantId: 'req-dev-view-0001',
      principalArn: TEAM_A,
      changes: [{ operation: 'DeleteAccessEntry', status: 'applied' }],
    });
    expect(stack.harness.eks.snapshot('dev').map((e) => e.principalArn)).toEqual([DEPLOYER]);
    expect(stack.harness.aws.schedulerEmulator.schedules().map((s) => s.name)).not.toContain(schedule);
    expect(r.stderr).toMatch(/queued operator-revoke-\S+ on requests\.fifo; waiting for its outcome/);
  }, 180_000);

  const refusals = [
    {
      refusal: 'a revoke the worker refuses (no such grant) exits 2 with its audit record',
      principal: DEPLOYER,
      grant: 'no-such-grant',
      stdout:
        /rejected\s+operator\s+dev\s+\S+team-a-deployer\s+operator-revoke-\S+\s+no-such-grant\s+GRANT_NOT_FOUND/,
    },
    {
      refusal: 'a request that fails validation is refused before it is sent (exit 2)',
      principal: 'arn:aws:sts::111122223333:assumed-role/x/y',
      grant: 'g',
      stdout: /^REFUSED ASSUMED_ROLE_ARN: /,
    },
  ];
  test.each(refusals.map((row) => [row.refusal, row] as const))(
    '%s',
    async (_refusal, { principal, grant, stdout }) => {
      const r = await runCli(revokeArgs(principal, grant, 'x'));
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(stdout);
    },
    180_000,
  );

  test('--no-wait returns once the revoke is queued', async () => {
    const queued = await runCli(revokeArgs(DEPLOYER, 'req-dev-edit-0001', 'x', '--no-wait', '--json'));
    expect(queued.code).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({
      queue: 'requests.fifo',
      queued: true,
      requestId: expect.stringMatching(/^operator-revoke-/),
    });
  }, 180_000);
});

describe('cli: revoke waits for its own message, not a forged twin', () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await startCliStack();
    await stack.harness.send(fixture('dev-view-grant'));
    await stack.harness.drain();
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test("a stranger's message with the operator's request id is rejected UNTRUSTED_SENDER; the CLI prints its own outcome", async () => {
    const cli = runCli([
      'revoke',
      ...local(stack),
      '--cluster',
      'dev',
      '--principal',
      TEAM_A,
      '--grant',
      'req-dev-view-0001',
      '--reason',
      'left the team',
      '--json',
    ]);
    // Hold the CLI's message in flight for a few seconds (no worker is polling yet), so the forgery is
    // processed, and audited, first: a CLI that matched on the request id alone would take that record.
    const sqs = stack.harness.aws.sqs;
    let held: Message | undefined;
    for (let i = 0; i < 600 && !held; i++) {
      const got = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.harness.aws.queueUrl,
          MaxNumberOfMessages: 1,
          VisibilityTimeout: 5,
        }),
      );
      held = got.Messages?.[0];
      if (!held) await new Promise((r) => setTimeout(r, 100));
    }
    const operatorRequest = JSON.parse(held?.Body ?? '{}') as AccessRequest;
    expect(operatorRequest.requestId).toMatch(/^operator-revoke-/);
    // The stranger learnt the request id (from stderr, a log, a screen share) and sends its twin, which
    // says it is an operator revoke of the same grant; its own message group, so nothing holds it back.
    await stack.harness.sqsOf('stranger').send(
      new SendMessageCommand({
        QueueUrl: stack.harness.aws.queueUrl,
        MessageBody: JSON.stringify({ ...operatorRequest, reason: 'forged' }),
        MessageGroupId: 'stranger-group',
        MessageDeduplicationId: 'stranger-dedup',
      }),
    );
    await stack.harness.drain();
    const r = await cli;
    const records = stack.harness.auditsFor(operatorRequest.requestId);
    expect(records.map((a) => a.outcome)).toEqual(['rejected', 'revoked']);
    expect(records[0]).toMatchObject({
      reason: { code: 'UNTRUSTED_SENDER' },
      senderId: senderIdForKey(CREDENTIALS.accessKeyId),
    });
    expect(r.code, r.stderr).toBe(0);
    const audit = JSON.parse(r.stdout) as AuditRecord;
    expect(audit).toMatchObject({
      outcome: 'revoked',
      requestId: operatorRequest.requestId,
      senderId: LOCAL_IDENTITIES.operator.senderId,
      changes: [{ operation: 'DeleteAccessEntry', status: 'applied' }],
    });
    expect(stack.harness.eks.snapshot('dev')).toEqual([]);
  }, 180_000);
});

describe('cli: access at the EKS quota', () => {
  let stack: CliStack;
  beforeAll(async () => {
    stack = await startCliStack();
    for (let i = 0; i < 3000; i++) {
      stack.harness.eks.seedEntry('prod', {
        principalArn: `arn:aws:iam::111122223333:role/bulk/r-${String(i).padStart(4, '0')}`,
      });
    }
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test('lists a 3,000-entry cluster page by page with progress on stderr and finishes', async () => {
    const r = await runCli(['access', ...local(stack), '--cluster', 'prod', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<{ principalArn: string; managed: boolean }>;
    expect(rows).toHaveLength(3000);
    expect(new Set(rows.map((x) => x.principalArn)).size).toBe(3000);
    expect(rows.every((x) => !x.managed)).toBe(true);
    expect(r.stderr).toMatch(/access: listed 100 entries on prod…/);
    expect(r.stderr).toMatch(/access: listed 3000 entries on prod…/);
    expect(r.stderr).toMatch(/access: described 3000\/3000 entries on prod/);
    const calls = stack.harness.eks.calls();
    expect(calls.filter((c) => c.operation === 'ListAccessEntries')).toHaveLength(30);
    // A ceiling for a stuck run: 3,030 EKS calls took 145 s of the former 180 s on a busy machine.
  }, 600_000);
});

describe('cli: extend', () => {
  let stack: CliStack;
  const GRANT = 'req-prod-view-0001';
  const extendArgs = (by: string, ...extra: string[]) => [
    'extend',
    ...local(stack),
    '--cluster',
    'prod',
    '--principal',
    TEAM_A,
    '--grant',
    GRANT,
    '--by',
    by,
    '--reason',
    'the regression hunt runs late',
    ...extra,
  ];
  const ledgerGrant = async () =>
    (await new LedgerAdapter(stack.harness.aws.dynamodb, 'grants').load('prod', TEAM_A)).grants.find(
      (g) => g.grantId === GRANT,
    );
  const schedule = () =>
    stack.harness.aws.schedulerEmulator.schedules().find((s) => s.name === scheduleName(GRANT));
  /** Scheduler's at() has whole seconds; the adapter rounds up so it never fires early. */
  const atSecond = (iso: string) => new Date(Math.ceil(Date.parse(iso) / 1000) * 1000).toISOString();

  beforeAll(async () => {
    // prod's ticket rule: maxDuration PT8H from the grant start, 1 approval by someone else.
    stack = await startPollingStack(fixture('prod-view-grant', { duration: 'PT2H' }));
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test('extends as source operator: the ledger end and the expiry schedule move as the audit says, EKS is untouched', async () => {
    const before = await ledgerGrant();
    const previous = before?.expiresAt as string;
    expect(schedule()?.fireAt).toBe(atSecond(previous));
    const entryBefore = stack.harness.eks.snapshot('prod');
    stack.harness.eks.resetCalls();

    const r = await runCli(extendArgs('PT1H', '--approved-by', 'dave@example.com', '--json'));
    expect(r.code, r.stderr).toBe(0);
    const audit = JSON.parse(r.stdout) as AuditRecord;
    const expected = new Date(Date.parse(previous) + 3_600_000).toISOString();
    expect(audit).toMatchObject({
      outcome: 'extended',
      action: 'extend',
      source: 'operator',
      requestedBy: 'arn:aws:sts::000000000000:assumed-role/OperatorRole/local-operator',
      approvedBy: ['dave@example.com'],
      grantId: GRANT,
      previousExpiresAt: previous,
      expiresAt: expected,
      changes: [],
    });
    expect(r.stderr).toMatch(/queued operator-extend-\S+ on requests\.fifo; waiting for its outcome/);
    expect((await ledgerGrant())?.expiresAt).toBe(audit.expiresAt);
    expect(schedule()?.fireAt).toBe(atSecond(audit.expiresAt as string));
    // Same access, same entry: an extension makes no EKS write.
    expect(stack.harness.eks.snapshot('prod')).toEqual(entryBefore);
    expect(eksWritesOf(stack)).toEqual([]);

    const history = await runCli(['audit', ...local(stack), '--principal', TEAM_A, '--cluster', 'prod']);
    expect(history.stdout).toMatch(
      new RegExp(
        `extended\\s+operator\\s+prod\\s+\\S+team-a-dev\\s+operator-extend-\\S+\\s+${GRANT}\\s+until ${expected.replace(/\./g, '\\.')} \\(was `,
      ),
    );
  }, 180_000);

  test('an extension past maxDuration from the grant start is refused: exit 2 with its code, nothing moves', async () => {
    const before = await ledgerGrant();
    const fireAt = schedule()?.fireAt;
    // 3 h granted so far (PT2H, then PT1H more); PT6H more would make 9 h from the start, over PT8H.
    const json = await runCli(extendArgs('PT6H', '--approved-by', 'dave@example.com', '--json'));
    expect(json.code, json.stderr).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({
      outcome: 'rejected',
      reason: {
        code: 'EXTENSION_EXCEEDS_MAX_DURATION',
        message: expect.stringMatching(/maximum PT8H of clusters\.prod\.rules\.ticket\.maxDuration/),
      },
    });
    const text = await runCli(extendArgs('PT6H', '--approved-by', 'dave@example.com'));
    expect(text.code).toBe(2);
    expect(text.stdout).toMatch(
      /rejected\s+operator\s+prod\s+\S+team-a-dev\s+operator-extend-\S+\s+\S+\s+EXTENSION_EXCEEDS_MAX_DURATION/,
    );
    // Without the approval the rule requires, even a short extension is refused.
    const unapproved = await runCli(extendArgs('PT5M'));
    expect(unapproved.code).toBe(2);
    expect(unapproved.stdout).toMatch(/POLICY_DENIED: extension of grant/);
    expect((await ledgerGrant())?.expiresAt).toBe(before?.expiresAt);
    expect(schedule()?.fireAt).toBe(fireAt);
  }, 180_000);

  test('a bad --by prints usage and exits 1 before anything is sent', async () => {
    const r = await runInProcess(extendArgs('1h'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--by "1h" is not a positive ISO-8601 duration/);
    expect(r.stderr).toMatch(/extend --cluster C --principal P --grant ID --by PT1H --reason R/);
  });
});
