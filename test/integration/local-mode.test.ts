import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
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
    // The short break-glass grant expired during the run and alice's prior access is back.
    expect(out).toMatch(/expiry-\w+\s+expiry\s+expired \(high\)\s+prod:111122223333:role\/sre-alice/);
    expect(out).toMatch(/role\/sre-alice\s+sre-oncall\s+View@team-a\s+no/);
    // Intake: signed webhooks over HTTP, CloudTrail events through the role intake.
    expect(out).toMatch(/events\/ticket\/v1-grant\.json\s+POST \/tickets\s+202/);
    expect(out).toMatch(/events\/ticket\/break-glass\.json\s+POST \/break-glass\s+202/);
    expect(out).toMatch(/events\/ticket\/jira-approved\.json\s+POST \/tickets\s+202/);
    // CloudTrail events go through the local bus: a failed IAM call matches no rule and never reaches the intake.
    expect(out).toMatch(/create-role-failed\.json\s+CreateRole\s+-\s+dropped: no rule matched/);
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
        'eventBridgeEndpoint',
        'auditBusName',
        'cloudTrailCredentials',
      ]),
    );
    expect(info.eksEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
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

    // Whatever a caller puts on the buses, the stack keeps serving: a CloudTrail event on the audit bus
    // (matched by no rule, dropped), a forged audit record from a stranger (refused), a CloudTrail event as
    // CloudTrail delivers it (to the role intake).
    const bus = (accessKeyId: string) =>
      new EventBridgeClient({
        endpoint: info.eventBridgeEndpoint,
        region: info.region,
        credentials: { accessKeyId, secretAccessKey: 'x' },
        maxAttempts: 1,
      });
    const tagRole = JSON.parse(readFileSync(join(ROOT, 'events/cloudtrail/tag-role.json'), 'utf8'));
    const cloudTrail = bus(info.cloudTrailCredentials.accessKeyId);
    const stranger = bus('stranger');
    try {
      const entry = {
        Source: tagRole.source,
        DetailType: tagRole['detail-type'],
        Detail: JSON.stringify(tagRole.detail),
      };
      const nonAudit = await cloudTrail.send(
        new PutEventsCommand({ Entries: [{ ...entry, EventBusName: info.auditBusName }] }),
      );
      expect(nonAudit.FailedEntryCount).toBe(0);
      const forged = await stranger.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: info.auditBusName,
              Source: 'eks-access-grants',
              DetailType: 'Access Grant Outcome',
              Detail: '{"outcome":"revoked"}',
            },
          ],
        }),
      );
      expect(forged.Entries?.[0]?.ErrorCode).toBe('AccessDeniedException');
      expect((await cloudTrail.send(new PutEventsCommand({ Entries: [entry] }))).FailedEntryCount).toBe(0);
    } finally {
      cloudTrail.destroy();
      stranger.destroy();
    }
    const again = JSON.stringify(fixture('dev-edit-grant', { requestId: 'req-curl-0002' }));
    const still = await fetch(`${info.httpEndpoint}/tickets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signRequest(info.signingSecrets.tickets, again) },
      body: again,
    });
    expect(still.status).toBe(202);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
  });
});
