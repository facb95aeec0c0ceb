/**
 * The ticket intake over real HTTP: node:http → API Gateway HTTP API v2 events (infra/local/http-api.ts) →
 * the intake → SQS FIFO (local-aws-sqs), DynamoDB (dynalite, replay claims) and SSM (infra/local/ssm.ts,
 * signing secrets through Powertools Parameters), all on loopback with the real SDK clients.
 */
import { readFileSync } from 'node:fs';
import { DeleteMessageCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ledgerTableDefinition } from '../../functions/adapters/ledger.js';
import { messageGroupId } from '../../functions/adapters/queue.js';
import { validateJiraMapping } from '../../functions/core/jira.js';
import { MAX_BODY_BYTES } from '../../functions/core/request.js';
import { signRequest } from '../../functions/core/signature.js';
import type { AccessRequest } from '../../functions/core/types.js';
import { jiraPayload, loadJiraPayload } from '../../functions/service/jira-payload.js';
import {
  createTicketIntake,
  loadTicketIntakeConfig,
  type TicketIntakeHandler,
  type TicketIntakeOptions,
} from '../../functions/service/ticket-intake.js';
import { type HttpApiServer, serveHttpApi, signHttpApiEvent } from '../../infra/local/http-api.js';
import { createQueues, type QueuePair } from '../../infra/local/sqs.js';
import { type SsmEmulator, startSsm } from '../../infra/local/ssm.js';
import { type LocalAws, localClientConfig, startLocalAws } from '../../infra/local/stack.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { fixture } from '../helpers/fixtures.js';
import { captureLogger } from '../helpers/harness.js';

const TICKET_SECRET = 'it-ticket-signing-secret';
const BREAK_GLASS_SECRET = 'it-break-glass-signing-secret';
const TICKET_PARAM = '/eks-access-grants/ticket-signing-secret';
const BREAK_GLASS_PARAM = '/eks-access-grants/break-glass-signing-secret';
const JIRA_MAPPING = validateJiraMapping(
  JSON.parse(readFileSync(new URL('../../infra/jira-field-mapping.example.json', import.meta.url), 'utf8')),
);

function sampleEvent(name: string): APIGatewayProxyEventV2 {
  return JSON.parse(readFileSync(new URL(`../../events/ticket/${name}.json`, import.meta.url), 'utf8'));
}
const JIRA_BODY = sampleEvent('jira-approved').body as string;

let aws: LocalAws;
let breakGlass: QueuePair;
let ssm: SsmEmulator;
let ssmClient: SSMClient;
let api: HttpApiServer;
let intake: TicketIntakeHandler;
const logger = captureLogger();

function options(over: Partial<TicketIntakeOptions['config']> = {}): TicketIntakeOptions {
  return {
    config: {
      requestQueueUrl: aws.queueUrl,
      breakGlassQueueUrl: breakGlass.queueUrl,
      ticketSecretParam: TICKET_PARAM,
      breakGlassSecretParam: BREAK_GLASS_PARAM,
      ledgerTable: 'grants',
      secretMaxAgeSeconds: 300,
      replayWindowSeconds: 600,
      ...over,
    },
    policy,
    jira: jiraPayload(JIRA_MAPPING),
    clients: { sqs: aws.sqs, dynamodb: aws.dynamodb, ssm: ssmClient },
    logger,
  };
}
const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);

beforeAll(async () => {
  aws = await startLocalAws({
    queueName: 'requests',
    tableName: 'grants',
    tableDefinition: ledgerTableDefinition('grants'),
  });
  breakGlass = await createQueues(aws.sqs, {
    name: 'break-glass',
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 3,
  });
  ssm = await startSsm({
    parameters: { [TICKET_PARAM]: TICKET_SECRET, [BREAK_GLASS_PARAM]: BREAK_GLASS_SECRET },
  });
  ssmClient = new SSMClient(localClientConfig(ssm.endpoint));
  intake = createTicketIntake(options());
  api = await serveHttpApi(intake);
});

afterAll(async () => {
  await api?.close();
  ssmClient?.destroy();
  await ssm?.close();
  await aws?.close();
});

afterEach(async () => {
  // Whatever a test left behind must not count for the next one.
  await receiveAll(aws.queueUrl);
  await receiveAll(breakGlass.queueUrl);
  logger.lines.length = 0;
});

/** Every message on the queue, received over HTTP from local SQS and deleted. */
async function receiveAll(queueUrl: string): Promise<Message[]> {
  const out: Message[] = [];
  for (;;) {
    const r = await aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 30,
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (!r.Messages?.length) return out;
    for (const m of r.Messages) {
      out.push(m);
      await aws.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

async function expectNothingEnqueued(): Promise<void> {
  expect(await receiveAll(aws.queueUrl)).toEqual([]);
  expect(await receiveAll(breakGlass.queueUrl)).toEqual([]);
}

interface PostOptions {
  secret?: string;
  timestamp?: number;
  headers?: Record<string, string>;
  contentType?: string;
  unsigned?: boolean;
}

async function post(path: string, body: string | Buffer, o: PostOptions = {}) {
  const signature = o.unsigned
    ? {}
    : signRequest(
        o.secret ?? (path === '/break-glass' ? BREAK_GLASS_SECRET : TICKET_SECRET),
        body,
        o.timestamp ?? nowSeconds(),
      );
  const res = await fetch(`${api.endpoint}${path}`, {
    method: 'POST',
    headers: { 'content-type': o.contentType ?? 'application/json', ...signature, ...o.headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as Record<string, unknown> };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
let counter = 0;
/** A dev ticket grant that passes every check, with a fresh requestId. */
function ticket(over: Partial<AccessRequest> = {}): AccessRequest {
  counter += 1;
  return fixture('dev-view-grant', { requestId: `it-ticket-${Date.now()}-${counter}`, ...over });
}
function bgRequest(over: Partial<AccessRequest> = {}): AccessRequest {
  counter += 1;
  return fixture('prod-break-glass', { requestId: `it-bg-${Date.now()}-${counter}`, ...over });
}
const without = (r: AccessRequest, ...keys: (keyof AccessRequest)[]) => {
  const copy: Record<string, unknown> = { ...r };
  for (const k of keys) delete copy[k];
  return JSON.stringify(copy);
};
const decisions = () =>
  logger.lines
    .filter((l) => l.message === 'intake decision')
    .map((l) => l.extra[0] as Record<string, unknown>);

describe('accepted requests', () => {
  test('a signed v1 ticket answers 202 {requestId} and is on the requests queue, grouped by cluster+principal', async () => {
    const request = ticket();
    const res = await post('/tickets', JSON.stringify(request));
    expect(res).toMatchObject({ status: 202, json: { requestId: request.requestId } });
    const [message, ...rest] = await receiveAll(aws.queueUrl);
    expect(rest).toEqual([]);
    expect(JSON.parse(message?.Body ?? '')).toEqual(request);
    expect(message?.Attributes).toMatchObject({
      MessageGroupId: messageGroupId('dev', request.principalArn),
      MessageDeduplicationId: request.requestId,
    });
    expect(decisions()).toMatchObject([{ outcome: 'accepted', status: 202, requestId: request.requestId }]);
  });

  test('a body without "source" takes the source of its route', async () => {
    const request = ticket();
    const res = await post('/tickets', without(request, 'source'));
    expect(res.status).toBe(202);
    expect(JSON.parse((await receiveAll(aws.queueUrl))[0]?.Body ?? '')).toMatchObject({ source: 'ticket' });
  });

  test('a base64-encoded body (binary content type) is decoded before the signature and the parse', async () => {
    const request = ticket();
    const res = await post('/tickets', Buffer.from(JSON.stringify(request)), {
      contentType: 'application/octet-stream',
    });
    expect(res.status).toBe(202);
    expect(await receiveAll(aws.queueUrl)).toHaveLength(1);
  });

  test('an approved Jira issue becomes a ticket request built through the field mapping', async () => {
    // Another transition than the sample's, which a later test sends as it is.
    const webhook = JSON.parse(JIRA_BODY);
    webhook.changelog.id = '20001';
    const res = await post('/tickets', JSON.stringify(webhook), { headers: { 'x-payload-format': 'jira' } });
    expect(res).toMatchObject({ status: 202, json: { requestId: 'jira-ACCESS-42-20001' } });
    const [message] = await receiveAll(aws.queueUrl);
    expect(JSON.parse(message?.Body ?? '')).toMatchObject({
      source: 'ticket',
      clusterName: 'dev',
      principalArn: 'arn:aws:iam::111122223333:role/team-c-dev',
      ticket: 'ACCESS-42',
      requestedBy: 'jira:5b10a2844c20165700ede21g',
      approvedBy: ['jira:5b10ac8d82e05b22cc7d4ef5'],
    });
  });

  test('a break-glass request goes to the break-glass queue, not the requests queue', async () => {
    const request = bgRequest();
    const res = await post('/break-glass', JSON.stringify(request));
    expect(res).toMatchObject({ status: 202, json: { requestId: request.requestId } });
    expect(await receiveAll(aws.queueUrl)).toEqual([]);
    const [message] = await receiveAll(breakGlass.queueUrl);
    expect(JSON.parse(message?.Body ?? '')).toEqual(request);
  });

  test('the sample events in events/ticket/ are accepted once signed afresh', async () => {
    for (const [name, secret] of [
      ['v1-grant', TICKET_SECRET],
      ['jira-approved', TICKET_SECRET],
      ['break-glass', BREAK_GLASS_SECRET],
    ] as const) {
      const res = await intake(signHttpApiEvent(sampleEvent(name), secret));
      expect(res.statusCode, `${name}: ${res.body}`).toBe(202);
    }
    expect(await receiveAll(aws.queueUrl)).toHaveLength(2);
    expect(await receiveAll(breakGlass.queueUrl)).toHaveLength(1);
  });

  test('a Jira update that is not an approval is a coded 400 (Jira does not retry a 400)', async () => {
    const webhook = JSON.parse(JIRA_BODY);
    webhook.changelog.items[0].toString = 'In Progress';
    const res = await post('/tickets', JSON.stringify(webhook), { headers: { 'x-payload-format': 'jira' } });
    expect(res).toMatchObject({ status: 400, json: { error: { code: 'JIRA_NOT_APPROVED' } } });
    await expectNothingEnqueued();
  });

  test('a redelivered Jira approval is a replay answered 200 (Jira retries a 409), enqueued once', async () => {
    const webhook = JSON.parse(JIRA_BODY);
    webhook.changelog.id = '20002';
    const headers = { headers: { 'x-payload-format': 'jira' } };
    expect((await post('/tickets', JSON.stringify(webhook), headers)).status).toBe(202);
    const again = await post('/tickets', JSON.stringify(webhook), headers);
    expect(again).toMatchObject({ status: 200, json: { error: { code: 'REPLAYED' } } });
    expect(await receiveAll(aws.queueUrl)).toHaveLength(1);
  });

  test('v1 approvers collapse to canonical identities: case and space aliases count once', async () => {
    const request = ticket({
      requestedBy: ' Alice@Example.com',
      approvedBy: ['Bob@Example.com', 'bob@example.com '],
    });
    const res = await post('/tickets', JSON.stringify(request));
    expect(res.status).toBe(202);
    const [message] = await receiveAll(aws.queueUrl);
    expect(JSON.parse(message?.Body ?? '')).toMatchObject({
      requestedBy: 'alice@example.com',
      approvedBy: ['bob@example.com'],
    });
  });

  test('keeps the signing secret in the Powertools cache instead of calling SSM per request', async () => {
    await post('/tickets', JSON.stringify(ticket()));
    const before = ssm.calls().length;
    await post('/tickets', JSON.stringify(ticket()));
    await post('/tickets', JSON.stringify(ticket()));
    expect(ssm.calls().length).toBe(before);
  });
});

describe('rejections: a clear error body and nothing enqueued', () => {
  test('missing signature → 401 with a generic body; the reason is only in the log', async () => {
    const res = await post('/tickets', JSON.stringify(ticket()), { unsigned: true });
    expect(res.status).toBe(401);
    expect(res.text).toBe('{"error":"UNAUTHORIZED"}');
    expect(decisions()).toMatchObject([{ outcome: 'rejected', status: 401, code: 'MISSING_SIGNATURE' }]);
    await expectNothingEnqueued();
  });

  test('bad signature (wrong secret) → 401', async () => {
    const res = await post('/tickets', JSON.stringify(ticket()), { secret: 'not-the-secret' });
    expect(res.status).toBe(401);
    expect(res.text).toBe('{"error":"UNAUTHORIZED"}');
    expect(decisions()).toMatchObject([{ code: 'SIGNATURE_MISMATCH' }]);
    await expectNothingEnqueued();
  });

  test('a signature over another body → 401', async () => {
    const request = ticket();
    const headers = signRequest(
      TICKET_SECRET,
      JSON.stringify({ ...request, clusterName: 'prod' }),
      nowSeconds(),
    );
    const res = await post('/tickets', JSON.stringify(request), { unsigned: true, headers });
    expect(res.text).toBe('{"error":"UNAUTHORIZED"}');
    await expectNothingEnqueued();
  });

  test('stale timestamp (6 minutes old) → 401, with how stale in the log', async () => {
    const res = await post('/tickets', JSON.stringify(ticket()), { timestamp: nowSeconds() - 360 });
    expect(res.status).toBe(401);
    expect(res.text).toBe('{"error":"UNAUTHORIZED"}');
    expect(decisions()).toMatchObject([
      { code: 'STALE_TIMESTAMP', detail: expect.stringMatching(/^timestamp is 36\d s old/) },
    ]);
    await expectNothingEnqueued();
  });

  test('break-glass signed with the ticket secret → 401: each route has its own secret', async () => {
    const res = await post('/break-glass', JSON.stringify(bgRequest()), { secret: TICKET_SECRET });
    expect(res.status).toBe(401);
    await expectNothingEnqueued();
  });

  test('replay: the same requestId again, even freshly signed → 409 REPLAYED', async () => {
    const body = JSON.stringify(ticket());
    expect((await post('/tickets', body)).status).toBe(202);
    expect(await receiveAll(aws.queueUrl)).toHaveLength(1);
    const res = await post('/tickets', body, { timestamp: nowSeconds() + 1 });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({
      error: {
        code: 'REPLAYED',
        message: expect.stringContaining('was already received'),
      },
    });
    await expectNothingEnqueued();
  });

  test('oversized body → 413 BODY_TOO_LARGE, before any signature work', async () => {
    const body = JSON.stringify(ticket()).padEnd(MAX_BODY_BYTES + 1, ' ');
    const res = await post('/tickets', body);
    expect(res.status).toBe(413);
    expect(res.json).toEqual({
      error: {
        code: 'BODY_TOO_LARGE',
        message: `The body is ${MAX_BODY_BYTES + 1} bytes; at most ${MAX_BODY_BYTES} bytes are accepted.`,
      },
    });
    await expectNothingEnqueued();
  });

  test('malformed JSON → 400 MALFORMED_JSON', async () => {
    const res = await post('/tickets', '{"schemaVersion": 1,');
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      error: { code: 'MALFORMED_JSON', message: expect.stringContaining('not valid JSON') },
    });
    await expectNothingEnqueued();
  });

  test('unknown adapter → 400 UNKNOWN_ADAPTER naming the accepted formats', async () => {
    const res = await post('/tickets', JSON.stringify(ticket()), {
      headers: { 'x-payload-format': 'servicenow' },
    });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      error: {
        code: 'UNKNOWN_ADAPTER',
        message:
          'x-payload-format "servicenow" is not a payload format /tickets accepts; use one of: v1, jira',
      },
    });
    await expectNothingEnqueued();
  });

  test('the jira adapter on the break-glass route → 400 UNKNOWN_ADAPTER', async () => {
    const res = await post('/break-glass', JIRA_BODY, { headers: { 'x-payload-format': 'jira' } });
    expect(res.json).toMatchObject({ error: { code: 'UNKNOWN_ADAPTER' } });
    await expectNothingEnqueued();
  });

  test('unmapped Jira field (an access level the mapping lacks) → 400 JIRA_FIELD_UNMAPPED', async () => {
    const webhook = JSON.parse(JIRA_BODY);
    webhook.issue.fields.customfield_10203 = { value: 'Superuser' };
    const res = await post('/tickets', JSON.stringify(webhook), { headers: { 'x-payload-format': 'jira' } });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      error: { code: 'JIRA_FIELD_UNMAPPED', message: expect.stringContaining('"Superuser"') },
    });
    await expectNothingEnqueued();
  });

  test('missing Jira field → 400 JIRA_FIELD_MISSING naming the field', async () => {
    const webhook = JSON.parse(JIRA_BODY);
    delete webhook.issue.fields.customfield_10201;
    const res = await post('/tickets', JSON.stringify(webhook), { headers: { 'x-payload-format': 'jira' } });
    expect(res.json).toEqual({
      error: {
        code: 'JIRA_FIELD_MISSING',
        message:
          'ACCESS-42: Jira field customfield_10201, mapped to clusterName, is missing or empty; fill it in and approve again',
      },
    });
    await expectNothingEnqueued();
  });

  test('an invalid request → 400 with the contract reason code', async () => {
    const res = await post('/tickets', JSON.stringify(ticket({ kubernetesGroups: ['system:masters'] })));
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: { code: 'SYSTEM_GROUP' } });
    await expectNothingEnqueued();
  });

  test('a username template without a colon before {{SessionName}} → 400 USERNAME_TEMPLATE_NEEDS_COLON, on both routes', async () => {
    // EKS user guide, "Create access entries": `john{{SessionName}}` is refused, `:john{{SessionName}}` is
    // not. EKS says so only at CreateAccessEntry, long after the ticket system was told 202; the intake
    // refuses it while the sender is still listening, before the policy is even asked.
    for (const username of ['john{{SessionName}}', 'oncall-{{SessionNameRaw}}']) {
      const res = await post('/tickets', JSON.stringify(ticket({ username })));
      expect(res.status, username).toBe(400);
      expect(res.json, username).toEqual({
        error: {
          code: 'USERNAME_TEMPLATE_NEEDS_COLON',
          message: expect.stringContaining('a colon before'),
        },
      });
    }
    const bg = await post('/break-glass', JSON.stringify(bgRequest({ username: 'john{{SessionName}}' })));
    expect(bg.json).toMatchObject({ error: { code: 'USERNAME_TEMPLATE_NEEDS_COLON' } });
    expect(decisions().map((d) => d.code)).toEqual(Array(3).fill('USERNAME_TEMPLATE_NEEDS_COLON'));
    await expectNothingEnqueued();
  });

  test('a policy denial → 400 POLICY_DENIED, so the ticket system hears it at once', async () => {
    const res = await post(
      '/tickets',
      JSON.stringify(ticket({ clusterName: 'prod', kubernetesGroups: undefined })),
    );
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      error: {
        code: 'POLICY_DENIED',
        message: expect.stringMatching(/^clusters\.prod\.rules\.ticket\./),
      },
    });
    await expectNothingEnqueued();
  });

  test('a body whose source contradicts its route → 400 SOURCE_MISMATCH', async () => {
    const res = await post('/tickets', JSON.stringify(bgRequest()));
    expect(res.json).toMatchObject({ error: { code: 'SOURCE_MISMATCH' } });
    const recreated = await post('/tickets', JSON.stringify(ticket({ source: 'iam-role-created' })));
    expect(recreated.json).toMatchObject({ error: { code: 'SOURCE_MISMATCH' } });
    await expectNothingEnqueued();
  });

  test('break-glass without incidentId, reason or duration → 400 with the specific code', async () => {
    const cases = [
      ['incidentId', 'INCIDENT_ID_REQUIRED'],
      ['reason', 'REASON_REQUIRED'],
      ['duration', 'DURATION_REQUIRED'],
    ] as const;
    for (const [field, code] of cases) {
      const res = await post('/break-glass', without(bgRequest(), field));
      expect(res.status, field).toBe(400);
      expect(res.json, field).toMatchObject({ error: { code } });
    }
    await expectNothingEnqueued();
  });

  test('an unknown route → 404, a GET → 405', async () => {
    expect((await post('/tickets/extra', JSON.stringify(ticket()))).status).toBe(404);
    const res = await fetch(`${api.endpoint}/tickets`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    await expectNothingEnqueued();
  });
});

describe('failures', () => {
  test('when the queue is unavailable: 503, and the replay claim is released so a retry is accepted', async () => {
    const broken = createTicketIntake(
      options({ requestQueueUrl: `${aws.endpoints.sqs}/123456789012/missing.fifo` }),
    );
    const request = ticket();
    const event = signHttpApiEvent(sampleEvent('v1-grant'), TICKET_SECRET);
    const failed = await broken({
      ...signHttpApiEvent({ ...event, body: JSON.stringify(request) }, TICKET_SECRET),
    });
    expect(failed).toMatchObject({ statusCode: 503, body: expect.stringContaining('UNAVAILABLE') });
    await expectNothingEnqueued();
    const retried = await post('/tickets', JSON.stringify(request));
    expect(retried.status).toBe(202);
  });

  test('when the secret parameter is missing: 500, nothing said about why', async () => {
    const misconfigured = createTicketIntake(options({ ticketSecretParam: '/does/not/exist' }));
    const res = await misconfigured(signHttpApiEvent(sampleEvent('v1-grant'), TICKET_SECRET));
    expect(res).toMatchObject({ statusCode: 500, body: expect.stringContaining('INTERNAL') });
    expect(res.body).not.toContain('/does/not/exist');
    await expectNothingEnqueued();
  });
});

describe('route subsets: one function per route', () => {
  const BASE_ENV = {
    AWS_REGION: 'eu-west-1',
    LEDGER_TABLE: 'grants',
    POLICY_PATH: './policy.json',
  };

  test('the break-glass intake serves /break-glass only; /tickets is a 404 and reads no ticket key', async () => {
    const { requestQueueUrl: _q, ticketSecretParam: _s, ...breakGlassOnly } = options().config;
    const { jira: _j, ...withoutJira } = options();
    const bgIntake = createTicketIntake({
      ...withoutJira,
      config: { ...breakGlassOnly, routes: ['/break-glass'] },
    });
    const before = ssm.calls().length;
    const refused = await bgIntake(signHttpApiEvent(sampleEvent('v1-grant'), TICKET_SECRET));
    expect(refused).toMatchObject({ statusCode: 404, body: expect.stringContaining('NOT_FOUND') });
    // Refused on the route alone: the ticket key was never fetched.
    expect(
      ssm
        .calls()
        .slice(before)
        .flatMap((c) => c.names),
    ).not.toContain(TICKET_PARAM);
    const request = bgRequest();
    const accepted = await bgIntake(
      signHttpApiEvent({ ...sampleEvent('break-glass'), body: JSON.stringify(request) }, BREAK_GLASS_SECRET),
    );
    expect(accepted.statusCode, accepted.body).toBe(202);
    expect(await receiveAll(aws.queueUrl)).toEqual([]);
    expect(JSON.parse((await receiveAll(breakGlass.queueUrl))[0]?.Body ?? '')).toEqual(request);
  });

  test('the ticket intake serves /tickets only; /break-glass is a 404, even signed with the break-glass key', async () => {
    const { breakGlassQueueUrl: _q, breakGlassSecretParam: _s, ...ticketsOnly } = options().config;
    const ticketIntake = createTicketIntake({
      ...options(),
      config: { ...ticketsOnly, routes: ['/tickets'] },
    });
    const refused = await ticketIntake(signHttpApiEvent(sampleEvent('break-glass'), BREAK_GLASS_SECRET));
    expect(refused).toMatchObject({ statusCode: 404, body: expect.stringContaining('NOT_FOUND') });
    await expectNothingEnqueued();
    const request = ticket();
    const accepted = await ticketIntake(
      signHttpApiEvent({ ...sampleEvent('v1-grant'), body: JSON.stringify(request) }, TICKET_SECRET),
    );
    expect(accepted.statusCode, accepted.body).toBe(202);
    expect(await receiveAll(aws.queueUrl)).toHaveLength(1);
  });

  test('a served route without its queue or key fails at construction, naming the missing setting', () => {
    const { breakGlassSecretParam: _s, ...config } = options().config;
    expect(() =>
      createTicketIntake({ ...options(), config: { ...config, routes: ['/break-glass'] } }),
    ).toThrow(/serves \/break-glass but config\.breakGlassSecretParam is not set/);
    expect(() => createTicketIntake({ ...options(), config: { ...config, routes: [] } })).toThrow(
      /at least one route/,
    );
  });

  test("the break-glass loader needs and reads only the break-glass route's settings", () => {
    const config = loadTicketIntakeConfig(
      {
        ...BASE_ENV,
        BREAK_GLASS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111122223333/bg.fifo',
        BREAK_GLASS_SECRET_PARAM: '/bg',
        // Present but not for this function: neither is read.
        TICKET_SECRET_PARAM: '/ticket',
        JIRA_FIELD_MAPPING: 'not even JSON',
      },
      ['/break-glass'],
    );
    expect(config).toMatchObject({ routes: ['/break-glass'], breakGlassSecretParam: '/bg' });
    expect(config).not.toHaveProperty('ticketSecretParam');
    expect(config).not.toHaveProperty('requestQueueUrl');
    expect(() =>
      loadTicketIntakeConfig({ ...BASE_ENV, BREAK_GLASS_QUEUE_URL: 'q' }, ['/break-glass']),
    ).toThrow(/BREAK_GLASS_SECRET_PARAM/);
  });

  test('the jira format comes from JIRA_FIELD_MAPPING through loadJiraPayload; without it jira is an unknown adapter', async () => {
    expect(loadJiraPayload({})).toBeUndefined();
    expect(loadJiraPayload({ JIRA_FIELD_MAPPING: '  ' })).toBeUndefined();
    expect(() => loadJiraPayload({ JIRA_FIELD_MAPPING: 'not even JSON' })).toThrow(
      /^JIRA_FIELD_MAPPING is not valid JSON/,
    );
    expect(() => loadJiraPayload({ JIRA_FIELD_MAPPING: '{"extra":1}' })).toThrow(
      /JIRA_FIELD_MAPPING: extra: unknown key/,
    );
    const mappingText = readFileSync(
      new URL('../../infra/jira-field-mapping.example.json', import.meta.url),
      'utf8',
    );
    const jira = loadJiraPayload({ JIRA_FIELD_MAPPING: mappingText });
    expect(jira?.toCandidate(JSON.parse(JIRA_BODY))).toMatchObject({ ok: true });

    // Over HTTP, an intake built without the adapter (as the break-glass function is) refuses jira bodies.
    const { jira: _j, ...withoutJira } = options();
    const noJira = await serveHttpApi(createTicketIntake(withoutJira));
    try {
      const res = await fetch(`${noJira.endpoint}/tickets`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-payload-format': 'jira',
          ...signRequest(TICKET_SECRET, JIRA_BODY, nowSeconds()),
        },
        body: JIRA_BODY,
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: {
          code: 'UNKNOWN_ADAPTER',
          message: expect.stringContaining('the jira adapter is not configured'),
        },
      });
    } finally {
      await noJira.close();
    }
    await expectNothingEnqueued();
  });

  test("the ticket loader needs and reads only the ticket route's settings", () => {
    const config = loadTicketIntakeConfig(
      {
        ...BASE_ENV,
        REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111122223333/requests.fifo',
        TICKET_SECRET_PARAM: '/ticket',
        BREAK_GLASS_SECRET_PARAM: '/bg',
      },
      ['/tickets'],
    );
    expect(config).toMatchObject({ routes: ['/tickets'], ticketSecretParam: '/ticket' });
    expect(config).not.toHaveProperty('breakGlassSecretParam');
    expect(config).not.toHaveProperty('breakGlassQueueUrl');
    expect(() => loadTicketIntakeConfig({ ...BASE_ENV, REQUEST_QUEUE_URL: 'q' }, ['/tickets'])).toThrow(
      /TICKET_SECRET_PARAM/,
    );
  });
});
