/**
 * Forgery suite, sender rows (issue 9 items 1, 2, 7; README "Threat model": queue writers, legitimate senders
 * speaking for another source, DLQ writers, bus writers, IAM role creators through CloudTrail, HTTP callers and
 * holders of each signing key). The domain rows (approvals, creators' tags, revoke rights) are in
 * forgery-domain.test.ts. Every row goes through the real path: SendMessage over HTTP to local SQS with each
 * actor's own access key (SQS stamps the SenderId), PutEvents to the local EventBridge (routed by the
 * template's rules, the audit bus policy enforced on the caller's key), signed and unsigned HTTP to the two
 * intakes, the real worker draining its queue into the EKS emulator. Each row asserts: refused with a reason
 * code, audited (an AuditRecord in the audit log; at the HTTP edge the intake's `intake decision` line; a bus
 * refusal is the per-entry PutEvents error, since nothing got in to audit), zero EKS writes (counted at the
 * emulator), nothing lost (queue and DLQ empty); and a positive control shows the legitimate path still
 * works. Fixed rows, no RELIABILITY_SCALE: the same at short and full scale.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
  type PutEventsResponse,
} from '@aws-sdk/client-eventbridge';
import {
  ListMessageMoveTasksCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_DETAIL_TYPE, AUDIT_SOURCE } from '../../functions/adapters/audit-bus.js';
import { messageGroupId } from '../../functions/adapters/queue.js';
import { type AuditRecord, buildAuditRecord } from '../../functions/core/audit.js';
import { type GuardrailPolicy, validatePolicy } from '../../functions/core/policy.js';
import { signRequest } from '../../functions/core/signature.js';
import type { AccessRequest } from '../../functions/core/types.js';
import type { HttpApiServer } from '../../infra/local/http-api.js';
import {
  credentialsOf,
  LOCAL_IDENTITIES,
  senderIdForKey,
  type WorkerName,
} from '../../infra/local/identities.js';
import { CLOUDTRAIL_CREDENTIALS, LOCAL_REGION } from '../../infra/local/stack.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile, readPolicyDocument } from '../../infra/policy-file.js';
import { ADMIN, fixture, VIEW } from '../helpers/fixtures.js';
import { captureLogger, eksWrites, type Harness, type Sender } from '../helpers/harness.js';
import { serveHttpIntakes, startHarnessWithRoleIntake } from '../helpers/intakes.js';

const TICKET_SECRET = 'forgery-senders-ticket-secret';
const BREAK_GLASS_SECRET = 'forgery-senders-break-glass-secret';
const STRANGER_KEY = 'AKIASTRANGERFORGERY';
const ONCALL = 'arn:aws:iam::111122223333:role/oncall';
const TEAM_A_CI = 'arn:aws:iam::111122223333:role/team-a-ci';

const cloudtrail = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../../events/cloudtrail/${name}.json`, import.meta.url), 'utf8'));

/** One stack: the harness (local SQS, dynalite, EventBridge, EKS, the real worker) with the role intake on the bus. */
interface Stack {
  h: Harness;
  /** Successful EKS writes so far, counted at the emulator. */
  writes(): number;
  close(): Promise<void>;
}

async function startStack(worker: WorkerName | 'both', policy?: GuardrailPolicy): Promise<Stack> {
  const { h } = await startHarnessWithRoleIntake({ worker, policy });
  return { h, writes: () => eksWrites(h).length, close: () => h.close() };
}

/** Nothing lost: every message was consumed and acknowledged, none retried into the DLQ. */
async function expectNothingLost(h: Harness): Promise<void> {
  await h.aws.eventsIdle();
  await h.drain();
  expect(await h.queueDepth()).toBe(0);
  expect(await h.dlqBodies()).toEqual([]);
}

const untrusted = (requestId: string, sender: string) => ({
  requestId,
  outcome: 'rejected',
  severity: 'high',
  senderId: sender,
  reason: { code: 'UNTRUSTED_SENDER' },
  changes: [],
});

describe('forgery suite: who sent it', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  describe('queue writers (anyone allowed sqs:SendMessage; a system role speaking for another source)', () => {
    const rows: Array<{
      queue: string;
      worker: WorkerName;
      forged: Array<{ sender: Sender; request: AccessRequest }>;
      legit: { sender: Sender; request: AccessRequest; cluster: string };
    }> = [
      {
        queue: 'the requests queue',
        worker: 'grantWorker',
        forged: [
          { sender: 'stranger', request: fixture('prod-break-glass', { requestId: 'f-rq-stranger-bg' }) },
          {
            sender: 'stranger',
            request: fixture('dev-edit-grant', {
              requestId: 'f-rq-stranger-ticket',
              approvedBy: ['ceo@example.com'],
            }),
          },
          // The role intake's role is trusted for iam-role-created only.
          {
            sender: 'roleLifecycleIntake',
            request: fixture('prod-break-glass', { requestId: 'f-rq-roleintake-bg' }),
          },
          // The ticket intake may not speak for the role intake (a tag-driven grant needs no approval).
          {
            sender: 'ticketIntake',
            request: fixture('dev-view-grant', {
              requestId: 'f-rq-ticket-as-iam',
              source: 'iam-role-created',
            }),
          },
        ],
        legit: {
          sender: 'ticketIntake',
          request: fixture('dev-edit-grant', { requestId: 'ok-rq-ticket' }),
          cluster: 'dev',
        },
      },
      {
        queue: 'the break-glass queue',
        worker: 'breakGlassWorker',
        forged: [
          { sender: 'stranger', request: fixture('prod-break-glass', { requestId: 'f-bg-stranger' }) },
          // The ticket intake claiming source break-glass.
          {
            sender: 'ticketIntake',
            request: fixture('prod-break-glass', { requestId: 'f-bg-ticketintake' }),
          },
          // The standard worker's Scheduler role may not end (or start) anything here.
          {
            sender: 'expiryScheduler',
            request: fixture('prod-break-glass', { requestId: 'f-bg-expiry-role' }),
          },
        ],
        legit: {
          sender: 'breakGlassIntake',
          request: fixture('prod-break-glass', { requestId: 'ok-bg-intake' }),
          cluster: 'prod',
        },
      },
    ];

    it.each(rows)(
      '$queue: forged senders are UNTRUSTED_SENDER (high), audited, no EKS write; the legitimate sender is applied',
      async (row) => {
        stack = await startStack(row.worker);
        const { h } = stack;
        for (const { sender, request } of row.forged) await h.sendAs(sender, request);
        await h.drain();
        for (const { sender, request } of row.forged) {
          const senderId = sender === 'stranger' ? senderIdForKey('test') : LOCAL_IDENTITIES[sender].senderId;
          expect(h.auditsFor(request.requestId), `${sender} ${request.requestId}`).toMatchObject([
            untrusted(request.requestId, senderId),
          ]);
        }
        expect(stack.writes()).toBe(0);
        await expectNothingLost(h);

        await h.sendAs(row.legit.sender, row.legit.request);
        await h.drain();
        expect(h.auditsFor(row.legit.request.requestId)).toMatchObject([{ outcome: 'granted' }]);
        expect(h.eks.snapshot(row.legit.cluster).map((e) => e.principalArn)).toContain(
          row.legit.request.principalArn,
        );
        await expectNothingLost(h);
      },
    );
  });

  describe('DLQ writers (plant a message so a redrive delivers it as ours)', () => {
    /** A cluster the policy knows and EKS does not (yet): the worker dead-letters its request itself. */
    async function ghostPolicy(like: 'dev' | 'prod'): Promise<GuardrailPolicy> {
      const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as { clusters: Record<string, unknown> };
      doc.clusters.ghost = doc.clusters[like];
      return validatePolicy(doc);
    }

    /** As `dlq redrive --all` does: a message move task from the DLQ back to its queue, as the operator. */
    async function redrive(h: Harness): Promise<void> {
      const operator = h.sqsOf('operator');
      await operator.send(
        new StartMessageMoveTaskCommand({ SourceArn: h.aws.dlqArn, DestinationArn: h.aws.queueArn }),
      );
      for (let i = 0; i < 300; i++) {
        const tasks = await operator.send(new ListMessageMoveTasksCommand({ SourceArn: h.aws.dlqArn }));
        if (tasks.Results?.[0]?.Status === 'COMPLETED') return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the message move task did not complete');
    }

    const rows: Array<{ dlq: string; worker: WorkerName; like: 'dev' | 'prod'; request: AccessRequest }> = [
      { dlq: 'the requests DLQ', worker: 'grantWorker', like: 'dev', request: fixture('dev-view-grant') },
      {
        dlq: 'the break-glass DLQ',
        worker: 'breakGlassWorker',
        like: 'prod',
        request: fixture('prod-break-glass'),
      },
    ];

    it.each(rows)(
      '$dlq: what a stranger or another system role wrote is UNTRUSTED_SENDER when redriven; what the worker dead-lettered itself is applied',
      async (row) => {
        stack = await startStack(row.worker, await ghostPolicy(row.like));
        const { h } = stack;
        // The worker's own dead letter: a request for a cluster EKS does not have yet.
        const own = { ...row.request, requestId: 'dlq-own', clusterName: 'ghost' };
        await h.send(own);
        await h.drain();
        expect(h.auditsFor('dlq-own')).toMatchObject([
          { outcome: 'failed', reason: { code: 'CLUSTER_NOT_FOUND' } },
        ]);

        // A system role planting its own source would gain nothing it could not send straight to the queue;
        // what it plants speaks for a source it may not send (a role-created grant, the ticket intake's break-glass).
        const planted: Array<[Sender, string, AccessRequest['source']]> = [
          ['stranger', 'dlq-planted-stranger', row.request.source],
          [
            'ticketIntake',
            'dlq-planted-ticket-intake',
            row.worker === 'grantWorker' ? 'iam-role-created' : 'break-glass',
          ],
          ['operator', 'dlq-planted-operator', row.request.source],
        ];
        for (const [sender, requestId, source] of planted) {
          const forged = { ...row.request, requestId, source, clusterName: 'ghost' };
          await h.sqsOf(sender).send(
            new SendMessageCommand({
              QueueUrl: h.aws.dlqUrl,
              MessageBody: JSON.stringify(forged),
              MessageGroupId: messageGroupId(forged.clusterName, forged.principalArn),
              MessageDeduplicationId: requestId,
              // Claims the intake sent it first: a message attribute is the sender's to write, so it counts for nothing.
              MessageAttributes: {
                verifiedSender: { DataType: 'String', StringValue: LOCAL_IDENTITIES.ticketIntake.senderId },
              },
            }),
          );
        }
        h.eks.addCluster('ghost');
        h.eks.resetCalls();
        await redrive(h);
        await h.drain();
        for (const [sender, requestId] of planted) {
          const senderId = sender === 'stranger' ? senderIdForKey('test') : LOCAL_IDENTITIES[sender].senderId;
          expect(h.auditsFor(requestId), requestId).toMatchObject([untrusted(requestId, senderId)]);
        }
        // Positive control: the worker's own dead letter, redriven, is applied; it is the only EKS write.
        expect(h.auditsFor('dlq-own').map((a) => a.outcome)).toEqual(['failed', 'granted']);
        expect(h.eks.snapshot('ghost').map((e) => e.principalArn)).toEqual([own.principalArn]);
        expect(stack.writes()).toBeGreaterThan(0);
        expect(eksWrites(h).filter((c) => c.clusterName !== 'ghost')).toEqual([]);
        await expectNothingLost(h);
      },
    );
  });
});

describe('forgery suite: who may put events on the buses', () => {
  let stack: Stack;
  const clients: EventBridgeClient[] = [];
  const put = (accessKeyId: string, entries: PutEventsRequestEntry[]): Promise<PutEventsResponse> => {
    const client = new EventBridgeClient({
      endpoint: stack.h.aws.endpoints.eventbridge,
      region: LOCAL_REGION,
      credentials: { accessKeyId, secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    clients.push(client);
    return client.send(new PutEventsCommand({ Entries: entries }));
  };
  const asEntry = (event: Record<string, unknown>, over: Partial<PutEventsRequestEntry> = {}) => ({
    Source: String(event.source),
    DetailType: String(event['detail-type']),
    Detail: JSON.stringify(event.detail),
    ...over,
  });
  const intakeRuns = () => stack.h.aws.eventInvokers.roleLifecycleIntake?.invocations().length ?? 0;

  beforeAll(async () => {
    stack = await startStack('both');
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await stack?.close();
  });

  it("forged audit records (a stranger, the ticket intake's and the operator's roles): AccessDeniedException per entry, never in the audit log; the worker's own records are", async () => {
    const { h } = stack;
    const forged: AuditRecord = buildAuditRecord(
      {
        requestId: 'req-prod-bg-0001',
        outcome: 'revoked',
        attempt: 1,
        at: new Date(),
        attemptKey: 'forged',
        request: { source: 'break-glass', clusterName: 'prod', principalArn: ONCALL },
      },
      (s) => createHash('sha256').update(s).digest('hex').slice(0, 32),
    );
    const before = h.aws.auditEvents().length;
    for (const key of [
      STRANGER_KEY,
      credentialsOf('ticketIntake').accessKeyId,
      credentialsOf('operator').accessKeyId,
    ]) {
      const out = await put(key, [
        {
          EventBusName: 'audit',
          Source: AUDIT_SOURCE,
          DetailType: AUDIT_DETAIL_TYPE,
          Detail: JSON.stringify(forged),
        },
      ]);
      expect(out, key).toMatchObject({
        FailedEntryCount: 1,
        Entries: [{ ErrorCode: 'AccessDeniedException' }],
      });
    }
    expect(h.aws.auditEvents()).toHaveLength(before);
    expect(stack.writes()).toBe(0);

    // Positive control: a request the worker applies is audited through the same bus.
    await h.sendAs('ticketIntake', fixture('dev-view-grant', { requestId: 'bus-ok-ticket' }));
    await h.drain();
    expect(h.auditsFor('bus-ok-ticket')).toMatchObject([{ outcome: 'granted' }]);
    expect(h.aws.auditEvents().length).toBe(before + 1);
    await expectNothingLost(h);
  });

  it('forged CloudTrail IAM events from a stranger: NotAuthorizedForSourceException for aws.iam, dropped under any other source; CloudTrail delivering the same event grants', async () => {
    const { h } = stack;
    const tagged = cloudtrail('create-role-tagged');
    const runs = intakeRuns();
    const writes = stack.writes();
    const refused = await put(STRANGER_KEY, [asEntry(tagged)]);
    expect(refused).toMatchObject({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'NotAuthorizedForSourceException' }],
    });
    // The same event under a source a caller may use matches no rule: accepted by the bus, dropped.
    const copy = await put(STRANGER_KEY, [
      asEntry(tagged, { Source: 'aws-iam' }),
      asEntry(tagged, { Source: 'my.aws.iam' }),
    ]);
    expect(copy.FailedEntryCount).toBe(0);
    for (const e of copy.Entries ?? [])
      expect(h.aws.eventbridgeEmulator.events().find((s) => s.id === e.EventId)?.routes).toEqual([]);
    await expectNothingLost(h);
    expect(intakeRuns()).toBe(runs);
    expect(stack.writes()).toBe(writes);

    // Positive control: CloudTrail's own delivery reaches the role intake, and the trusted creator's tag grants.
    const delivered = await put(CLOUDTRAIL_CREDENTIALS.accessKeyId, [asEntry(tagged)]);
    expect(delivered.FailedEntryCount).toBe(0);
    await expectNothingLost(h);
    expect(intakeRuns()).toBe(runs + 1);
    expect(h.eks.snapshot('dev').find((e) => e.principalArn === TEAM_A_CI)?.policies).toMatchObject([
      { policyArn: VIEW },
    ]);
  });

  it('a CloudTrail event through the bus from an untrusted creator: UNTRUSTED_ACTOR (high), audited by the role intake on the audit bus, no EKS write', async () => {
    // forgery-domain.test.ts drives the creator rows into the intake directly; this is the bus path, end to end.
    const { h } = stack;
    const event = cloudtrail('create-role-untrusted');
    const writes = stack.writes();
    const out = await put(CLOUDTRAIL_CREDENTIALS.accessKeyId, [asEntry(event)]);
    expect(out.FailedEntryCount).toBe(0);
    await expectNothingLost(h);
    const rejected = h.audits().filter((a) => a.reason?.code === 'UNTRUSTED_ACTOR');
    expect(rejected).toMatchObject([{ outcome: 'rejected', severity: 'high', source: 'iam-role-created' }]);
    expect(stack.writes()).toBe(writes);
  });
});

describe('forgery suite: HTTP callers and signing keys', () => {
  let stack: Stack;
  let api: HttpApiServer;
  const intakeLog = captureLogger();

  beforeAll(async () => {
    stack = await startStack('both');
    api = await serveHttpIntakes(stack.h, {
      policy: await loadPolicyFile(EXAMPLE_POLICY_PATH),
      ticketSecret: TICKET_SECRET,
      breakGlassSecret: BREAK_GLASS_SECRET,
      logger: intakeLog,
    });
  });
  afterAll(async () => {
    await api?.close();
    await stack?.close();
  });

  const decisions = (requestId: string) =>
    intakeLog.lines
      .filter((l) => l.message === 'intake decision')
      .map((l) => l.extra[0] as Record<string, unknown>)
      .filter((d) => d.requestId === requestId || d.requestId === undefined);

  async function post(path: string, body: string, headers: Record<string, string>) {
    const res = await fetch(`${api.endpoint}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  const rows = [
    {
      route: '/tickets',
      request: fixture('dev-view-grant', { requestId: 'http-ticket-1' }),
      key: TICKET_SECRET,
      otherKey: BREAK_GLASS_SECRET,
      cluster: 'dev',
      policy: VIEW,
    },
    {
      // The ticket key on /break-glass: its holder cannot open the break-glass route.
      route: '/break-glass',
      request: fixture('prod-break-glass', { requestId: 'http-bg-1' }),
      key: BREAK_GLASS_SECRET,
      otherKey: TICKET_SECRET,
      cluster: 'prod',
      policy: ADMIN,
    },
  ];

  it.each(rows)(
    '$route: unsigned, wrongly signed, stale or signed with the other route’s key is 401 with a logged code, nothing enqueued; its own key is accepted and applied',
    async (row) => {
      const { h } = stack;
      const body = JSON.stringify(row.request);
      const now = Math.floor(Date.now() / 1000);
      const forged: Array<[string, Record<string, string>, string]> = [
        ['unsigned', {}, 'MISSING_SIGNATURE'],
        ['the other route’s key', signRequest(row.otherKey, body, now), 'SIGNATURE_MISMATCH'],
        ['a signature of another body', signRequest(row.key, `${body} `, now), 'SIGNATURE_MISMATCH'],
        [
          'a garbled signature',
          { ...signRequest(row.key, body, now), 'x-signature': 'v1=zz' },
          'MALFORMED_SIGNATURE',
        ],
        ['an hour-old timestamp', signRequest(row.key, body, now - 3600), 'STALE_TIMESTAMP'],
      ];
      const writes = stack.writes();
      for (const [what, headers, code] of forged) {
        intakeLog.lines.length = 0;
        const res = await post(row.route, body, headers);
        // A generic answer: which check failed would help a forger; the log line has it.
        expect([res.status, res.json], what).toEqual([401, { error: 'UNAUTHORIZED' }]);
        expect(decisions(row.request.requestId), what).toMatchObject([
          { outcome: 'rejected', status: 401, code },
        ]);
      }
      expect(await h.queueDepth()).toBe(0);
      await h.drain();
      expect(h.auditsFor(row.request.requestId)).toEqual([]);
      expect(stack.writes()).toBe(writes);

      // Positive control: the route's own key; the request is applied.
      const ok = await post(row.route, body, signRequest(row.key, body, now));
      expect([ok.status, ok.json]).toEqual([202, { requestId: row.request.requestId }]);
      await h.drain();
      expect(h.auditsFor(row.request.requestId)).toMatchObject([{ outcome: 'granted' }]);
      expect(
        h.eks.snapshot(row.cluster).find((e) => e.principalArn === row.request.principalArn)?.policies,
      ).toMatchObject([{ policyArn: row.policy }]);
      await expectNothingLost(h);
    },
  );
});
