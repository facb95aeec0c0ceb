/**
 * The local EventBridge routes as the deployed stack does, over real HTTP: CloudTrail IAM events put on the
 * default bus reach the role intake (its rule's pattern read from the template) and end in EKS; audit records
 * on the audit bus reach the audit log; an event no rule matches is dropped; malformed entries are answered
 * one by one; the audit bus policy refuses records from principals it does not list.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
  type PutEventsResponse,
} from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_DETAIL_TYPE, AUDIT_SOURCE } from '../../functions/adapters/audit-bus.js';
import { type AuditOutcome, type AuditRecord, buildAuditRecord } from '../../functions/core/audit.js';
import { credentialsOf } from '../../infra/local/identities.js';
import { CLOUDTRAIL_CREDENTIALS, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../infra/local/stack.js';
import { VIEW } from '../helpers/fixtures.js';
import type { Harness } from '../helpers/harness.js';
import { startHarnessWithRoleIntake } from '../helpers/intakes.js';

const TEAM_A_CI = 'arn:aws:iam::111122223333:role/team-a-ci';
const INTAKE_RULE = 'roleLifecycleIntake-eventBridge-1';
/** The local identities' keys (infra/local/identities.ts); LOCAL_CREDENTIALS is nobody's: a stranger. */
const WORKER_KEY = credentialsOf('grantWorker').accessKeyId;
const ROLE_INTAKE_KEY = credentialsOf('roleLifecycleIntake').accessKeyId;
const TICKET_INTAKE_KEY = credentialsOf('ticketIntake').accessKeyId;

function sample(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../../events/cloudtrail/${name}.json`, import.meta.url), 'utf8'));
}

/** A CloudTrail event as the PutEvents entry that carries it. */
function entryOf(event: Record<string, unknown>): PutEventsRequestEntry {
  return {
    Source: String(event.source),
    DetailType: String(event['detail-type']),
    Detail: JSON.stringify(event.detail),
    Resources: event.resources as string[],
  };
}

let h: Harness;
const clients: EventBridgeClient[] = [];
function busClient(accessKeyId: string): EventBridgeClient {
  const client = new EventBridgeClient({
    endpoint: h.aws.endpoints.eventbridge,
    region: LOCAL_REGION,
    credentials: { accessKeyId, secretAccessKey: 'x' },
    maxAttempts: 1,
  });
  clients.push(client);
  return client;
}
const put = (accessKeyId: string, entries: PutEventsRequestEntry[]): Promise<PutEventsResponse> =>
  busClient(accessKeyId).send(new PutEventsCommand({ Entries: entries }));
const cloudTrail = (events: Record<string, unknown>[]) =>
  put(CLOUDTRAIL_CREDENTIALS.accessKeyId, events.map(entryOf));
const invocations = () => h.aws.eventInvokers.roleLifecycleIntake?.invocations() ?? [];
const routesOf = (eventId: string | undefined) =>
  h.aws.eventbridgeEmulator.events().find((e) => e.id === eventId)?.routes;
/** A well-formed audit record (the harness checks every logged one against the schema). */
const record = (requestId: string, outcome: AuditOutcome): AuditRecord =>
  buildAuditRecord(
    { requestId, outcome, attempt: 1, at: new Date(), attemptKey: 'k', request: { source: 'ticket' } },
    (s) => createHash('sha256').update(s).digest('hex').slice(0, 32),
  );
const auditEntry = (detail: AuditRecord): PutEventsRequestEntry => ({
  EventBusName: 'audit',
  Source: AUDIT_SOURCE,
  DetailType: AUDIT_DETAIL_TYPE,
  Detail: JSON.stringify(detail),
});

beforeAll(async () => {
  ({ h } = await startHarnessWithRoleIntake());
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await h?.close();
});

describe('CloudTrail IAM events on the default bus', () => {
  it('reach the role intake through its rule, and the mapped access is granted', async () => {
    const out = await cloudTrail([sample('create-role-tagged')]);
    expect(out).toMatchObject({ FailedEntryCount: 0, Entries: [{ EventId: expect.any(String) }] });
    const eventId = out.Entries?.[0]?.EventId;
    expect(routesOf(eventId)).toEqual([INTAKE_RULE]);
    await h.aws.eventsIdle();
    // The intake got the EventBridge envelope, not the PutEvents entry.
    expect(invocations().find((i) => i.eventId === eventId)).toMatchObject({
      status: 'succeeded',
      result: { outcome: 'enqueued' },
    });
    await h.drain();
    expect(h.eks.snapshot('dev').find((e) => e.principalArn === TEAM_A_CI)?.policies).toEqual([
      { policyArn: VIEW, accessScope: { type: 'namespace', namespaces: ['team-a', 'team-b'] } },
    ]);
  });

  it('are dropped when no rule matches: a failed IAM call, another IAM action, another source', async () => {
    const before = invocations().length;
    const attach = sample('tag-role');
    attach.detail = { ...(attach.detail as object), eventName: 'AttachRolePolicy' };
    const other = { ...sample('tag-role'), source: 'my.iam.copy' };
    const out = await put(
      CLOUDTRAIL_CREDENTIALS.accessKeyId,
      [sample('create-role-failed'), attach].map(entryOf),
    );
    const stranger = await put('stranger-key', [entryOf(other)]);
    expect([out.FailedEntryCount, stranger.FailedEntryCount]).toEqual([0, 0]);
    for (const e of [...(out.Entries ?? []), ...(stranger.Entries ?? [])])
      expect(routesOf(e.EventId)).toEqual([]);
    await h.aws.eventsIdle();
    expect(invocations()).toHaveLength(before);
  });

  it('are refused from anyone but CloudTrail: an aws. source is reserved to AWS', async () => {
    const before = invocations().length;
    const eventsBefore = h.aws.eventbridgeEmulator.events().length;
    for (const key of ['stranger-key', TICKET_INTAKE_KEY, ROLE_INTAKE_KEY, LOCAL_CREDENTIALS.accessKeyId]) {
      const out = await put(key, [entryOf(sample('create-role-tagged'))]);
      expect(out, key).toMatchObject({
        FailedEntryCount: 1,
        Entries: [{ ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: expect.any(String) }],
      });
      expect(out.Entries?.[0]?.EventId).toBeUndefined();
    }
    await h.aws.eventsIdle();
    expect(invocations()).toHaveLength(before);
    expect(h.aws.eventbridgeEmulator.events()).toHaveLength(eventsBefore);
  });
});

describe('the audit bus', () => {
  it("takes records from this system's roles into the audit log", async () => {
    const before = h.aws.auditEvents().length;
    const worker = await put(WORKER_KEY, [auditEntry(record('bus-1', 'granted'))]);
    const intake = await put(ROLE_INTAKE_KEY, [auditEntry(record('bus-2', 'rejected'))]);
    expect([worker.FailedEntryCount, intake.FailedEntryCount]).toEqual([0, 0]);
    expect(
      h.aws
        .auditEvents()
        .slice(before)
        .map((e) => e.detail),
    ).toMatchObject([
      { requestId: 'bus-1', outcome: 'granted' },
      { requestId: 'bus-2', outcome: 'rejected' },
    ]);
    expect(routesOf(worker.Entries?.[0]?.EventId)).toContain('AuditArchive');
  });

  it('refuses an eks-access-grants record from a stranger or a role the policy does not list, entry by entry', async () => {
    const before = h.aws.auditEvents().length;
    for (const key of [
      'stranger-key',
      LOCAL_CREDENTIALS.accessKeyId,
      TICKET_INTAKE_KEY,
      credentialsOf('operator').accessKeyId,
    ]) {
      const out = await put(key, [
        auditEntry(record('forged-1', 'revoked')),
        // The same call's other entries stand on their own.
        { EventBusName: 'audit', Source: 'my-app', DetailType: 'x', Detail: '{}' },
      ]);
      expect(out, key).toMatchObject({
        FailedEntryCount: 1,
        Entries: [
          {
            ErrorCode: 'AccessDeniedException',
            ErrorMessage: expect.stringMatching(
              /not authorized to perform: events:PutEvents .*explicit deny/,
            ),
          },
          { EventId: expect.any(String) },
        ],
      });
      // Not an eks-access-grants record: accepted, matched by no rule, so not in the audit log.
      expect(routesOf(out.Entries?.[1]?.EventId)).toEqual([]);
    }
    expect(h.aws.auditEvents()).toHaveLength(before);
  });

  it('drops a non-audit event put on it instead of logging it as an audit record', async () => {
    const before = h.aws.auditEvents().length;
    const onAuditBus = await put(CLOUDTRAIL_CREDENTIALS.accessKeyId, [
      { ...entryOf(sample('tag-role')), EventBusName: 'audit' },
    ]);
    expect(onAuditBus.FailedEntryCount).toBe(0);
    expect(routesOf(onAuditBus.Entries?.[0]?.EventId)).toEqual([]);
    await h.aws.eventsIdle();
    expect(h.aws.auditEvents()).toHaveLength(before);
  });
});

describe('PutEvents answers', () => {
  it('report each malformed entry in its place and accept the rest', async () => {
    const out = await put('stranger-key', [
      { DetailType: 'x', Detail: '{}' },
      { Source: 's', Detail: '{}' },
      { Source: 's', DetailType: 'x', Detail: 'not json' },
      { Source: 's', DetailType: 'x', Detail: '[1,2]' },
      { Source: 's', DetailType: 'x', Detail: '{"ok":true}' },
    ]);
    expect(out.FailedEntryCount).toBe(4);
    expect(out.Entries?.map((e) => e.ErrorCode ?? 'ok')).toEqual([
      'InvalidArgument',
      'InvalidArgument',
      'MalformedDetail',
      'MalformedDetail',
      'ok',
    ]);
    expect(out.Entries?.[0]?.ErrorMessage).toMatch(/Source/);
  });

  it('fail the whole call only for a malformed request, and the bus keeps serving', async () => {
    const raw = (body: string) =>
      fetch(h.aws.endpoints.eventbridge, {
        method: 'POST',
        headers: { 'x-amz-target': 'AWSEvents.PutEvents', 'content-type': 'application/x-amz-json-1.1' },
        body,
      });
    const cases: Array<[string, string]> = [
      ['not json', 'SerializationException'],
      ['[]', 'SerializationException'],
      ['{}', 'ValidationException'],
      [
        JSON.stringify({
          Entries: Array.from({ length: 11 }, () => ({ Source: 's', DetailType: 'd', Detail: '{}' })),
        }),
        'ValidationException',
      ],
      [JSON.stringify({ Entries: [null] }), 'SerializationException'],
      [JSON.stringify({ Entries: [{ Source: 5, DetailType: 'd', Detail: '{}' }] }), 'SerializationException'],
      [
        JSON.stringify({ Entries: [{ Source: 's', DetailType: 'd', Detail: '{}', Resources: 'r' }] }),
        'SerializationException',
      ],
    ];
    for (const [body, type] of cases) {
      const res = await raw(body);
      expect([res.status, res.headers.get('x-amzn-errortype')], body.slice(0, 40)).toEqual([400, type]);
    }
    // Unsigned: a stranger, which may still put an ordinary event.
    const ok = await raw(JSON.stringify({ Entries: [{ Source: 's', DetailType: 'd', Detail: '{}' }] }));
    expect(await ok.json()).toMatchObject({
      FailedEntryCount: 0,
      Entries: [{ EventId: expect.any(String) }],
    });
  });
});
