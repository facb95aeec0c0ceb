import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, test } from 'vitest';
import { signRequest } from '../../functions/core/signature.js';
import { fixture } from '../helpers/fixtures.js';

const ROOT = join(import.meta.dirname, '../..');
const START = ['--import', 'tsx', 'infra/local/start.ts'];

function run(args: string[]) {
  return spawn(process.execPath, [...START, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOCAL_MAX_RUN_MS: '60000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('local mode (npm start)', () => {
  test('runs every sample through the real handler, prints outcomes and entries, and exits 0', async () => {
    const child = run([]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(err).not.toMatch(/local mode failed/);
    expect(code).toBe(0);
    expect(out).toMatch(/req-dev-view-0001\s+ticket\s+granted/);
    expect(out).toMatch(/req-invalid-system-group-0001\s+ticket\s+rejected.*SYSTEM_GROUP/);
    expect(out).toMatch(/req-prod-bg-0001\s+break-glass\s+granted \(high\)/);
    // Fleet: the staging sample went to the other account through its target role (local STS).
    expect(out).toMatch(/req-staging-view-0001\s+ticket\s+granted/);
    expect(out).toMatch(/Access entries on cluster staging \(account 444455556666, eu-west-1\)/);
    // The short break-glass grant expired during the run and alice's prior access is back.
    expect(out).toMatch(/expiry-\w+\s+expiry\s+expired \(high\)\s+prod:111122223333:role\/sre-alice/);
    expect(out).toMatch(/role\/sre-alice\s+sre-oncall\s+View@team-a\s+no/);
    // Intake: signed webhooks over HTTP, CloudTrail events through the role intake.
    expect(out).toMatch(/events\/ticket\/v1-grant\.json\s+POST \/tickets\s+202/);
    expect(out).toMatch(/events\/ticket\/break-glass\.json\s+POST \/break-glass\s+202/);
    expect(out).toMatch(/events\/ticket\/jira-approved\.json\s+POST \/tickets\s+202/);
    expect(out).toMatch(/create-role-failed\.json\s+CreateRole\s+-\s+ignored/);
    expect(out).toMatch(/create-role-unmatched\.json\s+CreateRole\s+-\s+nothing/);
    expect(out).toMatch(/role\/eks\/dev\/view\/ci-reader\s+-\s+View@/);
  });

  test('--serve prints one JSON line of endpoints first and stops cleanly on SIGTERM', async () => {
    const child = run(['--serve']);
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve) => lines.once('line', resolve));
    const info = JSON.parse(first);
    expect(Object.keys(info)).toEqual(
      expect.arrayContaining([
        'region',
        'eksEndpoint',
        'sqsEndpoint',
        'requestQueueUrl',
        'dlqUrl',
        'auditLog',
        'dynamodbEndpoint',
        'schedulerEndpoint',
        'httpEndpoint',
        'signingSecrets',
      ]),
    );
    expect(info.eksEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.clusters).toEqual(
      expect.arrayContaining([
        { alias: 'dev', name: 'dev', account: '123456789012', region: 'us-east-1' },
        { alias: 'staging', name: 'staging', account: '444455556666', region: 'eu-west-1' },
      ]),
    );
    // Wait until the samples are done, then sign a request with the printed secret, as a person would.
    await new Promise<void>((resolve) => lines.on('line', (l) => l.startsWith('serving') && resolve()));
    const body = JSON.stringify(fixture('dev-edit-grant', { requestId: 'req-curl-0001' }));
    const res = await fetch(`${info.httpEndpoint}/tickets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signRequest(info.signingSecrets.tickets, body) },
      body,
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ requestId: 'req-curl-0001' });
    const unsigned = await fetch(`${info.httpEndpoint}/tickets`, { method: 'POST', body });
    expect(unsigned.status).toBe(401);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
  });
});
