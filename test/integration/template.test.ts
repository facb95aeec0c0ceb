// Packages the service offline once (osls + the esbuild plugin) and checks the CloudFormation it
// would deploy: queue wiring, the ledger table, least-privilege IAM (with a small policy evaluator),
// alarms, runtimes, and that each artifact loads as Lambda would load it.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerTableDefinition } from '../../functions/adapters/ledger.js';
import type { ArtifactReport } from '../../infra/scripts/build.js';
import { packageService } from '../../infra/scripts/package.js';

const REGION = 'eu-west-1';
const ACCOUNT = '111122223333';
const CLUSTERS = ['dev', 'prod'];
const CLUSTER_ADMIN = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy';
const VIEW = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy';
const EKS_WRITES = [
  'eks:CreateAccessEntry',
  'eks:UpdateAccessEntry',
  'eks:DeleteAccessEntry',
  'eks:AssociateAccessPolicy',
  'eks:DisassociateAccessPolicy',
  'eks:TagResource',
  'eks:UntagResource',
];
const WORKERS = { grantWorker: 'GrantWorkerRole', breakGlassWorker: 'BreakGlassWorkerRole' } as const;

interface CfnResource {
  Type: string;
  Properties: Record<string, unknown>;
}
interface Template {
  Resources: Record<string, CfnResource>;
}
interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface RoleProps {
  AssumeRolePolicyDocument: { Statement: (Statement & { Principal: { Service?: string } })[] };
  Policies?: { PolicyDocument: { Statement: Statement[] } }[];
  ManagedPolicyArns?: unknown[];
}
interface QueueProps {
  QueueName: string;
  FifoQueue?: boolean;
  ContentBasedDeduplication?: boolean;
  VisibilityTimeout?: number;
  SqsManagedSseEnabled?: boolean;
  MessageRetentionPeriod?: number;
  RedrivePolicy?: { deadLetterTargetArn: unknown; maxReceiveCount: number };
}
interface FunctionProps {
  FunctionName: string;
  Runtime: string;
  Architectures?: string[];
  Timeout: number;
  Role: unknown;
  Code: { S3Key: string };
  Environment?: { Variables: Record<string, unknown> };
}
interface MappingProps {
  EventSourceArn: unknown;
  FunctionName: unknown;
  BatchSize: number;
  FunctionResponseTypes?: string[];
  ScalingConfig?: { MaximumConcurrency?: number };
}

let template: Template;
let artifacts: ArtifactReport[];
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'eks-grants-template-'));
  const result = await packageService({
    stage: 'test',
    region: REGION,
    clusters: CLUSTERS.join(','),
    outDir: join(workDir, 'package'),
    quiet: true,
  });
  template = JSON.parse(await readFile(result.templatePath, 'utf8')) as Template;
  artifacts = result.artifacts;
}, 240_000);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

// ── template helpers ────────────────────────────────────────────────────────────────────────────

function ofType<P>(type: string): [string, P][] {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, r.Properties as P]);
}

function props<P>(id: string, type: string): P {
  const resource = template.Resources[id];
  if (!resource) throw new Error(`no resource ${id} in the template`);
  expect(resource.Type).toBe(type);
  return resource.Properties as P;
}

/** The logical id behind `{ Ref: X }` or `{ 'Fn::GetAtt': [X, attr] }`. */
function target(value: unknown): string | undefined {
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  return v?.Ref ?? v?.['Fn::GetAtt']?.[0];
}

const functions = () => ofType<FunctionProps>('AWS::Lambda::Function');
const mappings = () => ofType<MappingProps>('AWS::Lambda::EventSourceMapping');

function mappingOf(functionId: string): MappingProps {
  const found = mappings().find(([, m]) => target(m.FunctionName) === functionId);
  if (!found) throw new Error(`no event source mapping for ${functionId}`);
  return found[1];
}

function functionId(name: string): string {
  return `${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`;
}

// ── a small IAM evaluator: enough of the policy language to ask "may this role do X on Y?" ─────

/** Stands in for CloudFormation: pseudo parameters and GetAtt/Ref become plausible strings. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const sub = (value as { 'Fn::Sub'?: unknown })['Fn::Sub'];
  if (typeof sub === 'string') {
    return sub.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      if (name === 'AWS::Partition') return 'aws';
      if (name === 'AWS::Region') return REGION;
      if (name === 'AWS::AccountId') return ACCOUNT;
      return `resolved:${name}`;
    });
  }
  const id = target(value);
  if (id) return `arn:aws:test:${REGION}:${ACCOUNT}:${id}`;
  return JSON.stringify(value);
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function glob(pattern: string, text: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(text);
}

function statementsOf(roleId: string): Statement[] {
  const role = props<RoleProps>(roleId, 'AWS::IAM::Role');
  // Managed policies would escape this evaluator; none are expected.
  expect(role.ManagedPolicyArns ?? []).toEqual([]);
  return (role.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
}

function conditionHolds(condition: Statement['Condition'], context: Record<string, string>): boolean {
  return Object.entries(condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, expected]) => {
      const actual = context[key];
      if (actual === undefined) return false;
      const values = list(expected).map(render);
      if (operator === 'StringEquals' || operator === 'ArnEquals') return values.includes(actual);
      if (operator === 'StringLike' || operator === 'ArnLike') return values.some((v) => glob(v, actual));
      throw new Error(`the evaluator does not know condition operator ${operator}`);
    }),
  );
}

function matches(statement: Statement, action: string, resource: string, context: Record<string, string>) {
  return (
    list(statement.Action).some((a) => glob(a, action)) &&
    list(statement.Resource).some((r) => glob(render(r), resource)) &&
    conditionHolds(statement.Condition, context)
  );
}

function allowed(roleId: string, action: string, resource: string, context: Record<string, string> = {}) {
  const statements = statementsOf(roleId);
  if (statements.some((s) => s.Effect === 'Deny' && matches(s, action, resource, context))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s, action, resource, context));
}

const clusterArn = (name: string) => `arn:aws:eks:${REGION}:${ACCOUNT}:cluster/${name}`;
const entryArn = (name: string) =>
  `arn:aws:eks:${REGION}:${ACCOUNT}:access-entry/${name}/role/${ACCOUNT}/team-a/0ac6d1b2-1111-2222-3333-444455556666`;
const roleIds = () => ofType<RoleProps>('AWS::IAM::Role').map(([id]) => id);

// ── zip reading, to check the artifacts themselves ──────────────────────────────────────────────

function unzip(zip: Buffer): Map<string, { data: Buffer; mode: number }> {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const files = new Map<string, { data: Buffer; mode: number }>();
  let p = zip.readUInt32LE(end + 16);
  for (let i = 0; i < zip.readUInt16LE(end + 10); i++) {
    expect(zip.readUInt32LE(p)).toBe(0x02014b50);
    const method = zip.readUInt16LE(p + 10);
    const size = zip.readUInt32LE(p + 20);
    const nameLength = zip.readUInt16LE(p + 28);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLength);
    const local = zip.readUInt32LE(p + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + size);
    const data = method === 8 ? inflateRawSync(raw) : raw;
    expect(crc32(data), `crc of ${name}`).toBe(zip.readUInt32LE(p + 16));
    files.set(name, { data, mode: zip.readUInt32LE(p + 38) >>> 16 });
    p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return files;
}

/** A deployed function's environment with references replaced by plausible values. */
function fakeEnvironment(variables: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(variables)) {
    const id = target(value);
    const type = id ? template.Resources[id]?.Type : undefined;
    const isRef = (value as { Ref?: string }).Ref !== undefined;
    if (typeof value === 'string') env[name] = value;
    else if (type === 'AWS::SQS::Queue' && isRef)
      env[name] = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${id}`;
    else if (type === 'AWS::SQS::Queue') env[name] = `arn:aws:sqs:${REGION}:${ACCOUNT}:${id}`;
    else if (type === 'AWS::IAM::Role') env[name] = `arn:aws:iam::${ACCOUNT}:role/${id}`;
    else env[name] = id ?? JSON.stringify(value);
  }
  return env;
}

function runNode(cwd: string, env: Record<string, string>, code: string) {
  return new Promise<{ code: number | null; output: string }>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd, env, stdio: 'pipe' });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c;
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c;
    });
    child.on('error', reject);
    child.on('close', (exitCode) => resolvePromise({ code: exitCode, output }));
  });
}

// ── tests ───────────────────────────────────────────────────────────────────────────────────────

describe('queues', () => {
  const pairs = [
    { queue: 'RequestQueue', dlq: 'RequestDeadLetterQueue', worker: 'grantWorker' },
    { queue: 'BreakGlassQueue', dlq: 'BreakGlassDeadLetterQueue', worker: 'breakGlassWorker' },
  ];

  it.each(pairs)('$queue is FIFO with content-based dedup, redriving to FIFO $dlq', ({ queue, dlq }) => {
    const q = props<QueueProps>(queue, 'AWS::SQS::Queue');
    const d = props<QueueProps>(dlq, 'AWS::SQS::Queue');
    expect(q.FifoQueue).toBe(true);
    expect(q.QueueName).toMatch(/\.fifo$/);
    // Scheduler's SQS target cannot set a deduplication id.
    expect(q.ContentBasedDeduplication).toBe(true);
    expect(target(q.RedrivePolicy?.deadLetterTargetArn)).toBe(dlq);
    expect(d.FifoQueue).toBe(true);
    expect(d.QueueName).toMatch(/\.fifo$/);
    expect(d.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it.each(pairs)(
    "$worker's MAX_RECEIVE_COUNT equals $queue's redrive maxReceiveCount",
    ({ queue, worker }) => {
      const maxReceiveCount = props<QueueProps>(queue, 'AWS::SQS::Queue').RedrivePolicy?.maxReceiveCount;
      const env = props<FunctionProps>(functionId(worker), 'AWS::Lambda::Function').Environment?.Variables;
      expect(maxReceiveCount).toBeGreaterThanOrEqual(2);
      expect(Number(env?.MAX_RECEIVE_COUNT)).toBe(maxReceiveCount);
    },
  );

  it.each(pairs)("$queue's visibility timeout is at least 6 x $worker's timeout", ({ queue, worker }) => {
    const visibility = props<QueueProps>(queue, 'AWS::SQS::Queue').VisibilityTimeout ?? 30;
    const timeout = props<FunctionProps>(functionId(worker), 'AWS::Lambda::Function').Timeout;
    expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('encrypts every queue at rest', () => {
    const queues = ofType<QueueProps>('AWS::SQS::Queue');
    expect(queues).toHaveLength(4);
    for (const [id, q] of queues) expect(q.SqsManagedSseEnabled, id).toBe(true);
  });

  it.each(pairs)('$worker consumes only $queue, reporting partial batch failures', ({ queue, worker }) => {
    const mapping = mappingOf(functionId(worker));
    expect(target(mapping.EventSourceArn)).toBe(queue);
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.BatchSize).toBeGreaterThanOrEqual(1);
    expect(mapping.BatchSize).toBeLessThanOrEqual(10);
    expect(mapping.ScalingConfig?.MaximumConcurrency).toBeGreaterThanOrEqual(2);
  });
});

describe('ledger table', () => {
  interface TableProps {
    BillingMode: string;
    AttributeDefinitions: { AttributeName: string; AttributeType: string }[];
    KeySchema: unknown[];
    GlobalSecondaryIndexes: { IndexName: string; KeySchema: unknown[]; Projection: unknown }[];
    PointInTimeRecoverySpecification?: { PointInTimeRecoveryEnabled?: boolean };
    DeletionProtectionEnabled?: boolean;
    SSESpecification?: { SSEEnabled?: boolean };
  }
  const byName = <T extends { AttributeName?: string; IndexName?: string }>(items: T[]) =>
    [...items].sort((a, b) =>
      String(a.AttributeName ?? a.IndexName).localeCompare(String(b.AttributeName ?? b.IndexName)),
    );

  it('has the keys and indexes of ledgerTableDefinition(), which local mode and tests create', () => {
    const table = props<TableProps>('LedgerTable', 'AWS::DynamoDB::Table');
    const code = ledgerTableDefinition('any');
    expect(table.BillingMode).toBe(code.BillingMode);
    expect(byName(table.AttributeDefinitions)).toEqual(byName(code.AttributeDefinitions ?? []));
    expect(table.KeySchema).toEqual(code.KeySchema);
    const indexes = (gsis: { IndexName?: string; KeySchema?: unknown; Projection?: unknown }[]) =>
      byName(gsis.map(({ IndexName, KeySchema, Projection }) => ({ IndexName, KeySchema, Projection })));
    expect(indexes(table.GlobalSecondaryIndexes)).toEqual(indexes(code.GlobalSecondaryIndexes ?? []));
  });

  it('is protected from deletion, recoverable to a point in time and encrypted', () => {
    const resource = template.Resources.LedgerTable as CfnResource & { DeletionPolicy?: string };
    const table = props<TableProps>('LedgerTable', 'AWS::DynamoDB::Table');
    expect(table.DeletionProtectionEnabled).toBe(true);
    expect(table.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled).toBe(true);
    expect(table.SSESpecification?.SSEEnabled).toBe(true);
    expect(resource.DeletionPolicy).toBe('Retain');
  });
});

describe('IAM', () => {
  it('gives each function its own role, defined in this stack', () => {
    const roles = functions().map(([id, f]) => {
      const role = target(f.Role);
      expect(role, id).toBeDefined();
      expect(template.Resources[role ?? '']?.Type, id).toBe('AWS::IAM::Role');
      return role;
    });
    expect(new Set(roles).size).toBe(roles.length);
    for (const [worker, role] of Object.entries(WORKERS)) {
      expect(target(props<FunctionProps>(functionId(worker), 'AWS::Lambda::Function').Role)).toBe(role);
    }
  });

  it('never allows an EKS write on Resource "*"', () => {
    for (const roleId of roleIds()) {
      for (const s of statementsOf(roleId).filter((s) => s.Effect === 'Allow')) {
        const writes = EKS_WRITES.some((action) => list(s.Action).some((a) => glob(a, action)));
        if (writes) expect(list(s.Resource), `${roleId} ${s.Sid}`).not.toContain('*');
      }
    }
  });

  it.each(Object.values(WORKERS))('%s changes access entries only on the configured clusters', (roleId) => {
    for (const cluster of CLUSTERS) {
      expect(allowed(roleId, 'eks:CreateAccessEntry', clusterArn(cluster))).toBe(true);
      expect(allowed(roleId, 'eks:DeleteAccessEntry', entryArn(cluster))).toBe(true);
      expect(allowed(roleId, 'eks:AssociateAccessPolicy', entryArn(cluster), { 'eks:policyArn': VIEW })).toBe(
        true,
      );
    }
    expect(allowed(roleId, 'eks:CreateAccessEntry', clusterArn('other'))).toBe(false);
    expect(allowed(roleId, 'eks:AssociateAccessPolicy', entryArn('other'), { 'eks:policyArn': VIEW })).toBe(
      false,
    );
    expect(allowed(roleId, 'eks:DeleteCluster', clusterArn('dev'))).toBe(false);
  });

  it('denies the standard worker AmazonEKSClusterAdminPolicy explicitly, on any cluster', () => {
    const deny = statementsOf(WORKERS.grantWorker).find(
      (s) =>
        s.Effect === 'Deny' &&
        list(s.Action).includes('eks:AssociateAccessPolicy') &&
        conditionHolds(s.Condition, { 'eks:policyArn': CLUSTER_ADMIN }),
    );
    expect(deny).toBeDefined();
    expect(conditionHolds(deny?.Condition, { 'eks:policyArn': VIEW })).toBe(false);
    for (const cluster of [...CLUSTERS, 'other']) {
      expect(
        allowed(WORKERS.grantWorker, 'eks:AssociateAccessPolicy', entryArn(cluster), {
          'eks:policyArn': CLUSTER_ADMIN,
        }),
      ).toBe(false);
    }
  });

  it('lets only the break-glass worker associate AmazonEKSClusterAdminPolicy', () => {
    const admin = { 'eks:policyArn': CLUSTER_ADMIN };
    const may = roleIds().filter((roleId) =>
      allowed(roleId, 'eks:AssociateAccessPolicy', entryArn('prod'), admin),
    );
    expect(may).toEqual([WORKERS.breakGlassWorker]);
  });

  it('lets each worker use only its own queue, DLQ and Scheduler role', () => {
    const own = {
      GrantWorkerRole: ['RequestQueue', 'RequestDeadLetterQueue', 'ExpirySchedulerRole'],
      BreakGlassWorkerRole: ['BreakGlassQueue', 'BreakGlassDeadLetterQueue', 'BreakGlassSchedulerRole'],
    };
    const arn = (id: string) => render({ 'Fn::GetAtt': [id, 'Arn'] });
    for (const [roleId, [queue, dlq, schedulerRole]] of Object.entries(own) as [string, string[]][]) {
      const [otherQueue, otherDlq, otherSchedulerRole] =
        Object.entries(own).find(([r]) => r !== roleId)?.[1] ?? [];
      expect(allowed(roleId, 'sqs:ReceiveMessage', arn(queue ?? ''))).toBe(true);
      expect(allowed(roleId, 'sqs:ChangeMessageVisibility', arn(queue ?? ''))).toBe(true);
      expect(allowed(roleId, 'sqs:SendMessage', arn(dlq ?? ''))).toBe(true);
      expect(allowed(roleId, 'sqs:SendMessage', arn(queue ?? ''))).toBe(false);
      expect(allowed(roleId, 'sqs:ReceiveMessage', arn(otherQueue ?? ''))).toBe(false);
      expect(allowed(roleId, 'sqs:SendMessage', arn(otherDlq ?? ''))).toBe(false);
      const toScheduler = { 'iam:PassedToService': 'scheduler.amazonaws.com' };
      expect(allowed(roleId, 'iam:PassRole', arn(schedulerRole ?? ''), toScheduler)).toBe(true);
      expect(allowed(roleId, 'iam:PassRole', arn(otherSchedulerRole ?? ''), toScheduler)).toBe(false);
      expect(
        allowed(roleId, 'iam:PassRole', arn(schedulerRole ?? ''), {
          'iam:PassedToService': 'ec2.amazonaws.com',
        }),
      ).toBe(false);
    }
  });

  it('keeps worker schedules in their own group and audit on the audit bus', () => {
    const group = (name: string) =>
      `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/resolved:${name}/expiry-1`;
    expect(allowed('GrantWorkerRole', 'scheduler:CreateSchedule', group('ExpiryScheduleGroup'))).toBe(true);
    expect(
      allowed('GrantWorkerRole', 'scheduler:DeleteSchedule', group('BreakGlassExpiryScheduleGroup')),
    ).toBe(false);
    expect(
      allowed('BreakGlassWorkerRole', 'scheduler:CreateSchedule', group('BreakGlassExpiryScheduleGroup')),
    ).toBe(true);
    for (const roleId of Object.values(WORKERS)) {
      expect(allowed(roleId, 'events:PutEvents', render({ 'Fn::GetAtt': ['AuditBus', 'Arn'] }))).toBe(true);
      expect(
        allowed(roleId, 'events:PutEvents', `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/default`),
      ).toBe(false);
    }
  });

  it('lets only the break-glass intake and break-glass expiries write to the break-glass queue', () => {
    // Whoever can write there can ask the break-glass worker for cluster admin.
    const queue = render({ 'Fn::GetAtt': ['BreakGlassQueue', 'Arn'] });
    const writers = roleIds().filter((roleId) => allowed(roleId, 'sqs:SendMessage', queue));
    expect(writers.sort()).toEqual(['BreakGlassIntakeRole', 'BreakGlassSchedulerRole']);
  });

  it('lets Scheduler roles be assumed only by Scheduler for this account, and only send to one queue', () => {
    for (const [roleId, queue] of [
      ['ExpirySchedulerRole', 'RequestQueue'],
      ['BreakGlassSchedulerRole', 'BreakGlassQueue'],
    ] as const) {
      const role = props<RoleProps>(roleId, 'AWS::IAM::Role');
      const trust = role.AssumeRolePolicyDocument.Statement;
      expect(trust).toHaveLength(1);
      expect(trust[0]?.Principal.Service).toBe('scheduler.amazonaws.com');
      expect(trust[0]?.Condition?.StringEquals?.['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
      const statements = statementsOf(roleId);
      expect(statements.map((s) => [s.Effect, s.Action, target(s.Resource)])).toEqual([
        ['Allow', 'sqs:SendMessage', queue],
      ]);
    }
  });

  it('keeps intake roles to enqueueing, their own secrets and their own ledger items, without EKS', () => {
    const expectedDynamo: Record<string, [string[], string]> = {
      TicketIntakeRole: [['dynamodb:PutItem', 'dynamodb:DeleteItem'], 'REPLAY#*'],
      BreakGlassIntakeRole: [['dynamodb:PutItem', 'dynamodb:DeleteItem'], 'REPLAY#*'],
      RoleLifecycleIntakeRole: [['dynamodb:GetItem', 'dynamodb:PutItem'], 'ROLE#*'],
    };
    for (const [roleId, [dynamoActions, leadingKeys]] of Object.entries(expectedDynamo)) {
      const statements = statementsOf(roleId);
      const actions = statements.flatMap((s) => list(s.Action));
      expect(actions.filter((a) => a.startsWith('eks:'))).toEqual([]);
      expect(actions.filter((a) => a.startsWith('sqs:'))).toEqual(['sqs:SendMessage']);
      expect(actions.filter((a) => a.startsWith('dynamodb:'))).toEqual(dynamoActions);
      // Every DynamoDB grant is fenced to the intake's own key prefix: never the grants ledger.
      for (const s of statements.filter((st) => list(st.Action).some((a) => a.startsWith('dynamodb:')))) {
        expect(JSON.stringify(s.Condition)).toContain(leadingKeys);
      }
    }
  });

  it('gives each HTTP intake only its own route key and its own queue', () => {
    const param = (name: string) =>
      `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/eks-access-grants/test/${name}-webhook-secret`;
    const queue = (id: string) => render({ 'Fn::GetAtt': [id, 'Arn'] });
    const own = {
      TicketIntakeRole: {
        key: 'ticket',
        queue: 'RequestQueue',
        otherKey: 'break-glass',
        other: 'BreakGlassQueue',
      },
      BreakGlassIntakeRole: {
        key: 'break-glass',
        queue: 'BreakGlassQueue',
        otherKey: 'ticket',
        other: 'RequestQueue',
      },
    };
    for (const [roleId, o] of Object.entries(own)) {
      expect(allowed(roleId, 'ssm:GetParameter', param(o.key)), roleId).toBe(true);
      expect(allowed(roleId, 'ssm:GetParameter', param(o.otherKey)), roleId).toBe(false);
      expect(allowed(roleId, 'sqs:SendMessage', queue(o.queue)), roleId).toBe(true);
      expect(allowed(roleId, 'sqs:SendMessage', queue(o.other)), roleId).toBe(false);
      const secretReads = statementsOf(roleId).filter((s) => list(s.Action).includes('ssm:GetParameter'));
      expect(
        secretReads.flatMap((s) => list(s.Resource)),
        roleId,
      ).toHaveLength(1);
    }
  });

  it('lets the reconciler read access entries but never change them', () => {
    for (const cluster of CLUSTERS) {
      expect(allowed('ReconcilerRole', 'eks:ListAccessEntries', clusterArn(cluster))).toBe(true);
      expect(allowed('ReconcilerRole', 'eks:DescribeAccessEntry', entryArn(cluster))).toBe(true);
      for (const action of EKS_WRITES) {
        expect(allowed('ReconcilerRole', action, entryArn(cluster)), action).toBe(false);
        expect(allowed('ReconcilerRole', action, clusterArn(cluster)), action).toBe(false);
      }
    }
    const ledger = render({ 'Fn::GetAtt': ['LedgerTable', 'Arn'] });
    expect(allowed('ReconcilerRole', 'dynamodb:Query', ledger)).toBe(true);
    expect(allowed('ReconcilerRole', 'dynamodb:PutItem', ledger)).toBe(false);
  });
});

describe('HTTP API: break-glass isolated from tickets', () => {
  interface RouteProps {
    RouteKey: string;
    Target: { 'Fn::Join': [string, [string, { Ref: string }]] };
  }
  interface IntegrationProps {
    IntegrationUri: unknown;
  }
  interface RouteThrottle {
    ThrottlingRateLimit?: number;
    ThrottlingBurstLimit?: number;
  }
  interface StageProps {
    DefaultRouteSettings?: RouteThrottle;
    RouteSettings?: Record<string, RouteThrottle>;
  }

  /** Route key → the function its integration invokes. */
  function routeTargets(): Record<string, string | undefined> {
    return Object.fromEntries(
      ofType<RouteProps>('AWS::ApiGatewayV2::Route').map(([, route]) => {
        const integration = route.Target['Fn::Join'][1][1].Ref;
        const uri = props<IntegrationProps>(integration, 'AWS::ApiGatewayV2::Integration').IntegrationUri;
        return [route.RouteKey, target(uri)];
      }),
    );
  }

  it('serves POST /break-glass from its own function and POST /tickets from the ticket intake, nothing else', () => {
    expect(routeTargets()).toEqual({
      'POST /tickets': functionId('ticketIntake'),
      'POST /break-glass': functionId('breakGlassIntake'),
    });
  });

  it('reserves concurrency for the break-glass intake, and gives it only break-glass settings', () => {
    const fn = props<FunctionProps & { ReservedConcurrentExecutions?: number }>(
      functionId('breakGlassIntake'),
      'AWS::Lambda::Function',
    );
    expect(fn.ReservedConcurrentExecutions).toBeGreaterThanOrEqual(1);
    const env = Object.keys(fn.Environment?.Variables ?? {});
    expect(env).toEqual(expect.arrayContaining(['BREAK_GLASS_QUEUE_URL', 'BREAK_GLASS_SECRET_PARAM']));
    expect(env).not.toContain('TICKET_SECRET_PARAM');
    expect(env).not.toContain('REQUEST_QUEUE_URL');
    const ticketEnv = Object.keys(
      props<FunctionProps>(functionId('ticketIntake'), 'AWS::Lambda::Function').Environment?.Variables ?? {},
    );
    expect(ticketEnv).not.toContain('BREAK_GLASS_SECRET_PARAM');
    expect(ticketEnv).not.toContain('BREAK_GLASS_QUEUE_URL');
  });

  it('throttles each route on the stage with its own limits, created after the routes it names', () => {
    const stageResource = template.Resources.HttpApiStage as CfnResource & { DependsOn?: string[] };
    const stage = props<StageProps>('HttpApiStage', 'AWS::ApiGatewayV2::Stage');
    const routes = ofType<RouteProps>('AWS::ApiGatewayV2::Route');
    expect(Object.keys(stage.RouteSettings ?? {}).sort()).toEqual(routes.map(([, r]) => r.RouteKey).sort());
    for (const [id] of routes) expect(stageResource.DependsOn).toContain(id);
    const tickets = stage.RouteSettings?.['POST /tickets'];
    const breakGlass = stage.RouteSettings?.['POST /break-glass'];
    for (const limits of [tickets, breakGlass, stage.DefaultRouteSettings]) {
      expect(limits?.ThrottlingRateLimit).toBeGreaterThan(0);
      expect(limits?.ThrottlingBurstLimit).toBeGreaterThan(0);
    }
    // Defaults from serverless.yml params: tickets 20/40, break-glass 5/10.
    expect(tickets).toMatchObject({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 });
    expect(breakGlass).toMatchObject({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 });
  });
});

describe('alarms', () => {
  interface AlarmProps {
    MetricName: string;
    Namespace: string;
    Dimensions: { Name: string; Value: unknown }[];
    Threshold: number;
    ComparisonOperator: string;
    AlarmActions: unknown[];
  }
  const alarmsOn = (metric: string, dimension: string) =>
    ofType<AlarmProps>('AWS::CloudWatch::Alarm')
      .map(([, a]) => a)
      .filter((a) => a.MetricName === metric && a.Dimensions.some((d) => target(d.Value) === dimension));

  it.each(['RequestDeadLetterQueue', 'BreakGlassDeadLetterQueue'])('alarms on any message in %s', (dlq) => {
    const [alarm] = alarmsOn('ApproximateNumberOfMessagesVisible', dlq);
    expect(alarm).toBeDefined();
    expect(alarm?.Threshold).toBe(0);
    expect(alarm?.ComparisonOperator).toBe('GreaterThanThreshold');
    expect(alarm?.AlarmActions.map(target)).toEqual(['AlarmTopic']);
  });

  it.each(['RequestQueue', 'BreakGlassQueue'])('alarms when requests wait too long in %s', (queue) => {
    expect(alarmsOn('ApproximateAgeOfOldestMessage', queue)).toHaveLength(1);
  });

  it.each(Object.keys(WORKERS))('alarms on %s errors', (worker) => {
    expect(alarmsOn('Errors', functionId(worker))).toHaveLength(1);
  });
});

describe('functions and artifacts', () => {
  it('runs every function on nodejs24.x, on arm64', () => {
    // nodejs22.x is deprecated from 2027-04-30; nodejs24.x is GA since 2025-11 (DESIGN §4).
    expect(functions().length).toBeGreaterThanOrEqual(2);
    for (const [id, f] of functions()) {
      expect(f.Runtime, id).toBe('nodejs24.x');
      expect(f.Architectures, id).toEqual(['arm64']);
    }
  });

  it('traces every function with Lambda active tracing by default, with no layer and no exec wrapper', () => {
    for (const [id, f] of functions()) {
      const fn = f as FunctionProps & { TracingConfig?: { Mode: string }; Layers?: unknown[] };
      expect(fn.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect(fn.Layers ?? [], id).toEqual([]);
      expect(fn.Environment?.Variables ?? {}, id).not.toHaveProperty('AWS_LAMBDA_EXEC_WRAPPER');
    }
  });

  it('bundles no tracing SDK: neither Powertools Tracer nor the X-Ray SDK nor OpenTelemetry', async () => {
    for (const artifact of artifacts) {
      const meta = JSON.parse(
        await readFile(join(artifact.dir, '..', `${artifact.name}.meta.json`), 'utf8'),
      ) as {
        inputs: Record<string, unknown>;
      };
      const inputs = Object.keys(meta.inputs);
      expect(inputs.length, artifact.name).toBeGreaterThan(0);
      expect(
        inputs.filter((i) =>
          /node_modules\/(@aws-lambda-powertools\/tracer|aws-xray-sdk|@opentelemetry)/.test(i),
        ),
        artifact.name,
      ).toEqual([]);
    }
  });

  it('deploys each function from its own zip, holding index.js, package.json and policy.json', async () => {
    expect(artifacts.map((a) => functionId(a.name)).sort()).toEqual(
      functions()
        .map(([id]) => id)
        .sort(),
    );
    for (const artifact of artifacts) {
      const fn = props<FunctionProps>(functionId(artifact.name), 'AWS::Lambda::Function');
      expect(fn.Code.S3Key.endsWith(`/${artifact.name}.zip`)).toBe(true);
      const files = unzip(await readFile(artifact.zipPath));
      expect([...files.keys()].sort()).toEqual(['index.js', 'package.json', 'policy.json']);
      // Lambda must be able to read every file, whatever the umask of the machine that built it.
      for (const [name, { mode }] of files) expect(mode & 0o444, name).toBe(0o444);
      expect(JSON.parse(files.get('package.json')?.data.toString() ?? '{}')).toEqual({ type: 'module' });
      expect(JSON.parse(files.get('policy.json')?.data.toString() ?? '{}')).toMatchObject({ version: 1 });
      // Bundled, not taken from the runtime: no bare import of the SDK is left.
      expect(files.get('index.js')?.data.toString()).not.toMatch(/from\s*["']@aws-sdk\//);
    }
  });

  it.each([...Object.keys(WORKERS), 'ticketIntake', 'breakGlassIntake'])(
    '%s artifact starts in Node with only the environment the template gives it',
    async (worker) => {
      const artifact = artifacts.find((a) => a.name === worker);
      if (!artifact) throw new Error(`no artifact for ${worker}`);
      const taskRoot = join(workDir, 'task', worker);
      await mkdir(taskRoot, { recursive: true });
      for (const [name, { data }] of unzip(await readFile(artifact.zipPath))) {
        await writeFile(join(taskRoot, name), data);
      }
      const fn = props<FunctionProps>(functionId(worker), 'AWS::Lambda::Function');
      const env = {
        ...fakeEnvironment(fn.Environment?.Variables ?? {}),
        // What Lambda itself sets; the runtime starts in the task root (cwd below).
        AWS_REGION: REGION,
        LAMBDA_TASK_ROOT: taskRoot,
        PATH: process.env.PATH ?? '',
      };
      const result = await runNode(
        taskRoot,
        env,
        // Only the message on failure: Node would otherwise print the minified source line.
        "try { const m = await import('./index.js'); if (typeof m.handler !== 'function') throw new Error('no handler export') } catch (err) { console.error(err.message); process.exit(1) }",
      );
      expect(result.output).toBe('');
      expect(result.code).toBe(0);
    },
  );
});
