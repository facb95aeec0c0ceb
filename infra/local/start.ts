/**
 * `npm start`: the whole pipeline on loopback AWS, no account needed.
 *
 * Starts the EKS emulator (clusters dev and prod), SQS (the requests and break-glass FIFO
 * queues, each with its DLQ), dynalite (the grants ledger), EventBridge routed by the
 * template's rules (the audit bus into the audit log; CloudTrail IAM events on the default bus
 * to the role intake) and a Scheduler that really fires; runs the REAL Lambda entry points (both workers,
 * the ticket and break-glass intakes, the role intake), each in its own thread with its own
 * environment and access key (infra/local/function-host.ts, infra/local/identities.ts), with
 * AWS_ENDPOINT_URL_<SERVICE> pointing at loopback (nothing in functions/ knows it is local);
 * enqueues every sample in events/requests/ as its source's legitimate sender; processes
 * until idle (waiting for short grants to expire); prints each request's outcome and the
 * final access entries; exits 0.
 *
 * `npm start -- --serve` prints one JSON line of endpoints first, runs the samples, then
 * keeps the stack and the worker up until SIGINT/SIGTERM.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateScheduleGroupCommand } from '@aws-sdk/client-scheduler';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { AUDIT_DETAIL_TYPE } from '../../functions/adapters/audit-bus.js';
import { LedgerAdapter, ledgerTableDefinition } from '../../functions/adapters/ledger.js';
import { messageGroupId } from '../../functions/adapters/queue.js';
import { accountOfQueue, ClusterDirectory } from '../../functions/core/cluster-target.js';
import { validateRulesPolicy } from '../../functions/core/policy-schema.js';
import { signRequest } from '../../functions/core/signature.js';
import { SOURCES, type Source } from '../../functions/core/types.js';
import { policyFileToJson } from '../policy-file.js';
import { startEksEmulator } from './eks-emulator.js';
import { type LocalFunction, startFunction } from './function-host.js';
import { type HttpApiHandler, serveHttpApi } from './http-api.js';
import {
  type Actor,
  credentialEnv,
  credentialsOf,
  LOCAL_IDENTITIES,
  localSenderRouting,
  senderOf,
  type WorkerName,
} from './identities.js';
import { lambdaContext } from './lambda-context.js';
import { createSqsRunner, type SqsHandler } from './lambda-runner.js';
import { renderEntries, renderOutcomes, table } from './report.js';
import { createQueues } from './sqs.js';
import { startSsm } from './ssm.js';
import { CLOUDTRAIL_CREDENTIALS, startLocalAws } from './stack.js';
import { startSts } from './sts.js';

const ROOT = join(import.meta.dirname, '../..');
/** serve.json, the audit log and the compiled policy; tests point LOCAL_STATE_DIR at their own temp dir. */
const STATE_DIR = process.env.LOCAL_STATE_DIR ?? join(ROOT, '.local');
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
const AUDIT_BUS = 'eks-access-grants-audit';
const MAX_RUN_MS = Number(process.env.LOCAL_MAX_RUN_MS ?? 120_000);
/** The local stage's target role, in every other account the policy names (infra/target-account.yml). */
const TARGET_ROLE_NAME = 'eks-access-grants-local-target';
/** The operator CLI's read-only role there (`access`, `plan` on those clusters). */
const OPERATOR_TARGET_ROLE_NAME = 'eks-access-grants-local-operator-target';
const FUNCTIONS = join(ROOT, 'functions');
/** The break-glass worker's own schedule group, as in the template (BreakGlassExpiryScheduleGroup). */
const BREAK_GLASS_SCHEDULE_GROUP = 'break-glass';

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

  // The role intake starts once the environment points at the stack; EventBridge calls it late-bound.
  let roleIntake: LocalFunction | undefined;
  const aws = await startLocalAws({
    auditLogFile: auditLog,
    auditBusName: AUDIT_BUS,
    eventTargets: {
      roleLifecycleIntake: (event, context) => {
        if (!roleIntake) throw new Error('role intake not started yet');
        return roleIntake.invoke(event, context);
      },
    },
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
  // As infra/target-account.yml: the workers' role trusts only the functions that assume it, the
  // operator CLI's read-only role only the operator.
  const keyOf = (actor: Actor) => credentialsOf(actor).accessKeyId;
  for (const account of directory.remoteAccounts()) {
    sts.createRole(`arn:aws:iam::${account}:role/${TARGET_ROLE_NAME}`, {
      trustedAccessKeys: (['grantWorker', 'breakGlassWorker', 'reconciler'] as const).map(keyOf),
    });
    sts.createRole(`arn:aws:iam::${account}:role/${OPERATOR_TARGET_ROLE_NAME}`, {
      trustedAccessKeys: [keyOf('operator')],
    });
  }
  const eks = await startEksEmulator({
    clusters: clusters.map((c) =>
      home(c) ? { name: c.name } : { name: c.name, account: c.account, region: c.region },
    ),
    sts,
  });
  for (const { cluster, entry } of PRE_EXISTING) eks.seedEntry(cluster, entry);

  // The break-glass worker's own queue and DLQ, as deployed: a backlog of standard requests never delays it.
  const breakGlassQueues = await createQueues(aws.sqs, {
    name: 'break-glass',
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
  });
  await aws.scheduler.send(new CreateScheduleGroupCommand({ Name: BREAK_GLASS_SCHEDULE_GROUP }));
  // The reconcile queue (infra/functions-more.yml ReconcileQueue): the scheduled reconciler fans a pass
  // out to it, one task per cluster; the reconcile-task function works each under its EKS call budget.
  const reconcileQueues = await createQueues(aws.sqs, {
    name: 'reconcile',
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 5,
  });

  const ssm = await startSsm({
    parameters: Object.fromEntries(
      Object.values(SECRETS).map((p) => [p.name, { value: p.value, type: 'SecureString' as const }]),
    ),
  });
  // What every function's environment shares: loopback endpoints, the ledger, the bus, the policy. No
  // credentials: each function gets its own below, as each Lambda function has its own role.
  const { AWS_ACCESS_KEY_ID: _k, AWS_SECRET_ACCESS_KEY: _s, ...endpoints } = aws.env;
  const common: Record<string, string> = {
    ...inheritedEnv(),
    ...endpoints,
    AWS_ENDPOINT_URL_EKS: eks.endpoint,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    TARGET_ROLE_NAME,
    AWS_ENDPOINT_URL_SSM: ssm.endpoint,
    LEDGER_TABLE: 'grants',
    AUDIT_BUS_NAME: AUDIT_BUS,
    POLICY_PATH: policyPath,
    // Keep stdout readable: audit records go to the audit log; warnings still show.
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
  };
  const worker = (name: WorkerName, queues: typeof breakGlassQueues, scheduler: Actor, group: string) => ({
    ...common,
    REQUEST_QUEUE_URL: queues.queueUrl,
    REQUEST_QUEUE_ARN: queues.queueArn,
    DLQ_URL: queues.dlqUrl,
    MAX_RECEIVE_COUNT: '5',
    SCHEDULER_GROUP: group,
    SCHEDULER_ROLE_ARN: LOCAL_IDENTITIES[scheduler].roleArn,
    RETRY_BASE_SECONDS: '1',
    RETRY_MAX_SECONDS: '5',
    // The template's routing with local role ids: one source of truth (infra/local/identities.ts).
    ...localSenderRouting(name).env,
    ...credentialEnv(name),
  });
  const requestQueues = {
    queueUrl: aws.queueUrl,
    queueArn: aws.queueArn,
    dlqUrl: aws.dlqUrl,
    dlqArn: aws.dlqArn,
  };
  // The real Lambda entry points, configured from their own environment like in AWS; cold starts in parallel.
  const fns: LocalFunction[] = [];
  const start = async (name: string, file: string, env: Record<string, string>) => {
    const fn = await startFunction({ name, entry: join(FUNCTIONS, file), env });
    fns.push(fn);
    return fn;
  };
  // The reconciler's environment (infra/functions-more.yml reconcilerEnvironment), as its own role.
  const reconcilerEnv = {
    ...common,
    REQUEST_QUEUE_URL: aws.queueUrl,
    BREAK_GLASS_QUEUE_URL: breakGlassQueues.queueUrl,
    RECONCILE_QUEUE_URL: reconcileQueues.queueUrl,
    RECONCILE_EKS_CALLS_PER_SECOND: '20',
    RECONCILE_TASK_SENDERS: JSON.stringify([LOCAL_IDENTITIES.reconciler.roleId]),
    ...credentialEnv('reconciler'),
  };
  const [
    grantWorker,
    breakGlassWorker,
    ticketIntake,
    breakGlassIntake,
    roleIntakeFn,
    reconcilerFn,
    reconcileTaskFn,
  ] = await Promise.all([
    start(
      'grant-worker',
      'grant-worker.ts',
      worker('grantWorker', requestQueues, 'expiryScheduler', 'default'),
    ),
    start(
      'break-glass-worker',
      'grant-worker.ts',
      worker('breakGlassWorker', breakGlassQueues, 'breakGlassScheduler', BREAK_GLASS_SCHEDULE_GROUP),
    ),
    start('ticket-intake', 'ticket-intake.ts', {
      ...common,
      REQUEST_QUEUE_URL: aws.queueUrl,
      TICKET_SECRET_PARAM: SECRETS.ticket.name,
      JIRA_FIELD_MAPPING: readFileSync(join(ROOT, 'infra/jira-field-mapping.example.json'), 'utf8'),
      ...credentialEnv('ticketIntake'),
    }),
    start('break-glass-intake', 'break-glass-intake.ts', {
      ...common,
      BREAK_GLASS_QUEUE_URL: breakGlassQueues.queueUrl,
      BREAK_GLASS_SECRET_PARAM: SECRETS.breakGlass.name,
      ...credentialEnv('breakGlassIntake'),
    }),
    start('role-lifecycle-intake', 'role-lifecycle-intake.ts', {
      ...common,
      REQUEST_QUEUE_URL: aws.queueUrl,
      ...credentialEnv('roleLifecycleIntake'),
    }),
    start('reconciler', 'reconciler.ts', reconcilerEnv),
    start('reconcile-task', 'reconcile-task.ts', reconcilerEnv),
  ]);
  roleIntake = roleIntakeFn;
  // API Gateway routes: each path to its own function; anything else is API Gateway's own 404.
  const routes: Record<string, LocalFunction> = {
    '/tickets': ticketIntake,
    '/break-glass': breakGlassIntake,
  };
  const http = await serveHttpApi(((event: APIGatewayProxyEventV2, context: Context) => {
    const fn = routes[event.rawPath];
    if (!fn) return { statusCode: 404, body: '{"message":"Not Found"}' };
    return fn.invoke(event, context) as ReturnType<HttpApiHandler>;
  }) as HttpApiHandler);

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
      breakGlassQueueUrl: breakGlassQueues.queueUrl,
      breakGlassDlqUrl: breakGlassQueues.dlqUrl,
      auditLog,
      signingSecrets: { tickets: SECRETS.ticket.value, breakGlass: SECRETS.breakGlass.value },
      auditBusName: AUDIT_BUS,
      // PutEvents under this key plays CloudTrail: the only caller whose `aws.iam` events the bus takes.
      cloudTrailCredentials: CLOUDTRAIL_CREDENTIALS,
      // The OperatorRole's local key: what the CLI sends `operator` requests and redrives with (C1, C3).
      operatorCredentials: credentialsOf('operator'),
      ledgerTable: 'grants',
      policyPath,
      stsEndpoint: sts.endpoint,
      operatorTargetRoleName: OPERATOR_TARGET_ROLE_NAME,
      clusters: clusters.map(({ alias, name, account, region }) => ({ alias, name, account, region })),
    };
    // The same JSON for the operator CLI (`eks-access-grants --local`) to find the stack.
    writeFileSync(join(STATE_DIR, 'serve.json'), `${JSON.stringify(serveInfo, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(serveInfo)}\n`);
  }
  const runnerFor = (fn: LocalFunction, queues: typeof breakGlassQueues, actor: Actor, batchSize = 10) =>
    createSqsRunner({
      // The event source mapping polls as the function's role.
      sqs: aws.sqsAs(actor),
      queueUrl: queues.queueUrl,
      queueArn: queues.queueArn,
      handler: ((event, context) => fn.invoke(event, context)) as SqsHandler,
      batchSize,
      functionTimeoutMs: 30_000,
      functionName: fn.name,
    });
  const runners = [
    runnerFor(grantWorker, requestQueues, 'grantWorker'),
    runnerFor(breakGlassWorker, breakGlassQueues, 'breakGlassWorker'),
    // Batch size 1, as the template's event source mapping: each task owns one invocation's deadline.
    runnerFor(reconcileTaskFn, reconcileQueues, 'reconciler', 1),
  ];

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const r of runners) await r.stop();
    await http.close();
    for (const fn of fns) await fn.close();
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
    // Each sample as its source's legitimate sender would send it, to the queue of its worker.
    const breakGlass = fields.source === 'break-glass';
    const sender =
      senderOf(breakGlass ? 'breakGlassWorker' : 'grantWorker', fields.source ?? 'ticket') ?? 'ticketIntake';
    await aws.sqsAs(sender).send(
      new SendMessageCommand({
        QueueUrl: breakGlass ? breakGlassQueues.queueUrl : aws.queueUrl,
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
  // CloudTrail IAM events take the deployed path: CloudTrail puts them on the default bus, the role intake's
  // rule (its pattern read from infra/functions-more.yml) matches, EventBridge invokes the intake
  // asynchronously. A failed call (errorCode set) matches no rule and is dropped at the bus.
  const cloudTrail = new EventBridgeClient({
    endpoint: aws.endpoints.eventbridge,
    region: aws.env.AWS_REGION,
    credentials: CLOUDTRAIL_CREDENTIALS,
  });
  const delivered: Array<{ name: string; eventName: string; eventId?: string; error?: string }> = [];
  for (const name of CLOUDTRAIL_ORDER) {
    const event = JSON.parse(readFileSync(join(CLOUDTRAIL_SAMPLES_DIR, `${name}.json`), 'utf8'));
    const out = await cloudTrail.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: event.source,
            DetailType: event['detail-type'],
            Detail: JSON.stringify(event.detail),
            Resources: event.resources,
            Time: new Date(event.time),
          },
        ],
      }),
    );
    const result = out.Entries?.[0];
    delivered.push({
      name,
      eventName: event.detail?.eventName ?? '-',
      ...(result?.EventId && { eventId: result.EventId }),
      ...(result?.ErrorCode && { error: `${result.ErrorCode}: ${result.ErrorMessage}` }),
    });
    // One at a time, as a role's life happens: the intake remembers each role for the next event.
    await aws.eventsIdle();
  }
  cloudTrail.destroy();
  const busEvents = new Map(aws.eventbridgeEmulator.events().map((e) => [e.id, e]));
  const invocations = new Map(
    (aws.eventInvokers.roleLifecycleIntake?.invocations() ?? []).map((i) => [i.eventId, i]),
  );
  for (const d of delivered) {
    const routed = d.eventId ? busEvents.get(d.eventId) : undefined;
    const invocation = d.eventId ? invocations.get(d.eventId) : undefined;
    const result = invocation?.result as
      | { outcome?: string; requests?: Array<{ requestId: string; action: string }> }
      | undefined;
    const requests = (result?.requests ?? []).map((r) => `${r.action} ${r.requestId}`).join(', ');
    const answer = d.error
      ? `refused by the bus: ${d.error}`
      : routed?.routes.length === 0
        ? 'dropped: no rule matched'
        : invocation?.status === 'failed'
          ? `role intake failed: ${invocation.error}`
          : `${result?.outcome}${requests ? `: ${requests}` : ''}`;
    intakeRows.push([`events/cloudtrail/${d.name}.json`, d.eventName, '-', answer.slice(0, 110)]);
  }
  console.log('\nIntake (HTTP routes and CloudTrail events)');
  console.log(table(['sample', 'route / event', 'HTTP', 'answer'], intakeRows));

  // Process until nothing is queued and no expiry due during this run is still to fire
  // (short break-glass samples expire visibly; hour- and day-long grants stay pending).
  const deadline = Date.now() + MAX_RUN_MS;
  for (;;) {
    await Promise.all(runners.map((r) => r.runUntilIdle({ maxMs: Math.max(1000, deadline - Date.now()) })));
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

  // The reconciler's schedule (every 5 minutes deployed) fires once: the expiry safety net and a full
  // reconcile pass over every cluster of the policy, staging's through its target role. Then the
  // queues drain again (an overdue expiry it finds goes to the workers).
  const scheduled = {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: directory.home.account,
    time: new Date().toISOString(),
    region: directory.home.region,
    resources: [],
    detail: {},
  };
  await reconcilerFn.invoke(
    scheduled,
    lambdaContext({ functionName: 'eks-access-grants-local-reconciler', timeoutMs: 60_000 }),
  );
  await Promise.all(runners.map((r) => r.runUntilIdle({ maxMs: 60_000 })));
  const lastRun = await new LedgerAdapter(aws.dynamodb, 'grants').lastReconcileRun();
  if (lastRun) {
    const r = lastRun.report;
    console.log(
      `\nReconcile pass: ${r.clusters ?? '?'} clusters, ${r.principalsChecked} principals checked, ` +
        `${r.drifted} drifted, ${r.errors} errors, ${r.expiriesEnqueued} overdue expiries enqueued; ` +
        `${r.truncated ? 'not finished' : `full pass in ${r.coverageSeconds}s`}`,
    );
  }

  // The audit log also holds the expiring-soon reminders (same source): not audit records.
  const audits = aws
    .auditEvents()
    .filter((e) => e.detailType === AUDIT_DETAIL_TYPE)
    .map((e) => e.detail);
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
    for (const r of runners) r.start();
    return;
  }
  await shutdown(0);
}

/** The parent's environment minus any AWS credentials or profile: a local function has only its own key. */
function inheritedEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      v === undefined ||
      /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|ROLE_ARN|WEB_IDENTITY_TOKEN_FILE)$/.test(k)
    )
      continue;
    out[k] = v;
  }
  return out;
}

function safeFields(body: string): {
  requestId?: string;
  clusterName?: string;
  principalArn?: string;
  source?: Source;
} {
  try {
    const v = JSON.parse(body) as Record<string, unknown>;
    const s = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
    const source = s('source');
    return {
      ...(source && SOURCES.includes(source as Source) && { source: source as Source }),
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
