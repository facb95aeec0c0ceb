import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, test } from 'vitest';
import { signRequest } from '../../functions/core/signature.js';
import { fixture } from '../helpers/fixtures.js';

const ROOT = join(import.meta.dirname, '../..');
const START = ['--import', 'tsx', 'infra/local/start.ts'];

function run(args: string[]) {
  return spawn(process.execPath, [...START, ...args], {
    cwd: ROOT,
    // Its own state dir: serve.json and the audit log are not shared with other test files or a running stack.
    env: {
      ...process.env,
      LOCAL_MAX_RUN_MS: '60000',
      LOCAL_STATE_DIR: mkdtempSync(join(tmpdir(), 'eag-local-')),
    },
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
    // CloudTrail events go through the local bus: a failed IAM call matches no rule and never reaches the intake.
    expect(out).toMatch(/create-role-failed\.json\s+CreateRole\s+-\s+dropped: no rule matched/);
    expect(out).toMatch(/create-role-unmatched\.json\s+CreateRole\s+-\s+nothing/);
    expect(out).toMatch(/role\/eks\/dev\/view\/ci-reader\s+-\s+View@/);
    // The scheduled reconciler runs one full pass over all three clusters (staging through its target
    // role): every principal the samples gave access to is checked, and nothing has drifted.
    const pass =
      /Reconcile pass: (\d+) clusters, (\d+) principals checked, (\d+) drifted, (\d+) errors.*full pass in/.exec(
        out,
      );
    expect(pass?.slice(1)).toEqual(['3', expect.any(String), '0', '0']);
    expect(Number(pass?.[2])).toBeGreaterThan(0);
    // Seven functions cold-start in their own threads: size the wait for a busy machine.
  }, 240_000);

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
        'breakGlassQueueUrl',
        'breakGlassDlqUrl',
        'operatorCredentials',
        'ledgerTable',
        'policyPath',
      ]),
    );
    expect(info.operatorCredentials).toEqual({
      accessKeyId: expect.any(String),
      secretAccessKey: expect.any(String),
    });
    expect(info.eksEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.operatorTargetRoleName).toBe('eks-access-grants-local-operator-target');
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
    // Straight onto the break-glass queue with a key local SQS does not know: a stranger, refused.
    const stranger = new SQSClient({
      region: info.region,
      endpoint: info.sqsEndpoint,
      credentials: { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'x' },
    });
    const forged = fixture('prod-break-glass', { requestId: 'req-stranger-bg-0001' });
    await stranger.send(
      new SendMessageCommand({
        QueueUrl: info.breakGlassQueueUrl,
        MessageBody: JSON.stringify(forged),
        MessageGroupId: 'stranger',
        MessageDeduplicationId: forged.requestId,
      }),
    );
    stranger.destroy();
    const refused = await waitForAudit(info.auditLog, forged.requestId);
    expect(refused).toMatchObject({
      outcome: 'rejected',
      severity: 'high',
      reason: { code: 'UNTRUSTED_SENDER' },
    });

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
    const strangerBus = bus('stranger');
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
      const forgedAudit = await strangerBus.send(
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
      expect(forgedAudit.Entries?.[0]?.ErrorCode).toBe('AccessDeniedException');
      expect((await cloudTrail.send(new PutEventsCommand({ Entries: [entry] }))).FailedEntryCount).toBe(0);
    } finally {
      cloudTrail.destroy();
      strangerBus.destroy();
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
  }, 240_000);
});

/** The first audit record of `requestId` in the JSON-lines audit log, polled a bounded number of times. */
async function waitForAudit(file: string, requestId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const entry = JSON.parse(line) as { detail?: Record<string, unknown> } & Record<string, unknown>;
      const record = entry.detail ?? entry;
      if (record.requestId === requestId) return record;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no audit record for ${requestId} in ${file}`);
}
