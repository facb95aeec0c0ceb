/**
 * `npm run target-account -- [--policy infra/policy.example.yaml] [--region us-east-1] [--out infra/target-account.yml]`
 *
 * Writes the CloudFormation template of the target roles (issue 13): deployed in every account whose
 * clusters the guardrail policy names (as a StackSet across an organisation, or stack by stack), it
 * creates, per stage, the roles this stack's functions assume there. EKS has no resource-based
 * policies, so a role in the cluster's account is the only way in.
 *
 * - `eks-access-grants-<Stage>-target`, trusted only by the stage's grantWorker role;
 * - `eks-access-grants-<Stage>-break-glass-target`, trusted only by its breakGlassWorker role, the only
 *   one that may associate AmazonEKSClusterAdminPolicy;
 * - `eks-access-grants-<Stage>-reconciler-target`, trusted only by its reconciler, read-only;
 * - `eks-access-grants-<Stage>-operator-target`, trusted only by the stage's OperatorRole, read-only: the
 *   operator CLI's `access` and `plan` read a cluster of this account through it. Created only when the
 *   OperatorRoleArn parameter is set (stacks deployed before it keep updating without one).
 *
 * Each role gets the same second wall as the stack's own worker roles (compile-iam.ts, issue 9):
 * the EKS writes its worker's sources may make, compiled from the same policy file, on the policy's
 * clusters in other accounts only, with literal account and region (a StackSet instance's pseudo
 * parameters name the target account and the instance's region, not the cluster's). The template for
 * the sample policy is committed as infra/target-account.yml and a test keeps it in step with this code;
 * run the script for your own policy and deploy its output.
 *
 * IAM roles are global: deploy one instance per account (one region), or the fixed names collide.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { GuardrailPolicy } from '../../functions/core/policy.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile } from '../policy-file.js';
import {
  CLUSTER_ADMIN,
  type CompileIamOptions,
  clusterResourceArns,
  compileWorkerEksStatements,
  TARGET_ROLE_SUFFIX,
  type WorkerName,
} from './compile-iam.js';

export const TARGET_TEMPLATE_PATH = resolve(import.meta.dirname, '../target-account.yml');

export interface TargetTemplateOptions {
  /** The region of clusters the policy gives none (the deployment's); needed only then. */
  deploymentRegion?: string;
  baselineNamespaces?: readonly string[];
  baselineGroups?: readonly string[];
}

const ROLE_ARN_PATTERN = '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$';

/** The template as an object (CloudFormation JSON shape). */
export function targetAccountTemplate(
  policy: GuardrailPolicy,
  options: TargetTemplateOptions = {},
): Record<string, unknown> {
  const clusters = Object.keys(policy.clusters)
    .filter((alias) => policy.clusters[alias]?.account !== undefined)
    .sort();
  if (clusters.length === 0) {
    throw new Error('the guardrail policy names no cluster in another account: no target role is needed');
  }
  const scope: CompileIamOptions = {
    clusters,
    scope: 'target',
    ...(options.deploymentRegion !== undefined && { deploymentRegion: options.deploymentRegion }),
    ...(options.baselineNamespaces && { baselineNamespaces: options.baselineNamespaces }),
    ...(options.baselineGroups && { baselineGroups: options.baselineGroups }),
  };
  const arns = clusterResourceArns(policy, scope);
  const onClusters = [...arns.clusters, ...arns.accessEntries];
  // What `access`, `plan` and the reconciler read (adapters/eks.ts readCurrent, ListAccessEntries).
  const readEntries = {
    Sid: 'ReadAccessEntries',
    Effect: 'Allow',
    Action: ['eks:ListAccessEntries', 'eks:DescribeAccessEntry', 'eks:ListAssociatedAccessPolicies'],
    Resource: onClusters,
  };
  const trust = (parameter: string) => ({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { AWS: { Ref: parameter } }, Action: 'sts:AssumeRole' }],
  });
  const inline = (name: string, statements: unknown[]) => ({
    PolicyName: name,
    PolicyDocument: { Version: '2012-10-17', Statement: statements },
  });
  // The calls adapters/eks.ts makes that IAM cannot narrow by content (as in worker-roles.yml).
  const entryCalls = {
    Sid: 'EksAccessEntriesOnPolicyClusters',
    Effect: 'Allow',
    Action: [
      'eks:DescribeAccessEntry',
      'eks:ListAssociatedAccessPolicies',
      'eks:DeleteAccessEntry',
      'eks:TagResource',
    ],
    Resource: onClusters,
  };
  const workerRole = (worker: WorkerName, parameter: string, description: string) => {
    const writes = compileWorkerEksStatements(policy, worker, scope);
    const base =
      worker === 'grantWorker'
        ? [
            entryCalls,
            // As on the stack's own grantWorker role: never cluster admin, whatever a rule says.
            {
              Sid: 'NeverClusterAdmin',
              Effect: 'Deny',
              Action: 'eks:AssociateAccessPolicy',
              Resource: '*',
              Condition: {
                ArnLike: { 'eks:policyArn': `arn:*:eks::aws:cluster-access-policy/${CLUSTER_ADMIN}` },
              },
            },
          ]
        : [entryCalls];
    return {
      Type: 'AWS::IAM::Role',
      Properties: {
        RoleName: { 'Fn::Sub': `eks-access-grants-\${Stage}-${TARGET_ROLE_SUFFIX[worker]}` },
        Description: description,
        // The workers ask for one-hour sessions (adapters/target-clients.ts).
        MaxSessionDuration: 3600,
        AssumeRolePolicyDocument: trust(parameter),
        Policies: [
          inline('eks-access-entries', base),
          // IAM refuses an inline policy without statements: a worker whose sources may write nothing
          // in these accounts gets none.
          ...(writes.length > 0 ? [inline('eks-writes', writes)] : []),
        ],
      },
    };
  };
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description:
      'eks-access-grants target roles: let one stage of eks-access-grants manage EKS access entries of the clusters its guardrail policy names in this account',
    Parameters: {
      Stage: {
        Type: 'String',
        Default: 'dev',
        AllowedPattern: '^[A-Za-z0-9-]+$',
        Description: 'The eks-access-grants stage (osls --stage) whose functions assume these roles',
      },
      GrantWorkerRoleArn: {
        Type: 'String',
        AllowedPattern: ROLE_ARN_PATTERN,
        Description: "The stage's GrantWorkerRoleArn stack output",
      },
      BreakGlassWorkerRoleArn: {
        Type: 'String',
        AllowedPattern: ROLE_ARN_PATTERN,
        Description: "The stage's BreakGlassWorkerRoleArn stack output",
      },
      ReconcilerRoleArn: {
        Type: 'String',
        AllowedPattern: ROLE_ARN_PATTERN,
        Description: "The stage's ReconcilerRoleArn stack output",
      },
      OperatorRoleArn: {
        Type: 'String',
        Default: '',
        AllowedPattern: `^$|${ROLE_ARN_PATTERN}`,
        Description:
          "The stage's OperatorRoleArn stack output: lets the operator CLI read this account's clusters (empty: no operator role here)",
      },
    },
    Conditions: {
      HasOperatorRole: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'OperatorRoleArn' }, ''] }] },
    },
    Resources: {
      TargetRole: workerRole(
        'grantWorker',
        'GrantWorkerRoleArn',
        'eks-access-grants grantWorker (standard requests); may not grant cluster admin',
      ),
      BreakGlassTargetRole: workerRole(
        'breakGlassWorker',
        'BreakGlassWorkerRoleArn',
        'eks-access-grants breakGlassWorker; the only role here that may grant cluster admin',
      ),
      ReconcilerTargetRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: { 'Fn::Sub': `eks-access-grants-\${Stage}-${TARGET_ROLE_SUFFIX.reconciler}` },
          Description: 'eks-access-grants reconciler; reads access entries, never writes',
          MaxSessionDuration: 3600,
          AssumeRolePolicyDocument: trust('ReconcilerRoleArn'),
          Policies: [inline('read-access-entries', [readEntries])],
        },
      },
      OperatorTargetRole: {
        Type: 'AWS::IAM::Role',
        Condition: 'HasOperatorRole',
        Properties: {
          RoleName: { 'Fn::Sub': `eks-access-grants-\${Stage}-${TARGET_ROLE_SUFFIX.operator}` },
          Description:
            'eks-access-grants operator CLI (access, plan); reads access entries, never writes: changes go through the workers',
          // A role-chained session (OperatorRole, then this) lasts at most one hour anyway.
          MaxSessionDuration: 3600,
          AssumeRolePolicyDocument: trust('OperatorRoleArn'),
          Policies: [inline('read-access-entries', [readEntries])],
        },
      },
    },
    Outputs: {
      TargetRoleArn: { Value: { 'Fn::GetAtt': ['TargetRole', 'Arn'] } },
      BreakGlassTargetRoleArn: { Value: { 'Fn::GetAtt': ['BreakGlassTargetRole', 'Arn'] } },
      ReconcilerTargetRoleArn: { Value: { 'Fn::GetAtt': ['ReconcilerTargetRole', 'Arn'] } },
      OperatorTargetRoleArn: {
        Condition: 'HasOperatorRole',
        Value: { 'Fn::GetAtt': ['OperatorTargetRole', 'Arn'] },
      },
    },
  };
}

/** The template as the YAML file deployers use, with a header saying where it came from. */
export function renderTargetAccountTemplate(
  policy: GuardrailPolicy,
  policyName: string,
  options: TargetTemplateOptions = {},
): string {
  const header = [
    '# GENERATED by `npm run target-account` (infra/scripts/target-account.ts) from',
    `# ${policyName}; do not edit. Regenerate it for your guardrail policy and deploy the result.`,
    '#',
    '# The target roles of one eks-access-grants stage in an account whose clusters the policy names.',
    '# Deploy after the stage (its role ARNs are parameters, from the stage stack outputs), in one',
    '# region per account (IAM roles are global), e.g. as a service-managed StackSet:',
    '#   aws cloudformation create-stack-set --stack-set-name eks-access-grants-<stage>-targets \\',
    '#     --template-body file://infra/target-account.yml --capabilities CAPABILITY_NAMED_IAM \\',
    '#     --permission-model SERVICE_MANAGED --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false \\',
    '#     --parameters ParameterKey=Stage,ParameterValue=<stage> ParameterKey=GrantWorkerRoleArn,ParameterValue=<arn> \\',
    '#       ParameterKey=BreakGlassWorkerRoleArn,ParameterValue=<arn> ParameterKey=ReconcilerRoleArn,ParameterValue=<arn> \\',
    '#       ParameterKey=OperatorRoleArn,ParameterValue=<arn>',
    '#   aws cloudformation create-stack-instances --stack-set-name eks-access-grants-<stage>-targets \\',
    '#     --deployment-targets OrganizationalUnitIds=<ou> --regions <one region>',
  ].join('\n');
  const body = stringify(targetAccountTemplate(policy, options), {
    lineWidth: 0,
    aliasDuplicateObjects: false,
  })
    // YAML 1.1 readers (CloudFormation's among them) may read an unquoted 2012-10-17 as a date.
    .replace(/: (\d{4}-\d{2}-\d{2})$/gm, ': "$1"');
  return `${header}\n${body}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      policy: { type: 'string', default: process.env.POLICY_FILE ?? EXAMPLE_POLICY_PATH },
      region: { type: 'string' },
      out: { type: 'string', default: TARGET_TEMPLATE_PATH },
    },
  });
  const policyPath = resolve(values.policy);
  const policy = await loadPolicyFile(policyPath);
  const name = policyPath === EXAMPLE_POLICY_PATH ? 'infra/policy.example.yaml' : policyPath;
  const text = renderTargetAccountTemplate(policy, name, {
    ...(values.region !== undefined && { deploymentRegion: values.region }),
  });
  await writeFile(resolve(values.out), text);
  console.log(`wrote ${resolve(values.out)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
