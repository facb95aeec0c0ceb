/**
 * How the operator CLI finds a cluster (infra/cli/clusters.ts): as the workers do, from the guardrail
 * policy and the account of the request queue. When the policy cannot be read, a cluster of another
 * account must not silently become "the cluster of that name in the deployment's own account": `access`
 * would show another cluster's entries under the alias, `plan` would plan on it, and `revoke`/`extend`
 * would look the grant up under the wrong ledger key and send to the wrong queue and message group.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { clustersOf, placeOf } from '../../infra/cli/clusters.js';
import type { Context } from '../../infra/cli/context.js';
import { CliError } from '../../infra/cli/errors.js';
import { EXAMPLE_POLICY_PATH } from '../../infra/policy-file.js';

const QUEUE = 'http://127.0.0.1:1/123456789012/requests.fifo';

function contextFor(policyPath: string, queueUrl = QUEUE): Context {
  return {
    target: {
      region: 'us-east-1',
      queues: [{ name: 'requests.fifo', url: queueUrl, dlq: false, worker: 'requests' }],
      policyPath,
    },
  } as unknown as Context;
}

describe('CLI cluster addressing', () => {
  test('resolves an alias of another account to its cluster key, as the workers do', async () => {
    const place = await placeOf(contextFor(EXAMPLE_POLICY_PATH), 'staging');
    expect(place.key).toBe('444455556666:eu-west-1:staging');
    expect(place.target).toMatchObject({ account: '444455556666', region: 'eu-west-1' });
  });

  test('a policy file that cannot be read is an error naming it, not a home cluster of that name', async () => {
    const missing = join(tmpdir(), 'no-such-dir', 'policy.json');
    await expect(placeOf(contextFor(missing), 'staging')).rejects.toThrow(CliError);
    await expect(clustersOf(contextFor(missing))).rejects.toThrow(/policy\.json/);
  });

  test('an invalid policy (two aliases of one cluster) is an error with the policy’s own message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'eks-access-grants-cli-'));
    const path = join(dir, 'policy.json');
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        clusters: {
          a: { name: 'shared', account: '444455556666', region: 'eu-west-1', rules: {} },
          b: { name: 'shared', account: '444455556666', region: 'eu-west-1', rules: {} },
        },
      }),
    );
    await expect(placeOf(contextFor(path), 'a')).rejects.toThrow(/same EKS cluster/);
  });

  test('a queue URL without an account keeps the single-account addressing (hand-made setups)', async () => {
    const ctx = contextFor(EXAMPLE_POLICY_PATH, 'http://127.0.0.1:1/queue/requests.fifo');
    expect(await clustersOf(ctx)).toBeUndefined();
    expect(await placeOf(ctx, 'dev')).toEqual({ alias: 'dev', cluster: 'dev', key: 'dev' });
  });
});
