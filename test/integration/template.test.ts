// Packages the service offline once (osls + the esbuild plugin) and checks the CloudFormation it
// would deploy: queue wiring, the ledger table, least-privilege IAM (with a small policy evaluator),
// alarms, runtimes, and that each artifact loads as Lambda would load it.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerTableDefinition } from '../../functions/adapters/ledger.js';
import { decide } from '../../functions/core/policy.js';
import { validateAccessRequest } from '../../functions/core/request.js';
import { loadEventRoutes } from '../../infra/local/event-routes.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../../infra/policy-file.js';
import { type ArtifactReport, defaultFunctions } from '../../infra/scripts/build.js';
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

type Context = Record<string, string | readonly string[]>;

/**
 * IAM condition evaluation, as the IAM User Guide describes it (condition operators; multivalued
 * context keys): a negated operator holds when the key is absent; ForAllValues holds for an absent or
 * empty key and when every value matches; ForAnyValue needs at least one matching value.
 */
function conditionHolds(condition: Statement['Condition'], context: Context): boolean {
  return Object.entries(condition ?? {}).every(([qualified, keys]) =>
    Object.entries(keys).every(([key, expected]) => {
      const [set, operator = ''] = qualified.includes(':') ? qualified.split(':') : [undefined, qualified];
      const raw = context[key];
      const actual = raw === undefined ? [] : typeof raw === 'string' ? [raw] : [...raw];
      const values = list(expected).map(render);
      if (operator === 'Null') return (actual.length === 0) === (values[0] === 'true');
      const negated = operator.includes('Not');
      const base = operator.replace('Not', '');
      const one = (v: string): boolean => {
        if (base === 'StringEquals' || base === 'ArnEquals' || base === 'Bool') return values.includes(v);
        if (base === 'StringLike' || base === 'ArnLike') return values.some((p) => glob(p, v));
        throw new Error(`the evaluator does not know condition operator ${qualified}`);
      };
      if (set === 'ForAllValues') return actual.every((v) => (negated ? !one(v) : one(v)));
      if (set === 'ForAnyValue') return actual.some((v) => (negated ? !one(v) : one(v)));
      if (set !== undefined) throw new Error(`the evaluator does not know set operator ${set}`);
      if (negated) return !actual.some(one);
      return actual.length > 0 && actual.some(one);
    }),
  );
}

function matches(statement: Statement, action: string, resource: string, context: Context) {
  return (
    list(statement.Action).some((a) => glob(a, action)) &&
    list(statement.Resource).some((r) => glob(render(r), resource)) &&
    conditionHolds(statement.Condition, context)
  );
}

/** Identity policy of a role in this stack: may it do `action` on `resource`? */
function allowed(roleId: string, action: string, resource: string, context: Context = {}) {
  const statements = statementsOf(roleId);
  if (statements.some((s) => s.Effect === 'Deny' && matches(s, action, resource, context))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s, action, resource, context));
}

const arnOf = (id: string) => render({ 'Fn::GetAtt': [id, 'Arn'] });

/** The resource-policy statements that apply to a resource (queue policies, the event bus policy). */
function resourceStatements(resourceId: string): Statement[] {
  const found: Statement[] = [];
  for (const [, r] of Object.entries(template.Resources)) {
    const p = r.Properties as {
      Queues?: unknown[];
      EventBusName?: unknown;
      PolicyDocument?: { Statement: Statement[] };
      Statement?: Statement | Statement[];
    };
    if (r.Type === 'AWS::SQS::QueuePolicy' && (p.Queues ?? []).some((q) => target(q) === resourceId)) {
      found.push(...(p.PolicyDocument?.Statement ?? []));
    }
    if (r.Type === 'AWS::Events::EventBusPolicy' && target(p.EventBusName) === resourceId) {
      found.push(...list(p.Statement));
    }
  }
  return found;
}

/**
 * Same-account evaluation (IAM User Guide, policy evaluation logic): an explicit Deny in the identity
 * or the resource policy wins; otherwise an Allow in either is enough. `principal` is a role of this
 * stack (its identity policy is evaluated) or any other ARN, assumed to have an identity policy that
 * allows everything, the worst case.
 */
function mayCall(principal: string, action: string, resourceId: string, context: Context = {}): boolean {
  const resource = arnOf(resourceId);
  const isOwnRole = template.Resources[principal]?.Type === 'AWS::IAM::Role';
  const principalArn = isOwnRole ? arnOf(principal) : principal;
  const ctx: Context = { ...context, 'aws:PrincipalArn': principalArn };
  const denied = resourceStatements(resourceId).some(
    (s) => s.Effect === 'Deny' && matches(s, action, resource, ctx),
  );
  if (denied) return false;
  return isOwnRole ? allowed(principal, action, resource, ctx) : true;
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
    const sub = (value as { 'Fn::Sub'?: unknown })['Fn::Sub'];
    if (typeof value === 'string') env[name] = value;
    else if (typeof sub === 'string') {
      // A role's unique id looks like AROA + 17 upper-case letters and digits.
      const roleIds = sub.replace(/\$\{(\w+)\.RoleId\}/g, (_, role: string) =>
        `AROA${role.toUpperCase().replace(/[^A-Z0-9]/g, '')}`.padEnd(21, 'X').slice(0, 21),
      );
      env[name] = render({ 'Fn::Sub': roleIds });
    } else if (type === 'AWS::SQS::Queue' && isRef)
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

  it('fans reconcile tasks out on their own FIFO queue, consumed one task at a time by reconcileTask', () => {
    const q = props<QueueProps>('ReconcileQueue', 'AWS::SQS::Queue');
    const d = props<QueueProps>('ReconcileDeadLetterQueue', 'AWS::SQS::Queue');
    expect(q.FifoQueue).toBe(true);
    expect(target(q.RedrivePolicy?.deadLetterTargetArn)).toBe('ReconcileDeadLetterQueue');
    expect(d.FifoQueue).toBe(true);
    // A running task must never be handed to a second consumer: the budget lives in one consumer.
    const task = props<FunctionProps>(functionId('reconcileTask'), 'AWS::Lambda::Function');
    expect(q.VisibilityTimeout ?? 30).toBeGreaterThanOrEqual(6 * task.Timeout);
    const mapping = mappingOf(functionId('reconcileTask'));
    expect(target(mapping.EventSourceArn)).toBe('ReconcileQueue');
    expect(mapping.BatchSize).toBe(1);
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    for (const fn of ['reconciler', 'reconcileTask']) {
      const env = props<FunctionProps>(functionId(fn), 'AWS::Lambda::Function').Environment?.Variables;
      expect(env?.RECONCILE_QUEUE_URL, fn).toEqual({ Ref: 'ReconcileQueue' });
      expect(Number(env?.RECONCILE_EKS_CALLS_PER_SECOND), fn).toBe(20);
      // The task consumer's sender binding: the reconciler role's own id, not a name a recreated role keeps.
      expect(env?.RECONCILE_TASK_SENDERS, fn).toEqual({ 'Fn::Sub': `["\${ReconcilerRole.RoleId}"]` });
    }
  });

  it('encrypts every queue at rest', () => {
    const queues = ofType<QueueProps>('AWS::SQS::Queue');
    expect(queues).toHaveLength(6);
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
    // One exception: the reconcile-task consumer is the reconciler's other half and shares its role (C1
    // binds the `reconcile` source to ReconcilerRole; only that role may send reconcile tasks).
    expect(target(props<FunctionProps>(functionId('reconcileTask'), 'AWS::Lambda::Function').Role)).toBe(
      'ReconcilerRole',
    );
    expect(new Set(roles).size).toBe(roles.length - 1);
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
    // What each worker may grant where is checked in "IAM compiled from the guardrail policy".
    const grantable: Context | undefined = (
      {
        GrantWorkerRole: {
          'eks:policyArn': VIEW,
          'eks:accessScope': 'namespace',
          'eks:namespaces': ['team-a'],
        },
        BreakGlassWorkerRole: { 'eks:policyArn': CLUSTER_ADMIN, 'eks:accessScope': 'cluster' },
      } as Record<string, Context>
    )[roleId];
    for (const cluster of CLUSTERS) {
      expect(allowed(roleId, 'eks:DeleteAccessEntry', entryArn(cluster))).toBe(true);
      expect(allowed(roleId, 'eks:DescribeAccessEntry', entryArn(cluster))).toBe(true);
    }
    expect(allowed(roleId, 'eks:CreateAccessEntry', clusterArn('prod'))).toBe(true);
    expect(allowed(roleId, 'eks:AssociateAccessPolicy', entryArn('prod'), grantable)).toBe(true);
    expect(allowed(roleId, 'eks:CreateAccessEntry', clusterArn('other'))).toBe(false);
    expect(allowed(roleId, 'eks:DeleteAccessEntry', entryArn('other'))).toBe(false);
    expect(allowed(roleId, 'eks:AssociateAccessPolicy', entryArn('other'), grantable)).toBe(false);
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
    // An extension moves the schedule in place (UpdateSchedule), in its own group only.
    expect(allowed('GrantWorkerRole', 'scheduler:UpdateSchedule', group('ExpiryScheduleGroup'))).toBe(true);
    expect(
      allowed('GrantWorkerRole', 'scheduler:UpdateSchedule', group('BreakGlassExpiryScheduleGroup')),
    ).toBe(false);
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
    // Operators too: they assume OperatorRole, whose requests still pass the `operator` rule.
    expect(writers.sort()).toEqual(['BreakGlassIntakeRole', 'BreakGlassSchedulerRole', 'OperatorRole']);
  });

  it('lets Scheduler roles be assumed only by Scheduler for this account, and only send to one queue and the audit bus', () => {
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
      // The audit bus for the expiring-soon reminders; its policy limits them to that detail type.
      expect(statements.map((s) => [s.Effect, s.Action, target(s.Resource)])).toEqual([
        ['Allow', 'sqs:SendMessage', queue],
        ['Allow', 'events:PutEvents', 'AuditBus'],
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
    // Its writes: the record of its last run (for the operator CLI's status), its pass, and the per-cluster
    // cursors of the fan-out (issue 13), and nothing else.
    const grantKey = { 'dynamodb:LeadingKeys': ['P#dev#arn:aws:iam::111122223333:role/x'] };
    const cursor = { 'dynamodb:LeadingKeys': [`RECONCILE#${ACCOUNT}#${REGION}#dev`] };
    const own = { 'dynamodb:LeadingKeys': ['RECONCILER'] };
    for (const action of ['dynamodb:PutItem', 'dynamodb:GetItem']) {
      expect(allowed('ReconcilerRole', action, ledger, grantKey), action).toBe(false);
      expect(allowed('ReconcilerRole', action, ledger, own), action).toBe(true);
      expect(allowed('ReconcilerRole', action, ledger, cursor), action).toBe(true);
    }
    expect(
      allowed('ReconcilerRole', 'dynamodb:PutItem', ledger, {
        'dynamodb:LeadingKeys': ['ROLE#111122223333#x'],
      }),
    ).toBe(false);
    for (const action of ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']) {
      expect(allowed('ReconcilerRole', action, ledger, own), action).toBe(false);
      expect(allowed('ReconcilerRole', action, ledger, cursor), action).toBe(false);
    }
  });
});

describe('sender binding: queue policies and TRUSTED_SENDERS', () => {
  /** C1 (TEAM contract; issue 9 item 1): who legitimately sends to each queue. */
  const SENDERS: Record<string, string[]> = {
    RequestQueue: [
      'ExpirySchedulerRole',
      'OperatorRole',
      'ReconcilerRole',
      'RoleLifecycleIntakeRole',
      'TicketIntakeRole',
    ],
    BreakGlassQueue: ['BreakGlassIntakeRole', 'BreakGlassSchedulerRole', 'OperatorRole'],
    RequestDeadLetterQueue: ['GrantWorkerRole'],
    BreakGlassDeadLetterQueue: ['BreakGlassWorkerRole'],
    // Issue 13: the scheduled fan-out and the tasks' continuations; its DLQ only by SQS's own redrive.
    ReconcileQueue: ['ReconcilerRole'],
    ReconcileDeadLetterQueue: [],
  };
  const STRANGER = `arn:aws:iam::${ACCOUNT}:role/PowerUser`;
  const ADMIN = `arn:aws:iam::${ACCOUNT}:root`;

  it.each(Object.keys(SENDERS))('%s has a queue policy', (queue) => {
    expect(resourceStatements(queue).length).toBeGreaterThan(0);
  });

  it.each(Object.entries(SENDERS))(
    'only its legitimate senders may send to %s, whatever IAM grants anyone else',
    (queue, senders) => {
      const may = roleIds().filter((roleId) => mayCall(roleId, 'sqs:SendMessage', queue));
      expect(may.sort()).toEqual(senders);
      // A principal whose identity policy allows everything, and the account root: an Allow in an
      // identity policy would be enough without the queue's explicit Deny.
      expect(mayCall(STRANGER, 'sqs:SendMessage', queue)).toBe(false);
      expect(mayCall(ADMIN, 'sqs:SendMessage', queue)).toBe(false);
    },
  );

  it('lets only each worker consume its queue, and only operators read, redrive or purge a DLQ', () => {
    for (const [queue, worker] of [
      ['RequestQueue', 'GrantWorkerRole'],
      ['BreakGlassQueue', 'BreakGlassWorkerRole'],
      ['ReconcileQueue', 'ReconcilerRole'],
    ] as const) {
      for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:PurgeQueue']) {
        const may = [...roleIds(), STRANGER].filter((p) => mayCall(p, action, queue));
        expect(may, `${action} on ${queue}`).toEqual(action === 'sqs:PurgeQueue' ? [] : [worker]);
      }
    }
    for (const dlq of ['RequestDeadLetterQueue', 'BreakGlassDeadLetterQueue', 'ReconcileDeadLetterQueue']) {
      // Dead reconcile tasks are read and discarded, never redriven (a fresh pass replaces them).
      const actions =
        dlq === 'ReconcileDeadLetterQueue'
          ? ['sqs:ReceiveMessage', 'sqs:DeleteMessage']
          : ['sqs:ReceiveMessage', 'sqs:StartMessageMoveTask', 'sqs:DeleteMessage'];
      for (const action of actions) {
        const may = [...roleIds(), STRANGER].filter((p) => mayCall(p, action, dlq));
        expect(may, `${action} on ${dlq}`).toEqual(['OperatorRole']);
      }
    }
  });

  it('lets an operator redrive each DLQ into its queue: a move task sends as the operator', () => {
    for (const [dlq, queue] of [
      ['RequestDeadLetterQueue', 'RequestQueue'],
      ['BreakGlassDeadLetterQueue', 'BreakGlassQueue'],
    ] as const) {
      for (const action of ['sqs:StartMessageMoveTask', 'sqs:ReceiveMessage', 'sqs:DeleteMessage']) {
        expect(mayCall('OperatorRole', action, dlq), `${action} ${dlq}`).toBe(true);
      }
      expect(mayCall('OperatorRole', 'sqs:SendMessage', queue)).toBe(true);
    }
  });

  /** TRUSTED_SENDERS as deployed: source → role logical ids, read from its Fn::Sub. */
  function trustedSenders(worker: string): Record<string, string[]> {
    const env = props<FunctionProps>(functionId(worker), 'AWS::Lambda::Function').Environment?.Variables;
    const sub = (env?.TRUSTED_SENDERS as { 'Fn::Sub'?: string } | undefined)?.['Fn::Sub'] ?? '';
    const parsed = JSON.parse(sub) as Record<string, string[]>;
    return Object.fromEntries(
      Object.entries(parsed).map(([source, ids]) => [
        source,
        ids.map((id) => {
          const m = /^\$\{(\w+)\.RoleId\}$/.exec(id);
          expect(m, `${worker} ${source}: ${id} must be a role's RoleId`).not.toBeNull();
          expect(template.Resources[m?.[1] ?? '']?.Type).toBe('AWS::IAM::Role');
          return m?.[1] ?? '';
        }),
      ]),
    );
  }

  it('binds each source to its sender roles by role id, as the routing table says', () => {
    expect(trustedSenders('grantWorker')).toEqual({
      ticket: ['TicketIntakeRole'],
      'iam-role-created': ['RoleLifecycleIntakeRole'],
      expiry: ['ExpirySchedulerRole', 'ReconcilerRole'],
      reconcile: ['ReconcilerRole'],
      operator: ['OperatorRole'],
    });
    expect(trustedSenders('breakGlassWorker')).toEqual({
      'break-glass': ['BreakGlassIntakeRole'],
      expiry: ['BreakGlassSchedulerRole'],
      operator: ['OperatorRole'],
    });
  });

  it("trusts only roles the queue policy lets send, and each worker's own DLQ writes", () => {
    for (const [worker, queue, dlqWriter] of [
      ['grantWorker', 'RequestQueue', 'GrantWorkerRole'],
      ['breakGlassWorker', 'BreakGlassQueue', 'BreakGlassWorkerRole'],
    ] as const) {
      const trusted = new Set(Object.values(trustedSenders(worker)).flat());
      expect([...trusted].sort()).toEqual(SENDERS[queue]);
      const env = props<FunctionProps>(functionId(worker), 'AWS::Lambda::Function').Environment?.Variables;
      expect(env?.DEAD_LETTER_SENDERS).toEqual({ 'Fn::Sub': `["\${${dlqWriter}.RoleId}"]` });
    }
  });
});

describe('operator role', () => {
  it('is assumable by this account with MFA by default, and its ARN is a stack output', () => {
    const role = props<RoleProps>('OperatorRole', 'AWS::IAM::Role');
    const [trust, ...more] = role.AssumeRolePolicyDocument.Statement;
    expect(more).toEqual([]);
    expect(trust?.Action).toBe('sts:AssumeRole');
    const principal = (trust?.Principal as { AWS?: { 'Fn::If': unknown[] } } | undefined)?.AWS?.['Fn::If'];
    expect(principal?.[0]).toBe('HasOperatorPrincipals');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub, not a JS template.
    expect(principal?.[2]).toEqual({ 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' });
    const conditions = (template as unknown as { Conditions: Record<string, unknown> }).Conditions;
    // Default params: no principals configured (the root), MFA required.
    expect(conditions.HasOperatorPrincipals).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
    expect(conditions.OperatorRequiresMfa).toEqual({ 'Fn::Equals': ['true', 'true'] });
    expect(JSON.stringify(trust?.Condition)).toContain('"aws:MultiFactorAuthPresent":"true"');
    const outputs = (template as unknown as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    expect(target(outputs.OperatorRoleArn?.Value)).toBe('OperatorRole');
  });

  it('may assume only the read-only operator target role, and only in accounts the policy names (fleet)', () => {
    const role = (account: string, suffix: string) =>
      `arn:aws:iam::${account}:role/eks-access-grants-test-${suffix}`;
    expect(allowed('OperatorRole', 'sts:AssumeRole', role('444455556666', 'operator-target'))).toBe(true);
    // Not an account the policy names; not the workers' writing roles there.
    expect(allowed('OperatorRole', 'sts:AssumeRole', role('999988887777', 'operator-target'))).toBe(false);
    for (const suffix of ['target', 'break-glass-target', 'reconciler-target']) {
      expect(allowed('OperatorRole', 'sts:AssumeRole', role('444455556666', suffix)), suffix).toBe(false);
    }
  });

  it('can send, read and redrive, but never write access entries, the ledger or the audit bus', () => {
    const queues = ['RequestQueue', 'BreakGlassQueue', 'RequestDeadLetterQueue', 'BreakGlassDeadLetterQueue'];
    for (const q of queues) expect(allowed('OperatorRole', 'sqs:GetQueueAttributes', arnOf(q)), q).toBe(true);
    for (const cluster of CLUSTERS) {
      expect(allowed('OperatorRole', 'eks:ListAccessEntries', clusterArn(cluster))).toBe(true);
      expect(allowed('OperatorRole', 'eks:ListAssociatedAccessPolicies', entryArn(cluster))).toBe(true);
      for (const action of EKS_WRITES) {
        expect(allowed('OperatorRole', action, entryArn(cluster)), action).toBe(false);
        expect(allowed('OperatorRole', action, clusterArn(cluster)), action).toBe(false);
      }
    }
    expect(allowed('OperatorRole', 'dynamodb:Query', arnOf('LedgerTable'))).toBe(true);
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']) {
      expect(allowed('OperatorRole', action, arnOf('LedgerTable')), action).toBe(false);
    }
    expect(allowed('OperatorRole', 'events:PutEvents', arnOf('AuditBus'))).toBe(false);
    expect(
      allowed(
        'OperatorRole',
        'logs:StartQuery',
        `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/eks-access-grants-test-grantWorker`,
      ),
    ).toBe(true);
  });
});

describe('audit bus policy', () => {
  const PUBLISHERS = [
    'BreakGlassWorkerRole',
    'GrantWorkerRole',
    'ReconcilerRole',
    'RoleLifecycleIntakeRole',
    // EventBridge Scheduler publishes the expiring-soon reminders as the workers' scheduler roles.
    'ExpirySchedulerRole',
    'BreakGlassSchedulerRole',
  ];
  const SCHEDULERS = ['ExpirySchedulerRole', 'BreakGlassSchedulerRole'];
  const reminder = {
    'events:source': ['eks-access-grants'],
    'events:detail-type': ['Access Grant Expiring Soon'],
  };
  const outcome = { 'events:source': ['eks-access-grants'], 'events:detail-type': ['Access Grant Outcome'] };
  const ours = { 'events:source': ['eks-access-grants'] };

  it("lets only this system's roles publish records with source eks-access-grants", () => {
    const denied = (principal: string, context: Context) =>
      resourceStatements('AuditBus').some(
        (s) =>
          s.Effect === 'Deny' &&
          matches(s, 'events:PutEvents', arnOf('AuditBus'), { ...context, 'aws:PrincipalArn': principal }),
      );
    for (const roleId of PUBLISHERS) expect(denied(arnOf(roleId), ours), roleId).toBe(false);
    for (const roleId of roleIds().filter((r) => !PUBLISHERS.includes(r))) {
      expect(denied(arnOf(roleId), ours), roleId).toBe(true);
    }
    const stranger = `arn:aws:iam::${ACCOUNT}:role/PowerUser`;
    expect(denied(stranger, ours)).toBe(true);
    // One forged entry among honest-looking ones is enough to refuse the call.
    expect(denied(stranger, { 'events:source': ['my.app', 'eks-access-grants'] })).toBe(true);
    // Other sources are not this policy's business.
    expect(denied(stranger, { 'events:source': ['my.app'] })).toBe(false);
  });

  it('and those roles may publish there', () => {
    const may = roleIds().filter((roleId) => mayCall(roleId, 'events:PutEvents', 'AuditBus', ours));
    // The role intake may publish once its own role allows events:PutEvents; the bus already lets it.
    expect(may.filter((r) => r !== 'RoleLifecycleIntakeRole').sort()).toEqual([
      'BreakGlassSchedulerRole',
      'BreakGlassWorkerRole',
      'ExpirySchedulerRole',
      'GrantWorkerRole',
      'ReconcilerRole',
    ]);
  });

  it('lets the scheduler roles publish expiring-soon reminders and nothing else', () => {
    for (const roleId of SCHEDULERS) {
      expect(mayCall(roleId, 'events:PutEvents', 'AuditBus', reminder), roleId).toBe(true);
      // A forged outcome record from a schedule, alone or hidden among reminders, is refused.
      expect(mayCall(roleId, 'events:PutEvents', 'AuditBus', outcome), roleId).toBe(false);
      expect(
        mayCall(roleId, 'events:PutEvents', 'AuditBus', {
          'events:source': ['eks-access-grants', 'eks-access-grants'],
          'events:detail-type': ['Access Grant Expiring Soon', 'Access Grant Outcome'],
        }),
        roleId,
      ).toBe(false);
      // Only to the audit bus.
      expect(
        allowed(roleId, 'events:PutEvents', `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/default`),
        roleId,
      ).toBe(false);
    }
    // The workers still publish outcomes.
    expect(mayCall('GrantWorkerRole', 'events:PutEvents', 'AuditBus', outcome)).toBe(true);
  });

  it('gives both workers the lead time of the expiring-soon reminders', () => {
    for (const fn of ['GrantWorkerLambdaFunction', 'BreakGlassWorkerLambdaFunction']) {
      const env = props<{ Environment: { Variables: Record<string, unknown> } }>(fn, 'AWS::Lambda::Function')
        .Environment.Variables;
      expect(env.EXPIRING_SOON_LEAD, fn).toBe('PT15M');
    }
  });
});

describe('EventBridge routing, as local mode models it', () => {
  interface RuleProps {
    EventBusName?: unknown;
    EventPattern?: unknown;
    SourceArn?: unknown;
    Targets?: Array<{ Arn: unknown }>;
  }
  // Local mode reads the same fragments (infra/local/event-routes.ts); the packaged template must hold
  // exactly those patterns and that bus policy, or local routing would differ from AWS.
  const local = loadEventRoutes({
    busName: (id) => id,
    busArn: (name) => `bus:${name}`,
    roleArn: (id) => `role:${id}`,
  });

  it('packages every rule and archive local mode routes by, with the same pattern on the same bus', () => {
    // Scheduled rules (the reconciler's rate) have no pattern and are not EventBridge routing.
    const packaged = [...ofType<RuleProps>('AWS::Events::Rule'), ...ofType<RuleProps>('AWS::Events::Archive')]
      .filter(([, p]) => p.EventPattern !== undefined || p.SourceArn !== undefined)
      .map(([, p]) => ({
        bus: p.SourceArn
          ? target(p.SourceArn)
          : typeof p.EventBusName === 'string'
            ? p.EventBusName
            : (target(p.EventBusName) ?? 'default'),
        pattern: p.EventPattern,
      }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const modelled = local.routes
      .map((r) => ({ bus: r.eventBusName.replace(/^bus:/, ''), pattern: r.pattern }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(packaged).toEqual(modelled);
    // The role intake's rule targets the role intake.
    const [, intakeRule] = ofType<RuleProps>('AWS::Events::Rule').find(([, p]) =>
      String(JSON.stringify(p.EventPattern)).includes('aws.iam'),
    ) ?? [undefined, undefined];
    expect(target(intakeRule?.Targets?.[0]?.Arn)).toBe('RoleLifecycleIntakeLambdaFunction');
  });

  it('packages the audit bus policies local mode enforces', () => {
    const packaged = ofType<{ Statement: { Condition: unknown } }>('AWS::Events::EventBusPolicy');
    // Who may publish our source, and (for the scheduler roles) the expiring-soon detail type only.
    expect(local.policies).toHaveLength(2);
    expect(packaged).toHaveLength(local.policies.length);
    for (const [id, props] of packaged) {
      const modelled = local.policies.find((p) => p.id === id);
      expect(JSON.stringify(props?.Statement.Condition), id).toBe(
        JSON.stringify(modelled?.statement.Condition).replace(/"role:(\w+)"/g, '{"Fn::GetAtt":["$1","Arn"]}'),
      );
    }
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

  it('lets the role intake audit refused grants: AUDIT_BUS_NAME and events:PutEvents on the audit bus only', () => {
    const env = props<FunctionProps>(functionId('roleLifecycleIntake'), 'AWS::Lambda::Function').Environment
      ?.Variables;
    expect(env?.AUDIT_BUS_NAME).toEqual({ Ref: 'AuditBus' });
    const puts = statementsOf('RoleLifecycleIntakeRole').filter((s) =>
      list(s.Action).includes('events:PutEvents'),
    );
    expect(puts.map((s) => [s.Effect, render(s.Resource)])).toEqual([
      ['Allow', render({ 'Fn::GetAtt': ['AuditBus', 'Arn'] })],
    ]);
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

describe('IAM compiled from the guardrail policy (the sample policy)', () => {
  const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
  const ADMIN = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy';
  const inNamespaces = (policyArn: string, ...namespaces: string[]) => ({
    'eks:policyArn': policyArn,
    'eks:accessScope': 'namespace',
    'eks:namespaces': namespaces,
  });
  const clusterWide = (policyArn: string) => ({ 'eks:policyArn': policyArn, 'eks:accessScope': 'cluster' });
  const associate = (roleId: string, cluster: string, context: Context) =>
    allowed(roleId, 'eks:AssociateAccessPolicy', entryArn(cluster), context);

  it('lets the standard worker associate only what its rules allow: View/Edit in team-* on dev, View in team-* on prod', () => {
    const w = WORKERS.grantWorker;
    expect(associate(w, 'dev', inNamespaces(VIEW, 'team-a'))).toBe(true);
    expect(associate(w, 'dev', inNamespaces(EDIT, 'team-a', 'team-b'))).toBe(true);
    expect(associate(w, 'dev', inNamespaces(VIEW, 'kube-system'))).toBe(false);
    expect(associate(w, 'dev', inNamespaces(VIEW, 'team-a', 'kube-system'))).toBe(false);
    expect(associate(w, 'dev', clusterWide(VIEW))).toBe(false);
    // The example: the standard worker may not associate AmazonEKSAdminPolicy at cluster scope.
    expect(associate(w, 'dev', clusterWide(ADMIN))).toBe(false);
    expect(associate(w, 'dev', inNamespaces(ADMIN, 'team-a'))).toBe(false);
    expect(associate(w, 'prod', inNamespaces(VIEW, 'team-a'))).toBe(true);
    expect(associate(w, 'prod', inNamespaces(EDIT, 'team-a'))).toBe(false);
    expect(associate(w, 'prod', clusterWide(CLUSTER_ADMIN))).toBe(false);
  });

  it('lets the break-glass worker associate cluster admin on prod, where its rule allows it, and nothing else', () => {
    const w = WORKERS.breakGlassWorker;
    expect(associate(w, 'prod', clusterWide(CLUSTER_ADMIN))).toBe(true);
    expect(associate(w, 'dev', clusterWide(CLUSTER_ADMIN))).toBe(false);
    expect(associate(w, 'prod', inNamespaces(VIEW, 'team-a'))).toBe(false);
    expect(associate(w, 'prod', clusterWide(ADMIN))).toBe(false);
  });

  it('lets a worker create or update an entry only with Kubernetes groups a rule allows', () => {
    const w = WORKERS.grantWorker;
    const groups = (...g: string[]) => ({ 'eks:kubernetesGroups': g });
    expect(allowed(w, 'eks:CreateAccessEntry', clusterArn('dev'), groups('team-a-readers'))).toBe(true);
    expect(allowed(w, 'eks:CreateAccessEntry', clusterArn('dev'), groups())).toBe(true);
    expect(allowed(w, 'eks:CreateAccessEntry', clusterArn('dev'), groups('team-a-readers', 'admins'))).toBe(
      false,
    );
    expect(allowed(w, 'eks:UpdateAccessEntry', entryArn('dev'), groups('cluster-admins'))).toBe(false);
    expect(allowed(w, 'eks:UpdateAccessEntry', entryArn('dev'), groups('team-a-readers'))).toBe(true);
    // No prod rule names a group: only entries without groups.
    expect(allowed(w, 'eks:CreateAccessEntry', clusterArn('prod'), groups())).toBe(true);
    expect(allowed(w, 'eks:CreateAccessEntry', clusterArn('prod'), groups('team-a-readers'))).toBe(false);
  });

  it('lets a worker disassociate only policies some rule can grant on the cluster', () => {
    const disassociate = (roleId: string, cluster: string, policyArn: string) =>
      allowed(roleId, 'eks:DisassociateAccessPolicy', entryArn(cluster), { 'eks:policyArn': policyArn });
    // The standard worker also ends break-glass grants whose expiry the reconciler re-queued.
    expect(disassociate(WORKERS.grantWorker, 'prod', CLUSTER_ADMIN)).toBe(true);
    expect(disassociate(WORKERS.grantWorker, 'dev', EDIT)).toBe(true);
    // Someone's pre-existing Admin: no rule grants it, so neither worker may remove it.
    expect(disassociate(WORKERS.grantWorker, 'dev', ADMIN)).toBe(false);
    expect(disassociate(WORKERS.breakGlassWorker, 'prod', ADMIN)).toBe(false);
  });

  it('allows every EKS write the guardrail policy allows for the sample requests, through the worker of their queue', async () => {
    const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
    const dir = new URL('../../events/requests/', import.meta.url);
    let checked = 0;
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
      const parsed = validateAccessRequest(JSON.parse(await readFile(new URL(file, dir), 'utf8')));
      if (!parsed.ok || parsed.request.action !== 'grant') continue;
      const request = parsed.request;
      if (!decide(policy, request, new Date()).allowed) continue;
      // Clusters in other accounts are reached through the target roles there (target-account test).
      if (policy.clusters[request.clusterName]?.account) continue;
      const worker = request.source === 'break-glass' ? WORKERS.breakGlassWorker : WORKERS.grantWorker;
      for (const { policyArn, accessScope } of request.accessPolicies ?? []) {
        const context: Context = {
          'eks:policyArn': policyArn,
          'eks:accessScope': accessScope.type,
          ...(accessScope.namespaces && { 'eks:namespaces': accessScope.namespaces }),
        };
        expect(associate(worker, request.clusterName, context), `${file} ${policyArn}`).toBe(true);
        checked += 1;
      }
      const groups = { 'eks:kubernetesGroups': request.kubernetesGroups ?? [] };
      expect(allowed(worker, 'eks:CreateAccessEntry', clusterArn(request.clusterName), groups), file).toBe(
        true,
      );
    }
    // dev edit and view, prod view, both break-glass samples.
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  it('never refuses in IAM what the guardrail policy allows (generated requests)', async () => {
    const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
    const name = (n: string) => `arn:aws:eks::aws:cluster-access-policy/AmazonEKS${n}Policy`;
    let allowedByPolicy = 0;
    fc.assert(
      fc.property(
        fc.record({
          source: fc.constantFrom('ticket', 'iam-role-created', 'break-glass', 'operator'),
          clusterName: fc.constantFrom('dev', 'prod'),
          policy: fc.constantFrom('View', 'View', 'Edit', 'Admin', 'ClusterAdmin'),
          cluster: fc.constantFrom(false, false, true),
          namespaces: fc.uniqueArray(
            fc.constantFrom('team-a', 'team-b', 'team-a-*', 'team-*', 'kube-system'),
            {
              minLength: 1,
              maxLength: 3,
            },
          ),
          groups: fc.uniqueArray(fc.constantFrom('team-a-readers', 'team-b-readers', 'admins'), {
            maxLength: 2,
          }),
        }),
        (g) => {
          const parsed = validateAccessRequest({
            schemaVersion: 1,
            requestId: 'gen-1',
            action: 'grant',
            source: g.source,
            clusterName: g.clusterName,
            principalArn: 'arn:aws:iam::111122223333:role/team-a-dev',
            accessPolicies: [
              {
                policyArn: name(g.policy),
                accessScope: g.cluster
                  ? { type: 'cluster' }
                  : { type: 'namespace', namespaces: g.namespaces },
              },
            ],
            ...(g.groups.length > 0 && { kubernetesGroups: g.groups }),
            duration: 'PT1H',
            requestedBy: 'alice@example.com',
            approvedBy: ['bob@example.com'],
            reason: 'generated',
            incidentId: 'INC-1',
            ticket: 'OPS-1',
          });
          if (!parsed.ok || !decide(policy, parsed.request, new Date()).allowed) return;
          allowedByPolicy += 1;
          const worker = g.source === 'break-glass' ? WORKERS.breakGlassWorker : WORKERS.grantWorker;
          const context: Context = g.cluster
            ? { 'eks:policyArn': name(g.policy), 'eks:accessScope': 'cluster' }
            : inNamespaces(name(g.policy), ...g.namespaces);
          expect(associate(worker, g.clusterName, context)).toBe(true);
          expect(
            allowed(worker, 'eks:CreateAccessEntry', clusterArn(g.clusterName), {
              'eks:kubernetesGroups': g.groups,
            }),
          ).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
    // The generator must reach the rules, or the property says nothing.
    expect(allowedByPolicy).toBeGreaterThan(25);
  });

  /**
   * The EKS condition keys as the Service Authorization Reference for Amazon EKS defines them, and the
   * actions it lists each for: a key used where IAM does not know it, or with an operator of the wrong
   * type, silently never matches.
   */
  const EKS_KEYS: Record<string, { type: 'ARN' | 'String' | 'ArrayOfString'; actions: string[] }> = {
    'eks:policyArn': { type: 'ARN', actions: ['eks:AssociateAccessPolicy', 'eks:DisassociateAccessPolicy'] },
    'eks:accessScope': {
      type: 'String',
      actions: ['eks:AssociateAccessPolicy', 'eks:DisassociateAccessPolicy'],
    },
    'eks:namespaces': {
      type: 'ArrayOfString',
      actions: ['eks:AssociateAccessPolicy', 'eks:DisassociateAccessPolicy'],
    },
    'eks:kubernetesGroups': {
      type: 'ArrayOfString',
      actions: [
        'eks:CreateAccessEntry',
        'eks:UpdateAccessEntry',
        'eks:AssociateAccessPolicy',
        'eks:DisassociateAccessPolicy',
        'eks:DeleteAccessEntry',
        'eks:DescribeAccessEntry',
      ],
    },
  };

  it('uses every EKS condition key only on actions that define it, with an operator of its type', () => {
    let checked = 0;
    for (const roleId of roleIds()) {
      for (const s of statementsOf(roleId)) {
        for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
          for (const key of Object.keys(keys).filter((k) => k.startsWith('eks:'))) {
            const known = EKS_KEYS[key];
            expect(known, `${roleId} ${s.Sid}: ${key} is not a key this test knows`).toBeDefined();
            for (const action of list(s.Action)) {
              expect(known?.actions, `${roleId} ${s.Sid}: ${key} on ${action}`).toContain(action);
            }
            const set = operator.startsWith('ForAllValues:') || operator.startsWith('ForAnyValue:');
            if (known?.type === 'ArrayOfString') expect(set, `${s.Sid} ${operator} ${key}`).toBe(true);
            else expect(set, `${s.Sid} ${operator} ${key}`).toBe(false);
            if (known?.type === 'ARN') expect(operator, `${s.Sid} ${key}`).toMatch(/^Arn/);
            else expect(operator.replace(/^For\w+:/, ''), `${s.Sid} ${key}`).toMatch(/^String/);
            checked += 1;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(5);
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

  it.each(['RequestDeadLetterQueue', 'BreakGlassDeadLetterQueue', 'ReconcileDeadLetterQueue'])(
    'alarms on any message in %s',
    (dlq) => {
      const [alarm] = alarmsOn('ApproximateNumberOfMessagesVisible', dlq);
      expect(alarm).toBeDefined();
      expect(alarm?.Threshold).toBe(0);
      expect(alarm?.ComparisonOperator).toBe('GreaterThanThreshold');
      expect(alarm?.AlarmActions.map(target)).toEqual(['AlarmTopic']);
    },
  );

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
    // Every function we bundle is in the template (so none escapes the check below)...
    const ids = functions().map(([id]) => id);
    for (const name of defaultFunctions()) expect(ids, name).toContain(functionId(name));
    // ...and every function in the template, ours or not, runs on the current runtime.
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
