/**
 * `npm start`: the whole pipeline on loopback AWS, no account needed.
 *
 * Starts the EKS emulator (clusters dev and prod), SQS (FIFO queue + DLQ), dynalite
 * (the grants ledger), an EventBridge sink (the audit log) and a Scheduler that really
 * fires; imports the REAL Lambda entry point with AWS_ENDPOINT_URL_<SERVICE> pointing
 * at loopback (nothing in functions/ knows it is local); enqueues every sample in
 * events/requests/; processes until idle (waiting for short grants to expire); prints
 * each request's outcome and the final access entries; exits 0.
 *
 * `npm start -- --serve` prints one JSON line of endpoints first, runs the samples, then
 * keeps the stack and the worker up until SIGINT/SIGTERM.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ledgerTableDefinition } from '../../functions/adapters/ledger.js';
import { messageGroupId } from '../../functions/adapters/queue.js';
import type { AuditRecord } from '../../functions/core/audit.js';
import { accountOfQueue, ClusterDirectory } from '../../functions/core/cluster-target.js';
import { validateRulesPolicy } from '../../functions/core/policy-schema.js';
import { signRequest } from '../../functions/core/signature.js';
import { policyFileToJson } from '../policy-file.js';
import { startEksEmulator } from './eks-emulator.js';
import { type HttpApiHandler, serveHttpApi } from './http-api.js';
import { lambdaContext } from './lambda-context.js';
import { createSqsRunner, type SqsHandler } from './lambda-runner.js';
import { renderEntries, renderOutcomes, table } from './report.js';
import { startSsm } from './ssm.js';
import { startLocalAws } from './stack.js';
import { startSts } from './sts.js';

const ROOT = join(import.meta.dirname, '../..');
const STATE_DIR = join(ROOT, '.local');
const SAMPLES_DIR = join(ROOT, 'events/requests');
const TICKET_SAMPLES_DIR = join(ROOT, 'events/ticket');
const CLOUDTRAIL_SAMPLES_DIR = join(ROOT, 'events/cloudtrail');
/** CloudTrail samples in the order a role's life would produce them. */
const CLOUDTRAIL_ORDER = [
  'create-role-failed',
  'create-role-unmatched',
  'create-role-path',
  'create-role-tagged',
  'create-role-untrusted',
  'tag-role',
  'untag-role',
  'delete-role',
];
/** Local signing keys; printed by --serve so a person can sign a curl request. */
const SECRETS = {
  ticket: { name: '/eks-access-grants/local/ticket-webhook-secret', value: 'local-ticket-signing-secret' },
  breakGlass: {
    name: '/eks-access-grants/local/break-glass-webhook-secret',
    value: 'local-break-glass-signing-secret',
  },
};
const MAX_RUN_MS = Number(process.env.LOCAL_MAX_RUN_MS ?? 120_000);
/** The local stage's target role, in every other account the policy names (infra/target-account.yml). */
const TARGET_ROLE_NAME = 'eks-access-grants-local-target';

/** Access that existed before this system: expiry must restore exactly this. */
const PRE_EXISTING = [
  {
    cluster: 'prod',
    entry: {
      principalArn: 'arn:aws:iam::111122223333:role/sre-alice',
      kubernetesGroups: ['sre-oncall'],
      policies: [
        {
          policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
          accessScope: { type: 'namespace' as const, namespaces: ['team-a'] },
        },
      ],
    },
  },
];

async function main(): Promise<void> {
  const serve = process.argv.includes('--serve');
  mkdirSync(STATE_DIR, { recursive: true });
  const auditLog = join(STATE_DIR, 'audit.jsonl');
  writeFileSync(auditLog, '');
  const policyPath = join(STATE_DIR, 'policy.json');
  writeFileSync(
    policyPath,
    await policyFileToJson(process.env.POLICY_FILE ?? join(ROOT, 'infra/policy.example.yaml')),
  );

  const aws = await startLocalAws({
    auditLogFile: auditLog,
    queueName: 'requests',
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    tableName: 'grants',
    tableDefinition: ledgerTableDefinition('grants'),
  });
  // Fleet: every cluster of the policy where the policy puts it. Clusters in other accounts get an
  // emulated account-region there and the stage's target role in the local STS; the worker reaches
  // them only with that role's session credentials, as in AWS.
  const directory = new ClusterDirectory(validateRulesPolicy(JSON.parse(readFileSync(policyPath, 'utf8'))), {
    account: accountOfQueue(aws.queueArn) ?? '123456789012',
    region: aws.env.AWS_REGION ?? 'us-east-1',
  });
  const clusters = directory.targets();
  const home = (c: (typeof clusters)[number]) => directory.isHome(c);
  const sts = await startSts();
  for (const account of directory.remoteAccounts()) {
    sts.createRole(`arn:aws:iam::${account}:role/${TARGET_ROLE_NAME}`);
  }
  const eks = await startEksEmulator({
    clusters: clusters.map((c) =>
      home(c) ? { name: c.name } : { name: c.name, account: c.account, region: c.region },
    ),
    sts,
  });
  for (const { cluster, entry } of PRE_EXISTING) eks.seedEntry(cluster, entry);

  const ssm = await startSsm({
    parameters: Object.fromEntries(
      Object.values(SECRETS).map((p) => [p.name, { value: p.value, type: 'SecureString' as const }]),
    ),
  });
  Object.assign(process.env, aws.env, {
    AWS_ENDPOINT_URL_EKS: eks.endpoint,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    TARGET_ROLE_NAME,
    AWS_ENDPOINT_URL_SSM: ssm.endpoint,
    BREAK_GLASS_QUEUE_URL: aws.queueUrl,
    TICKET_SECRET_PARAM: SECRETS.ticket.name,
    BREAK_GLASS_SECRET_PARAM: SECRETS.breakGlass.name,
    JIRA_FIELD_MAPPING: readFileSync(join(ROOT, 'infra/jira-field-mapping.example.json'), 'utf8'),
    REQUEST_QUEUE_URL: aws.queueUrl,
    REQUEST_QUEUE_ARN: aws.queueArn,
    DLQ_URL: aws.dlqUrl,
    LEDGER_TABLE: 'grants',
    AUDIT_BUS_NAME: 'eks-access-grants-audit',
    POLICY_PATH: policyPath,
    MAX_RECEIVE_COUNT: '5',
    SCHEDULER_GROUP: 'default',
    SCHEDULER_ROLE_ARN: 'arn:aws:iam::000000000000:role/local-scheduler',
    RETRY_BASE_SECONDS: '1',
    RETRY_MAX_SECONDS: '5',
    // Keep stdout readable: audit records go to the audit log; warnings still show.
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
  });
  // The real Lambda entry points, configured from the environment like in AWS.
  const { handler } = (await import('../../functions/grant-worker.js')) as { handler: SqsHandler };
  const ticketIntake = (await import('../../functions/ticket-intake.js'))
    .handler as unknown as HttpApiHandler;
  const roleIntake = (await import('../../functions/role-lifecycle-intake.js')).handler as unknown as (
    event: unknown,
    context: ReturnType<typeof lambdaContext>,
  ) => Promise<unknown>;
  const http = await serveHttpApi(ticketIntake);

  if (serve) {
    const serveInfo = {
      region: aws.env.AWS_REGION,
      eksEndpoint: eks.endpoint,
      sqsEndpoint: aws.endpoints.sqs,
      dynamodbEndpoint: aws.endpoints.dynamodb,
      schedulerEndpoint: aws.endpoints.scheduler,
      eventBridgeEndpoint: aws.endpoints.eventbridge,
      httpEndpoint: http.endpoint,
      requestQueueUrl: aws.queueUrl,
      dlqUrl: aws.dlqUrl,
      auditLog,
      signingSecrets: { tickets: SECRETS.ticket.value, breakGlass: SECRETS.breakGlass.value },
      ledgerTable: 'grants',
      policyPath,
      stsEndpoint: sts.endpoint,
      clusters: clusters.map(({ alias, name, account, region }) => ({ alias, name, account, region })),
    };
    // The same JSON for the operator CLI (`eks-access-grants --local`) to find the stack.
    writeFileSync(join(STATE_DIR, 'serve.json'), `${JSON.stringify(serveInfo, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(serveInfo)}\n`);
  }
  const runner = createSqsRunner({
    sqs: aws.sqs,
    queueUrl: aws.queueUrl,
    queueArn: aws.queueArn,
    handler,
    batchSize: 10,
    functionTimeoutMs: 30_000,
    functionName: 'grant-worker',
  });

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await runner.stop();
    await http.close();
    await ssm.close();
    await aws.close();
    await eks.close();
    await sts.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const samples = readdirSync(SAMPLES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const file of samples) {
    const body = readFileSync(join(SAMPLES_DIR, file), 'utf8');
    const fields = safeFields(body);
    await aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: aws.queueUrl,
        MessageBody: body,
        MessageGroupId: messageGroupId(fields.clusterName ?? 'unknown', fields.principalArn ?? 'unknown'),
        MessageDeduplicationId: fields.requestId ?? file.replace(/[^A-Za-z0-9]/g, '-'),
      }),
    );
  }
  console.log(`enqueued ${samples.length} sample requests from events/requests/`);

  // Ticket and break-glass webhooks: POSTed over HTTP, signed now with the local keys.
  const intakeRows: string[][] = [];
  for (const file of readdirSync(TICKET_SAMPLES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const sample = JSON.parse(readFileSync(join(TICKET_SAMPLES_DIR, file), 'utf8')) as APIGatewayProxyEventV2;
    const body = Buffer.from(sample.body ?? '', sample.isBase64Encoded ? 'base64' : 'utf8');
    const secret = sample.rawPath === '/break-glass' ? SECRETS.breakGlass.value : SECRETS.ticket.value;
    const format = sample.headers['x-payload-format'];
    const res = await fetch(`${http.endpoint}${sample.rawPath}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(format && { 'x-payload-format': format }),
        ...signRequest(secret, body),
      },
      body,
    });
    intakeRows.push([
      `events/ticket/${file}`,
      `POST ${sample.rawPath}`,
      String(res.status),
      (await res.text()).slice(0, 100),
    ]);
  }
  // CloudTrail IAM events, delivered to the role intake as the EventBridge rule would.
  for (const name of CLOUDTRAIL_ORDER) {
    const event = JSON.parse(readFileSync(join(CLOUDTRAIL_SAMPLES_DIR, `${name}.json`), 'utf8'));
    const result = (await roleIntake(event, lambdaContext({ functionName: 'role-lifecycle-intake' }))) as {
      outcome?: string;
      requests?: Array<{ requestId: string; action: string }>;
    };
    const requests = (result.requests ?? []).map((r) => `${r.action} ${r.requestId}`).join(', ');
    intakeRows.push([
      `events/cloudtrail/${name}.json`,
      event.detail?.eventName ?? '-',
      '-',
      `${result.outcome}${requests ? `: ${requests}` : ''}`.slice(0, 110),
    ]);
  }
  console.log('\nIntake (HTTP routes and CloudTrail events)');
  console.log(table(['sample', 'route / event', 'HTTP', 'answer'], intakeRows));

  // Process until nothing is queued and no expiry due during this run is still to fire
  // (short break-glass samples expire visibly; hour- and day-long grants stay pending).
  const deadline = Date.now() + MAX_RUN_MS;
  for (;;) {
    await runner.runUntilIdle({ maxMs: Math.max(1000, deadline - Date.now()) });
    const due = aws.schedulerEmulator
      .schedules()
      .map((s) => Date.parse(s.fireAt))
      .filter((t) => t < deadline);
    if (due.length === 0 || Date.now() > deadline) break;
    const next = Math.min(...due);
    console.log(
      `waiting ${Math.max(0, Math.ceil((next - Date.now()) / 1000))}s for ${due.length} expiry schedule(s) to fire…`,
    );
    await new Promise((r) => setTimeout(r, Math.max(300, next - Date.now() + 500)));
  }

  const audits = aws.eventbridgeEmulator.events().map((e) => e.detail as AuditRecord);
  console.log(`\nOutcomes (${audits.length} audit records; full records in ${auditLog})`);
  console.log(renderOutcomes(audits));
  for (const c of clusters) {
    const where = home(c) ? '' : ` (account ${c.account}, ${c.region})`;
    console.log(`\nAccess entries on cluster ${c.alias}${where}`);
    console.log(renderEntries(eks.snapshot(c.name, home(c) ? undefined : c)));
  }
  const pending = aws.schedulerEmulator.schedules();
  if (pending.length > 0) {
    console.log(`\nExpiry schedules still pending (they fire after this run):`);
    for (const s of pending) console.log(`  ${s.name} at ${s.fireAt}`);
  }

  if (serve) {
    console.log(
      `\nserving; POST signed requests to ${http.endpoint}/tickets or /break-glass, or send to requestQueueUrl; Ctrl-C to stop`,
    );
    runner.start();
    return;
  }
  await shutdown(0);
}

function safeFields(body: string): { requestId?: string; clusterName?: string; principalArn?: string } {
  try {
    const v = JSON.parse(body) as Record<string, unknown>;
    const s = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
    return {
      ...(s('requestId') && { requestId: s('requestId') }),
      ...(s('clusterName') && { clusterName: s('clusterName') }),
      ...(s('principalArn') && { principalArn: s('principalArn') }),
    };
  } catch {
    return {};
  }
}

main().catch((err) => {
  console.error('local mode failed:', err);
  process.exit(1);
});
