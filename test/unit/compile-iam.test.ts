// The workers' EKS write permissions compiled from the guardrail policy (issue 9 item 7): the compiler
// itself, and the osls plugin's ${eksIam:...} variable that puts its output in the template.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GuardrailPolicy, validatePolicy } from '../../functions/core/policy.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import {
  assumeTargetRoleStatements,
  compileWorkerEksStatements,
  type IamStatement,
  policySize,
} from '../../infra/scripts/compile-iam.js';
// @ts-expect-error plain ESM without type declarations (osls loads it without tsx)
import EksAccessGrantsPlugin from '../../infra/scripts/osls-plugin.mjs';

const ARN = (name: string) => `arn:aws:eks::aws:cluster-access-policy/${name}`;
const LIKE = (name: string) => `arn:*:eks::aws:cluster-access-policy/${name}`;
const CLUSTERS = ['dev', 'prod'];

type Doc = { clusters: Record<string, { rules: Record<string, Record<string, unknown>> }> };
const sample = async () => structuredClone((await readPolicyDocument(EXAMPLE_POLICY_PATH)) as Doc);

let example: GuardrailPolicy;
beforeAll(async () => {
  example = validatePolicy(await sample());
});

/** The statements for one action on one cluster's resources. */
function on(statements: IamStatement[], action: string, cluster: string): IamStatement[] {
  return statements.filter(
    (s) =>
      s.Action === action &&
      s.Resource.some((r) => /:(cluster|access-entry)\/([^/"]+)/.exec(JSON.stringify(r))?.[2] === cluster),
  );
}
const policyArns = (s: IamStatement | undefined) => s?.Condition?.ArnLike?.['eks:policyArn'];

describe('compiled from the sample policy', () => {
  it('lets the standard worker associate View and Edit in team-* namespaces on dev, and nothing cluster-wide', () => {
    const statements = compileWorkerEksStatements(example, 'grantWorker', { clusters: CLUSTERS });
    const [associate, ...more] = on(statements, 'eks:AssociateAccessPolicy', 'dev');
    expect(more).toEqual([]);
    expect(associate?.Condition).toEqual({
      ArnLike: { 'eks:policyArn': [LIKE('AmazonEKSEditPolicy'), LIKE('AmazonEKSViewPolicy')] },
      StringEquals: { 'eks:accessScope': 'namespace' },
      'ForAllValues:StringLike': { 'eks:namespaces': ['team-*'] },
    });
    // prod's ticket rule allows View only.
    expect(on(statements, 'eks:AssociateAccessPolicy', 'prod').map(policyArns)).toEqual([
      [LIKE('AmazonEKSViewPolicy')],
    ]);
  });

  it('never lets the standard worker associate cluster admin, even where a rule of its sources names it', async () => {
    const doc = await sample();
    const prod = doc.clusters.prod;
    if (!prod) throw new Error('the sample has no prod cluster');
    prod.rules.operator = {
      allowedPolicies: ['AmazonEKSClusterAdminPolicy'],
      scopeTypes: ['cluster'],
      allowedAccounts: ['111122223333'],
    };
    const statements = compileWorkerEksStatements(validatePolicy(doc), 'grantWorker', { clusters: CLUSTERS });
    const associated = on(statements, 'eks:AssociateAccessPolicy', 'prod').flatMap(
      (s) => policyArns(s) ?? [],
    );
    expect(associated).not.toContain(LIKE('AmazonEKSClusterAdminPolicy'));
    // The break-glass worker carries operator requests too, so there it is allowed.
    const bg = compileWorkerEksStatements(validatePolicy(doc), 'breakGlassWorker', { clusters: CLUSTERS });
    expect(on(bg, 'eks:AssociateAccessPolicy', 'prod').flatMap((s) => policyArns(s) ?? [])).toContain(
      LIKE('AmazonEKSClusterAdminPolicy'),
    );
  });

  it('lets the break-glass worker associate cluster admin on prod only, at any scope', () => {
    const statements = compileWorkerEksStatements(example, 'breakGlassWorker', { clusters: CLUSTERS });
    const [associate, ...more] = on(statements, 'eks:AssociateAccessPolicy', 'prod');
    expect(more).toEqual([]);
    expect(associate?.Condition).toEqual({
      ArnLike: { 'eks:policyArn': [LIKE('AmazonEKSClusterAdminPolicy')] },
    });
    expect(on(statements, 'eks:AssociateAccessPolicy', 'dev')).toEqual([]);
    // Nothing can be granted through its queue on dev: no entry to create there either.
    expect(on(statements, 'eks:CreateAccessEntry', 'dev')).toEqual([]);
  });

  it('lets either worker disassociate what any source may grant on the cluster, and nothing else', () => {
    const standard = compileWorkerEksStatements(example, 'grantWorker', { clusters: CLUSTERS });
    // The standard worker ends break-glass grants the reconciler found overdue.
    expect(on(standard, 'eks:DisassociateAccessPolicy', 'prod').map(policyArns)).toEqual([
      [LIKE('AmazonEKSClusterAdminPolicy'), LIKE('AmazonEKSViewPolicy')],
    ]);
    expect(on(standard, 'eks:DisassociateAccessPolicy', 'dev').map(policyArns)).toEqual([
      [LIKE('AmazonEKSEditPolicy'), LIKE('AmazonEKSViewPolicy')],
    ]);
  });

  it('limits the Kubernetes groups an entry may be created or updated with to the rules allowed groups', () => {
    const statements = compileWorkerEksStatements(example, 'grantWorker', { clusters: CLUSTERS });
    for (const action of ['eks:CreateAccessEntry', 'eks:UpdateAccessEntry']) {
      expect(on(statements, action, 'dev').map((s) => s.Condition)).toEqual([
        { 'ForAllValues:StringLike': { 'eks:kubernetesGroups': ['team-*-readers'] } },
      ]);
      // No prod rule allows a group: only an entry without groups passes.
      expect(on(statements, action, 'prod').map((s) => s.Condition)).toEqual([
        { 'ForAllValues:StringLike': { 'eks:kubernetesGroups': [''] } },
      ]);
    }
  });

  it('names only the configured clusters, each once per action', () => {
    const statements = compileWorkerEksStatements(example, 'grantWorker', { clusters: ['prod'] });
    expect(JSON.stringify(statements)).not.toContain('/dev');
    expect(on(statements, 'eks:CreateAccessEntry', 'prod')).toHaveLength(1);
  });
});

describe('follows the policy file', () => {
  it('changes when the policy changes: another policy, another namespace pattern, another group', async () => {
    const before = compileWorkerEksStatements(example, 'grantWorker', { clusters: CLUSTERS });
    const doc = await sample();
    const ticket = doc.clusters.dev?.rules.ticket;
    if (!ticket) throw new Error('the sample has no dev ticket rule');
    Object.assign(ticket, {
      allowedPolicies: ['AmazonEKSViewPolicy', 'AmazonEKSEditPolicy', 'AmazonEKSAdminPolicy'],
      namespacePatterns: ['team-*', 'sandbox-*'],
      allowedGroups: ['team-*-readers', 'oncall'],
    });
    const after = compileWorkerEksStatements(validatePolicy(doc), 'grantWorker', { clusters: CLUSTERS });
    expect(after).not.toEqual(before);
    const associateDev = on(after, 'eks:AssociateAccessPolicy', 'dev');
    expect(associateDev.flatMap((s) => policyArns(s) ?? [])).toContain(LIKE('AmazonEKSAdminPolicy'));
    // The ticket rule's patterns join iam-role-created's for the policies both allow.
    expect(
      associateDev.map((s) => s.Condition?.['ForAllValues:StringLike']?.['eks:namespaces']),
    ).toContainEqual(['sandbox-*', 'team-*']);
    expect(on(after, 'eks:CreateAccessEntry', 'dev')[0]?.Condition).toEqual({
      'ForAllValues:StringLike': { 'eks:kubernetesGroups': ['oncall', 'team-*-readers'] },
    });
    // prod did not change.
    expect(on(after, 'eks:AssociateAccessPolicy', 'prod')).toEqual(
      on(before, 'eks:AssociateAccessPolicy', 'prod'),
    );
  });

  it('lets a policy allowed cluster-wide take any scope: a namespace scope is less than the cluster', async () => {
    const doc = await sample();
    const ticket = doc.clusters.dev?.rules.ticket;
    if (!ticket) throw new Error('the sample has no dev ticket rule');
    ticket.scopeTypes = ['cluster', 'namespace'];
    const statements = compileWorkerEksStatements(validatePolicy(doc), 'grantWorker', { clusters: CLUSTERS });
    const dev = on(statements, 'eks:AssociateAccessPolicy', 'dev');
    expect(dev).toHaveLength(1);
    expect(dev[0]?.Condition).toEqual({
      ArnLike: { 'eks:policyArn': [LIKE('AmazonEKSEditPolicy'), LIKE('AmazonEKSViewPolicy')] },
    });
  });

  it('adds the baseline patterns to every namespace and group condition', () => {
    const statements = compileWorkerEksStatements(example, 'grantWorker', {
      clusters: CLUSTERS,
      baselineNamespaces: ['kube-system'],
      baselineGroups: ['sre-oncall'],
    });
    expect(
      on(statements, 'eks:AssociateAccessPolicy', 'prod')[0]?.Condition?.['ForAllValues:StringLike']?.[
        'eks:namespaces'
      ],
    ).toEqual(['kube-system', 'team-*']);
    expect(on(statements, 'eks:UpdateAccessEntry', 'prod')[0]?.Condition).toEqual({
      'ForAllValues:StringLike': { 'eks:kubernetesGroups': ['sre-oncall'] },
    });
  });

  it('shares one statement between clusters with the same rules, so the role stays small', async () => {
    const doc = await sample();
    const dev = doc.clusters.dev;
    if (!dev) throw new Error('the sample has no dev cluster');
    const many = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`team-${i}`, structuredClone(dev)]),
    );
    const policy = validatePolicy({ ...doc, clusters: many });
    const statements = compileWorkerEksStatements(policy, 'grantWorker', { clusters: Object.keys(many) });
    expect(statements.filter((s) => s.Action === 'eks:AssociateAccessPolicy')).toHaveLength(1);
    expect(policySize(statements)).toBeLessThan(10_240 - 3_500);
  });
});

describe('the osls plugin variable eksIam:<worker>', () => {
  let dir: string;
  const saved = process.env.POLICY_FILE;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'eks-grants-iam-'));
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.POLICY_FILE;
    else process.env.POLICY_FILE = saved;
    await rm(dir, { recursive: true, force: true });
  });

  interface Resolver {
    resolve(arg: {
      address: string;
      resolveVariable(v: string): Promise<unknown>;
    }): Promise<{ value: unknown }>;
  }
  function resolveFor(address: string, params: Record<string, string> = {}) {
    const serverless = {
      service: {},
      serviceDir: undefined,
      classes: { Error },
    };
    const plugin = new EksAccessGrantsPlugin(serverless, {}, { log: {} }) as {
      configurationVariablesSources: { eksIam: Resolver };
    };
    const resolveVariable = async (v: string) => {
      if (v === 'self:custom.clusters') return 'dev,prod';
      if (v === 'self:custom.prefix') return 'eks-access-grants-dev';
      return params[/^param:(\w+)/.exec(v)?.[1] ?? ''] ?? '';
    };
    return plugin.configurationVariablesSources.eksIam.resolve({ address, resolveVariable });
  }

  it('compiles the POLICY_FILE the bundles ship, and follows it when it changes', async () => {
    process.env.POLICY_FILE = EXAMPLE_POLICY_PATH;
    const fromSample = (await resolveFor('grantWorker')).value;
    expect(fromSample).toEqual([
      ...compileWorkerEksStatements(example, 'grantWorker', { clusters: CLUSTERS }),
      // Fleet: its target role in the accounts the policy names (staging's), and nowhere else.
      {
        Sid: 'AssumeTargetRoles',
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Resource: [
          { 'Fn::Sub': `arn:${'$'}{AWS::Partition}:iam::444455556666:role/eks-access-grants-dev-target` },
        ],
      },
    ]);
    expect(assumeTargetRoleStatements(example, 'breakGlassWorker', 'p')[0]?.Resource).toEqual([
      { 'Fn::Sub': `arn:${'$'}{AWS::Partition}:iam::444455556666:role/p-break-glass-target` },
    ]);

    const doc = await sample();
    const prodTicket = doc.clusters.prod?.rules.ticket;
    if (!prodTicket) throw new Error('the sample has no prod ticket rule');
    prodTicket.allowedPolicies = ['AmazonEKSViewPolicy', 'AmazonEKSEditPolicy'];
    const changed = join(dir, 'policy.json');
    await writeFile(changed, JSON.stringify(doc));
    process.env.POLICY_FILE = changed;
    const fromChanged = (await resolveFor('grantWorker')).value as IamStatement[];
    expect(fromChanged).not.toEqual(fromSample);
    expect(on(fromChanged, 'eks:AssociateAccessPolicy', 'prod').flatMap((s) => policyArns(s) ?? [])).toEqual([
      LIKE('AmazonEKSEditPolicy'),
      LIKE('AmazonEKSViewPolicy'),
    ]);
  });

  it('passes the baseline params through', async () => {
    process.env.POLICY_FILE = EXAMPLE_POLICY_PATH;
    const statements = (await resolveFor('grantWorker', { iamBaselineGroups: 'sre-oncall, ops' }))
      .value as IamStatement[];
    expect(on(statements, 'eks:CreateAccessEntry', 'prod')[0]?.Condition).toEqual({
      'ForAllValues:StringLike': { 'eks:kubernetesGroups': ['ops', 'sre-oncall'] },
    });
  });

  it('refuses an unknown worker', async () => {
    await expect(resolveFor('reconciler')).rejects.toThrow(/eksIam:grantWorker or eksIam:breakGlassWorker/);
  });

  it('uses only the full ARN form the policy normalizes to', () => {
    expect(example.clusters.prod?.rules['break-glass']?.allowedPolicyArns).toEqual([
      ARN('AmazonEKSClusterAdminPolicy'),
    ]);
  });
});
