import { readFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { type GuardrailPolicy, validatePolicy } from '../../functions/core/policy.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile, readPolicyDocument } from '../../infra/policy-file.js';
import {
  renderTargetAccountTemplate,
  TARGET_TEMPLATE_PATH,
  targetAccountTemplate,
} from '../../infra/scripts/target-account.js';

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface Role {
  Type: string;
  Properties: {
    RoleName: { 'Fn::Sub': string };
    AssumeRolePolicyDocument: { Statement: (Statement & { Principal: unknown })[] };
    Policies: { PolicyName: string; PolicyDocument: { Statement: Statement[] } }[];
  };
}
type Template = { Resources: Record<string, Role>; Parameters: Record<string, unknown> };

const ADMIN = 'AmazonEKSClusterAdminPolicy';
const sample = await loadPolicyFile(EXAMPLE_POLICY_PATH);
const statements = (role: Role) => role.Properties.Policies.flatMap((p) => p.PolicyDocument.Statement);
const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** The sample policy with staging also taking break-glass cluster admin. */
async function withStagingBreakGlass(): Promise<GuardrailPolicy> {
  const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
    clusters: Record<string, { rules: Record<string, unknown> }>;
  };
  const staging = doc.clusters.staging;
  if (!staging) throw new Error('no staging');
  staging.rules['break-glass'] = {
    allowedPolicies: [ADMIN],
    scopeTypes: ['cluster'],
    allowedAccounts: ['111122223333'],
    maxDuration: 'PT1H',
  };
  return validatePolicy(doc);
}

describe('infra/target-account.yml (target roles in other accounts)', () => {
  test('is the template generated from the sample policy (run `npm run target-account` after changing either)', async () => {
    const committed = await readFile(TARGET_TEMPLATE_PATH, 'utf8');
    expect(committed).toBe(renderTargetAccountTemplate(sample, 'infra/policy.example.yaml'));
    // It reads back as the template object: nothing lost in the YAML.
    expect(parse(committed)).toEqual(targetAccountTemplate(sample));
  });

  test('one role per function, each trusted only by that function role of the stage (a parameter)', () => {
    const t = targetAccountTemplate(sample) as Template;
    const sub = (suffix: string) => `eks-access-grants-${'$'}{Stage}-${suffix}`;
    const expected = {
      TargetRole: ['GrantWorkerRoleArn', sub('target')],
      BreakGlassTargetRole: ['BreakGlassWorkerRoleArn', sub('break-glass-target')],
      ReconcilerTargetRole: ['ReconcilerRoleArn', sub('reconciler-target')],
      OperatorTargetRole: ['OperatorRoleArn', sub('operator-target')],
    };
    expect(Object.keys(t.Resources).sort()).toEqual(Object.keys(expected).sort());
    for (const [id, [parameter, name]] of Object.entries(expected)) {
      const role = t.Resources[id] as Role;
      expect(role.Type).toBe('AWS::IAM::Role');
      expect(role.Properties.RoleName).toEqual({ 'Fn::Sub': name });
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        { Effect: 'Allow', Principal: { AWS: { Ref: parameter } }, Action: 'sts:AssumeRole' },
      ]);
      expect(t.Parameters[parameter as string]).toMatchObject({ Type: 'String' });
    }
  });

  test('every EKS permission names only the policy clusters of other accounts, in their own account and region', () => {
    const t = targetAccountTemplate(sample) as Template;
    for (const role of Object.values(t.Resources)) {
      for (const s of statements(role).filter((x) => x.Effect === 'Allow')) {
        for (const arn of s.Resource as { 'Fn::Sub': string }[]) {
          expect(arn['Fn::Sub']).toMatch(
            /^arn:\$\{AWS::Partition\}:eks:eu-west-1:444455556666:(cluster\/staging|access-entry\/staging\/\*)$/,
          );
        }
      }
    }
  });

  test('the compiled narrowing of issue 9: policies, namespaces and groups of staging’s rules only', () => {
    const t = targetAccountTemplate(sample) as Template;
    const target = statements(t.Resources.TargetRole as Role);
    const associate = target.filter(
      (s) => actions(s).includes('eks:AssociateAccessPolicy') && s.Effect === 'Allow',
    );
    expect(associate).toHaveLength(1);
    expect(associate[0]?.Condition).toEqual({
      ArnLike: {
        'eks:policyArn': [
          'arn:*:eks::aws:cluster-access-policy/AmazonEKSEditPolicy',
          'arn:*:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
        ],
      },
      StringEquals: { 'eks:accessScope': 'namespace' },
      'ForAllValues:StringLike': { 'eks:namespaces': ['team-*'] },
    });
    const create = target.find((s) => actions(s).includes('eks:CreateAccessEntry'));
    expect(create?.Condition).toEqual({
      'ForAllValues:StringLike': { 'eks:kubernetesGroups': ['team-*-readers'] },
    });
    // The reconciler's and the operator CLI's roles only read.
    for (const id of ['ReconcilerTargetRole', 'OperatorTargetRole']) {
      const reads = statements(t.Resources[id] as Role).flatMap(actions);
      expect(reads.sort(), id).toEqual([
        'eks:DescribeAccessEntry',
        'eks:ListAccessEntries',
        'eks:ListAssociatedAccessPolicies',
      ]);
    }
  });

  test('the operator CLI role exists only when the stage passes its OperatorRoleArn, so older instances still update', () => {
    const t = targetAccountTemplate(sample) as Template & {
      Conditions: Record<string, unknown>;
      Outputs: Record<string, { Condition?: string }>;
      Parameters: Record<string, { Default?: string; AllowedPattern?: string }>;
    };
    expect(t.Parameters.OperatorRoleArn?.Default).toBe('');
    const pattern = new RegExp(t.Parameters.OperatorRoleArn?.AllowedPattern ?? '');
    expect(pattern.test('')).toBe(true);
    expect(pattern.test('arn:aws:iam::111122223333:role/eks-access-grants-dev-OperatorRole-X')).toBe(true);
    expect(pattern.test('arn:aws:iam::111122223333:user/mallory')).toBe(false);
    expect((t.Resources.OperatorTargetRole as unknown as { Condition?: string }).Condition).toBe(
      'HasOperatorRole',
    );
    expect(t.Conditions.HasOperatorRole).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'OperatorRoleArn' }, ''] }],
    });
    expect(t.Outputs.OperatorTargetRoleArn?.Condition).toBe('HasOperatorRole');
  });

  test('cluster admin only through the break-glass target role; the standard one denies it outright', async () => {
    const t = targetAccountTemplate(await withStagingBreakGlass()) as Template;
    const mentionsAdmin = (s: Statement) => JSON.stringify(s.Condition ?? {}).includes(ADMIN);
    const allowsAdmin = (role: Role) =>
      statements(role).some(
        (s) => s.Effect === 'Allow' && actions(s).includes('eks:AssociateAccessPolicy') && mentionsAdmin(s),
      );
    expect(allowsAdmin(t.Resources.BreakGlassTargetRole as Role)).toBe(true);
    expect(allowsAdmin(t.Resources.TargetRole as Role)).toBe(false);
    expect(statements(t.Resources.TargetRole as Role)).toContainEqual(
      expect.objectContaining({
        Sid: 'NeverClusterAdmin',
        Effect: 'Deny',
        Action: 'eks:AssociateAccessPolicy',
      }),
    );
  });

  test('follows the policy: a new namespace pattern changes the compiled condition', async () => {
    const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
      clusters: Record<string, { rules: Record<string, { namespacePatterns?: string[] }> }>;
    };
    const ticket = doc.clusters.staging?.rules.ticket;
    if (!ticket) throw new Error('no staging ticket rule');
    ticket.namespacePatterns = ['team-*', 'qa-*'];
    const t = targetAccountTemplate(validatePolicy(doc)) as Template;
    const associate = statements(t.Resources.TargetRole as Role).find(
      (s) => actions(s).includes('eks:AssociateAccessPolicy') && s.Effect === 'Allow',
    );
    expect(associate?.Condition?.['ForAllValues:StringLike']).toEqual({
      'eks:namespaces': ['qa-*', 'team-*'],
    });
  });

  test('refuses a policy with no cluster in another account, and a cluster without a region unless given one', async () => {
    const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
      clusters: Record<string, Record<string, unknown>>;
    };
    const { staging, ...home } = doc.clusters;
    expect(() => targetAccountTemplate(validatePolicy({ ...doc, clusters: home }))).toThrow(
      /no cluster in another account/,
    );
    const { region: _region, ...stagingWithoutRegion } = staging ?? {};
    const noRegion = validatePolicy({ ...doc, clusters: { ...home, staging: stagingWithoutRegion } });
    expect(() => targetAccountTemplate(noRegion)).toThrow(/--region/);
    expect(JSON.stringify(targetAccountTemplate(noRegion, { deploymentRegion: 'us-east-2' }))).toContain(
      'eks:us-east-2:444455556666:cluster/staging',
    );
  });
});
