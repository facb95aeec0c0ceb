/**
 * The operator CLI on a fleet (issue 13): `status` shows a cluster whose target role is missing, and
 * `grants` / `audit` say which account and region each cluster is in. The CLI runs as a child process
 * against the loopback stack (helpers/cli.ts).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CliStack, local, runCli, startCliStack } from '../helpers/cli.js';
import { fixture } from '../helpers/fixtures.js';
import { TARGET_ROLE_ARN } from '../helpers/harness.js';

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

    stack.harness.sts.createRole(TARGET_ROLE_ARN);
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
  });

  test('plan refuses a cluster in another account with a clear error (exit 1) instead of planning against the home account', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-fleet-plan-'));
    const file = join(dir, 'request.json');
    await writeFile(
      file,
      JSON.stringify({ ...fixture('dev-view-grant'), requestId: 'req-stg-plan', clusterName: 'staging' }),
    );
    const r = await runCli(['plan', ...local(stack), '--file', file, '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /plan for staging \(account 444455556666, region eu-west-1\) is not supported yet/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('access refuses a cluster in another account with a clear error (exit 1)', async () => {
    const r = await runCli(['access', ...local(stack), '--cluster', 'staging', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /access for staging \(account 444455556666, region eu-west-1\) is not supported yet/,
    );
  });
});
