/**
 * The operator CLI on a fleet (issue 13): `status` shows a cluster whose target role is missing, and
 * `grants` / `audit` say which account and region each cluster is in. The CLI runs as a child process
 * against the loopback stack (helpers/cli.ts).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { credentialsOf } from '../../infra/local/identities.js';
import { type CliStack, local, runCli, startCliStack } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';
import { createTargetRole, OPERATOR_TARGET_ROLE_ARN, STAGING, TARGET_ROLE_ARN } from '../helpers/harness.js';

const TEAM_A = 'arn:aws:iam::111122223333:role/team-a-dev';
/** An entry on staging that this system did not make. */
const STRANGER_ENTRY = 'arn:aws:iam::444455556666:role/someone-else';

let stack: CliStack;
beforeAll(async () => {
  // No target role in the staging account yet: the first staging grant fails on it.
  stack = await startCliStack({ targetRole: false });
  await stack.harness.send({ ...fixture('dev-view-grant'), requestId: 'req-stg-1', clusterName: 'staging' });
  await stack.harness.drain();
}, 120_000);
afterAll(async () => {
  await stack.close();
});

describe('operator CLI on a fleet', () => {
  test('status lists each cluster of another account with its target role, unavailable after a failure, ok once it works', async () => {
    const before = JSON.parse((await runCli(['status', ...local(stack), '--json'])).stdout);
    expect(before.targets).toEqual([
      {
        alias: 'staging',
        name: 'staging',
        account: '444455556666',
        region: 'eu-west-1',
        status: 'unavailable',
        lastFailure: {
          at: expect.any(String),
          requestId: 'req-stg-1',
          message: expect.stringContaining(TARGET_ROLE_ARN),
        },
      },
    ]);
    // The existing fields are all still there.
    expect(Object.keys(before)).toEqual(['queues', 'expiriesDue24h', 'lastReconcile', 'targets']);
    const text = await runCli(['status', ...local(stack)]);
    expect(text.stdout).toMatch(
      /staging\s+444455556666\/eu-west-1\s+unavailable\s+\S+Z req-stg-1: AssumeRole/,
    );

    createTargetRole(stack.harness.sts);
    await stack.harness.send({
      ...fixture('dev-view-grant'),
      requestId: 'req-stg-2',
      clusterName: 'staging',
    });
    await stack.harness.drain();
    const after = JSON.parse((await runCli(['status', ...local(stack), '--json'])).stdout);
    expect(after.targets).toMatchObject([
      { alias: 'staging', status: 'ok', lastFailure: { requestId: 'req-stg-1' } },
    ]);
  });

  test('grants and audit show the account and region of each cluster', async () => {
    const grants = JSON.parse(
      (await runCli(['grants', ...local(stack), '--cluster', 'staging', '--json'])).stdout,
    ) as { grantId: string; clusterName: string; account: string; region: string }[];
    expect(grants).toMatchObject([
      { grantId: 'req-stg-2', clusterName: 'staging', account: '444455556666', region: 'eu-west-1' },
    ]);
    const grantsText = await runCli(['grants', ...local(stack), '--cluster', 'staging']);
    expect(grantsText.stdout).toMatch(/req-stg-2\s+staging\s.*444455556666\/eu-west-1/);
    const audit = await runCli(['audit', ...local(stack), '--cluster', 'staging']);
    expect(audit.stdout).toMatch(/granted\s+ticket\s+staging\s.*req-stg-2.*444455556666\/eu-west-1/);
    expect(audit.stdout).toMatch(
      /failed\s+ticket\s+staging\s.*TARGET_ROLE_UNAVAILABLE.*444455556666\/eu-west-1/,
    );
    // The dead letter of the failed attempt says where its cluster is, too.
    const dlq = JSON.parse((await runCli(['dlq', 'list', ...local(stack), '--json'])).stdout);
    expect(dlq).toEqual([
      expect.objectContaining({
        requestId: 'req-stg-1',
        clusterName: 'staging',
        account: '444455556666',
        region: 'eu-west-1',
        reason: expect.objectContaining({ code: 'TARGET_ROLE_UNAVAILABLE' }),
      }),
    ]);
    const dlqText = await runCli(['dlq', 'list', ...local(stack)]);
    expect(dlqText.stdout).toMatch(/req-stg-1\s+ticket\s+staging\s+444455556666\/eu-west-1\s/);
  });

  test('access reads a cluster of another account through the read-only operator target role, set against its own ledger', async () => {
    const h = stack.harness;
    h.eks.seedEntry(
      'staging',
      { principalArn: STRANGER_ENTRY, kubernetesGroups: ['ops'], policies: [] },
      STAGING,
    );
    h.eks.resetCalls();
    const stsBefore = h.sts.calls().length;
    const r = await runCli(['access', ...local(stack), '--cluster', 'staging', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((x) => x.principalArn)).toEqual([TEAM_A, STRANGER_ENTRY].sort());
    // The ledger of staging is the one keyed by its account and region: our grant is there.
    expect(rows.find((x) => x.principalArn === TEAM_A)).toMatchObject({
      managed: true,
      kubernetesGroups: ['team-a-readers'],
      grants: [{ grantId: 'req-stg-2', status: 'active' }],
      drift: false,
    });
    expect(rows.find((x) => x.principalArn === STRANGER_ENTRY)).toMatchObject({ managed: false, grants: [] });
    // Every EKS call went to staging's account-region (none to the home account), and every one read.
    const calls = h.eks.calls();
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) {
      expect(c, c.operation).toMatchObject({ clusterName: 'staging', ...STAGING, status: 200 });
      expect(c.operation).toMatch(/^(List|Describe)/);
    }
    // One AssumeRole, as the operator, of the operator's role (never a worker's writing target role).
    const assumed = h.sts.calls().slice(stsBefore);
    expect(assumed).toEqual([
      {
        action: 'AssumeRole',
        roleArn: OPERATOR_TARGET_ROLE_ARN,
        callerAccessKeyId: credentialsOf('operator').accessKeyId,
        status: 200,
      },
    ]);
    const text = await runCli(['access', ...local(stack), '--cluster', 'staging']);
    expect(text.stdout).toMatch(/^cluster staging: 444455556666\/eu-west-1\nprincipal\s+type/);
    expect(text.stdout).toMatch(/role\/team-a-dev\s+STANDARD\s+team-a-readers\s+\S+\s+yes\s+req-stg-2/);
  });

  test('plan on a cluster of another account shows its ARN and the exact calls against its live state, and writes nothing', async () => {
    const h = stack.harness;
    const dir = await mkdtemp(join(tmpdir(), 'cli-fleet-plan-'));
    const file = join(dir, 'request.json');
    const NEW = 'arn:aws:iam::111122223333:role/team-b-dev';
    await writeFile(
      file,
      JSON.stringify({
        ...fixture('dev-view-grant'),
        requestId: 'req-stg-plan',
        clusterName: 'staging',
        principalArn: NEW,
      }),
    );
    const before = JSON.stringify(h.eks.snapshot('staging', STAGING));
    h.eks.resetCalls();
    stack.dynamoProxy.operations.length = 0;
    stack.sqsProxy.operations.length = 0;
    const r = await runCli(['plan', ...local(stack), '--file', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan).toMatchObject({
      allowed: true,
      rule: 'clusters.staging.rules.ticket',
      clusterArn: 'arn:aws:eks:eu-west-1:444455556666:cluster/staging',
      current: { exists: false },
    });
    expect(plan.calls.map((c: { operation: string }) => c.operation)).toEqual([
      'CreateAccessEntry',
      'AssociateAccessPolicy',
    ]);
    expect(plan.calls[0]).toMatchObject({ clusterName: 'staging', principalArn: NEW });
    // Reads only: EKS in staging's account-region, DynamoDB; nothing at SQS.
    for (const c of h.eks.calls()) {
      expect(c).toMatchObject({ ...STAGING, status: expect.any(Number) });
      expect(c.operation).toMatch(/^(List|Describe)/);
    }
    expect(stack.dynamoProxy.operations.every((op) => /^(GetItem|Query|Scan|DescribeTable)$/.test(op))).toBe(
      true,
    );
    expect(stack.sqsProxy.operations).toEqual([]);
    expect(JSON.stringify(h.eks.snapshot('staging', STAGING))).toBe(before);

    // The principal we granted: the plan sees its live entry there (nothing to do for the same access).
    await writeFile(
      file,
      JSON.stringify({ ...fixture('dev-view-grant'), requestId: 'req-stg-2', clusterName: 'staging' }),
    );
    const again = JSON.parse((await runCli(['plan', ...local(stack), '--file', file, '--json'])).stdout);
    expect(again).toMatchObject({
      allowed: true,
      current: { exists: true, kubernetesGroups: ['team-a-readers'] },
    });
    const text = await runCli(['plan', ...local(stack), '--file', file]);
    expect(text.stdout).toMatch(
      /^ALLOWED by clusters\.staging\.rules\.ticket.*\non arn:aws:eks:eu-west-1:444455556666:cluster\/staging/,
    );
  });

  test('a missing operator target role fails access and plan with one clear line (exit 1), and works once deployed', async () => {
    const h = stack.harness;
    h.sts.deleteRole(OPERATOR_TARGET_ROLE_ARN);
    try {
      const r = await runCli(['access', ...local(stack), '--cluster', 'staging']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /cannot read staging \(account 444455556666, region eu-west-1\): the operator target role eks-access-grants-test-operator-target cannot be assumed there \(AccessDenied: .*\)\. Deploy infra\/target-account\.yml in account 444455556666 with OperatorRoleArn/,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
      const dir = await mkdtemp(join(tmpdir(), 'cli-fleet-plan-'));
      const file = join(dir, 'request.json');
      await writeFile(file, JSON.stringify({ ...fixture('dev-view-grant'), clusterName: 'staging' }));
      const p = await runCli(['plan', ...local(stack), '--file', file]);
      expect(p.code).toBe(1);
      expect(p.stderr).toMatch(/cannot read staging \(account 444455556666, region eu-west-1\)/);
    } finally {
      h.sts.createRole(OPERATOR_TARGET_ROLE_ARN, {
        trustedAccessKeys: [credentialsOf('operator').accessKeyId],
      });
    }
    const ok = await runCli(['access', ...local(stack), '--cluster', 'staging', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  test('revoke on a cluster of another account ends the grant there, through its own ledger key and queue group', async () => {
    const h = stack.harness;
    // The worker keeps polling, as in local mode, so the CLI's request is processed while it waits.
    h.runner.start();
    const r = await runCli([
      'revoke',
      ...local(stack),
      '--cluster',
      'staging',
      '--principal',
      TEAM_A,
      '--grant',
      'req-stg-2',
      '--reason',
      'left the team',
      '--json',
    ]).finally(() => h.runner.stop());
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      outcome: 'revoked',
      clusterName: 'staging',
      clusterArn: 'arn:aws:eks:eu-west-1:444455556666:cluster/staging',
      grantId: 'req-stg-2',
      source: 'operator',
    });
    expect(h.eks.snapshot('staging', STAGING).map((e) => e.principalArn)).not.toContain(TEAM_A);
  });

  test('the operator target role trusts only the operator identity, and the workers’ role not the operator', async () => {
    // The operator's key gets a session; any other actor's (here the ticket intake's) is refused.
    const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/client-sts');
    const sts = new STSClient({
      region: 'us-east-1',
      endpoint: stack.harness.sts.endpoint,
      credentials: credentialsOf('operator'),
    });
    try {
      await expect(
        sts.send(new AssumeRoleCommand({ RoleArn: OPERATOR_TARGET_ROLE_ARN, RoleSessionName: 'op' })),
      ).resolves.toMatchObject({ Credentials: { AccessKeyId: expect.stringMatching(/^ASIA/) } });
      const stranger = new STSClient({
        region: 'us-east-1',
        endpoint: stack.harness.sts.endpoint,
        credentials: credentialsOf('ticketIntake'),
      });
      await expect(
        stranger.send(new AssumeRoleCommand({ RoleArn: OPERATOR_TARGET_ROLE_ARN, RoleSessionName: 'xx' })),
      ).rejects.toMatchObject({ name: 'AccessDenied' });
      // Nor may the operator assume the workers' writing target role there.
      await expect(
        sts.send(new AssumeRoleCommand({ RoleArn: TARGET_ROLE_ARN, RoleSessionName: 'op' })),
      ).rejects.toMatchObject({ name: 'AccessDenied' });
      stranger.destroy();
    } finally {
      sts.destroy();
    }
  });
});
