/**
 * Local osls plugin (plain ESM, because osls loads plugins with require/import, not through tsx):
 *
 * 1. Builds the function artifacts (infra/scripts/build.ts) right before osls packages, for
 *    `osls package`, `osls deploy` and `osls deploy function`, so nobody can deploy a stale or
 *    missing `.serverless-build/<fn>.zip`.
 * 2. Adds the `${eksArns:...}` variables: the `clusters` param as IAM resource ARNs. CloudFormation
 *    cannot map over a list (Fn::Join and Fn::Split take only literal delimiters) and the account id
 *    is unknown offline, so each ARN is an Fn::Sub over the pseudo parameters.
 * 3. Adds `${otel:layers}`, the opt-in OpenTelemetry layer: [] by default, [otelLayerArn] when that param
 *    is set, in which case every function also gets AWS_LAMBDA_EXEC_WRAPPER = otelExecWrapper. An exec
 *    wrapper that does not exist fails every cold start, so it is only ever set together with the layer.
 * 4. Adds `${eksIam:grantWorker}` / `${eksIam:breakGlassWorker}`: each worker's EKS write statements
 *    compiled from the guardrail policy (infra/scripts/compile-iam.ts), the same POLICY_FILE the
 *    bundles ship, so IAM is a second wall that always matches the policy the code enforces.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tsImport } from 'tsx/esm/api';

/** EKS cluster name rules (CreateCluster): 1-100 characters. */
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;

/** A layer version ARN (Lambda API reference, LayerVersionArn pattern, simplified to the aws partitions). */
const LAYER_ARN =
  /^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+$/;

export default class EksAccessGrantsPlugin {
  constructor(serverless, options, { log }) {
    this.serverless = serverless;
    this.log = log;
    const fail = (message) => new serverless.classes.Error(message, 'EKS_ACCESS_GRANTS_CONFIG');

    this.configurationVariablesSources = {
      eksArns: {
        resolve: async ({ address, resolveVariable }) => {
          const clusters = parseClusters(await resolveVariable('self:custom.clusters'), fail);
          // The policy says each alias's EKS name and region (compile-iam.ts clusterResourceArns).
          const compiler = await tsImport('./compile-iam.ts', import.meta.url);
          const arns = compiler.clusterResourceArns(await this.policy(), { clusters });
          const clusterArns = arns.clusters;
          const entryArns = arns.accessEntries;
          if (address === 'clusters') return { value: clusterArns };
          if (address === 'accessEntries') return { value: entryArns };
          if (address === 'clustersAndAccessEntries') return { value: [...clusterArns, ...entryArns] };
          throw fail(
            `\${eksArns:${address}}: use eksArns:clusters, eksArns:accessEntries or eksArns:clustersAndAccessEntries`,
          );
        },
      },
      eksIam: {
        resolve: async ({ address, resolveVariable }) => {
          const compiler = await tsImport('./compile-iam.ts', import.meta.url);
          if (!Object.hasOwn(compiler.WORKER_SOURCES, address)) {
            throw fail(
              `\${eksIam:${address}}: use eksIam:${Object.keys(compiler.WORKER_SOURCES).join(' or eksIam:')}`,
            );
          }
          const policyFile = await this.policyFile();
          const policy = await this.policy();
          const clusters = parseClusters(await resolveVariable('self:custom.clusters'), fail);
          const list = async (name) => compiler.parseList(await resolveVariable(`param:${name}, ""`));
          const statements = compiler.compileWorkerEksStatements(policy, address, {
            clusters,
            baselineNamespaces: await list('iamBaselineNamespaces'),
            baselineGroups: await list('iamBaselineGroups'),
          });
          // The role's other statements take about 3,000 characters of IAM's 10,240 for inline policies.
          const size = compiler.policySize(statements);
          if (size > compiler.INLINE_POLICY_LIMIT - 3_500) {
            throw fail(
              `the EKS permissions compiled for ${address} from ${policyFile} take ${size} characters; IAM allows ` +
                `${compiler.INLINE_POLICY_LIMIT} for all of a role's inline policies. Give clusters identical rules ` +
                'where you can (clusters with the same rules share statements), or split the stage.',
            );
          }
          // Its target role in each other account the policy names (infra/target-account.yml).
          const prefix = String((await resolveVariable('self:custom.prefix')) ?? '');
          if (!prefix) throw fail('self:custom.prefix is empty: the target role names need the stage prefix');
          return { value: [...statements, ...compiler.assumeTargetRoleStatements(policy, address, prefix)] };
        },
      },
      // The read-only target role of the reconciler, or of the operator CLI, in each other account the
      // policy names.
      targetRoles: {
        resolve: async ({ address, resolveVariable }) => {
          if (address !== 'reconciler' && address !== 'operator') {
            throw fail(`\${targetRoles:${address}}: use targetRoles:reconciler or targetRoles:operator`);
          }
          const compiler = await tsImport('./compile-iam.ts', import.meta.url);
          const prefix = await resolveVariable('self:custom.prefix');
          const statements = compiler.assumeTargetRoleStatements(await this.policy(), address, prefix);
          // An inline policy needs a statement: with no other account, one that allows nothing.
          return {
            value:
              statements.length > 0
                ? statements
                : [{ Sid: 'NoTargetAccounts', Effect: 'Deny', Action: 'sts:AssumeRole', Resource: '*' }],
          };
        },
      },
      otel: {
        resolve: async ({ address, resolveVariable }) => {
          if (address !== 'layers') throw fail(`\${otel:${address}}: use otel:layers`);
          const arn = String((await resolveVariable('param:otelLayerArn, ""')) ?? '').trim();
          if (arn === '') return { value: [] };
          if (!LAYER_ARN.test(arn)) {
            throw fail(
              `otelLayerArn must be a Lambda layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>), got ${arn}`,
            );
          }
          const wrapper = String((await resolveVariable('param:otelExecWrapper, ""')) ?? '').trim();
          if (!wrapper.startsWith('/opt/')) {
            throw fail(
              `otelExecWrapper must be a script the layer puts under /opt/, got ${wrapper || '(empty)'}`,
            );
          }
          this.otelExecWrapper = wrapper;
          return { value: [arn] };
        },
      },
    };

    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.build(serverless.service.getAllFunctions()),
      'before:package:function:package': () => this.build([options.function]),
    };
  }

  async policyFile() {
    const { ROOT, policyFileFrom } = await tsImport('./build.ts', import.meta.url);
    return resolve(this.serverless.serviceDir ?? ROOT, policyFileFrom());
  }

  /** The guardrail policy the bundles ship (POLICY_FILE), read once. */
  policy() {
    this.policyPromise ??= (async () => {
      const { loadPolicyFile } = await tsImport('../policy-file.ts', import.meta.url);
      return loadPolicyFile(await this.policyFile());
    })();
    return this.policyPromise;
  }

  /** With the OpenTelemetry layer on, its wrapper starts every function (provider-wide, as the layer is). */
  applyOpenTelemetry() {
    if (!this.otelExecWrapper) return;
    const provider = this.serverless.service.provider;
    provider.environment = { ...provider.environment, AWS_LAMBDA_EXEC_WRAPPER: this.otelExecWrapper };
  }

  async build(functions) {
    this.applyOpenTelemetry();
    const { buildArtifacts, formatReport, policyFileFrom } = await tsImport('./build.ts', import.meta.url);
    // Where serverless.yml's package.artifact paths point.
    const outDir = join(this.serverless.serviceDir, '.serverless-build');
    const policyFile = policyFileFrom();
    const artifacts = await buildArtifacts(outDir, { functions, policyFile });
    await writeFile(join(outDir, 'manifest.json'), `${JSON.stringify({ policyFile, artifacts }, null, 2)}\n`);
    this.log.notice(`Bundled with policy ${policyFile}:\n${formatReport(artifacts)}`);

    const first = artifacts[0];
    if (!first) return;
    const policy = JSON.parse(await readFile(join(first.dir, 'policy.json'), 'utf8'));
    const allowed = new Set(parseClusters(this.serverless.service.custom?.clusters, (m) => new Error(m)));
    // Clusters in other accounts are reached through target roles there, not through `clusters`.
    const uncovered = Object.entries(policy.clusters ?? {})
      .filter(([name, cluster]) => !cluster.account && !allowed.has(name))
      .map(([name]) => name);
    if (uncovered.length > 0) {
      // A warning, not an error: one policy file may serve several stages.
      this.log.warning(
        `The guardrail policy names clusters outside the \`clusters\` param (${uncovered.join(', ')}): ` +
          'the workers have no IAM permission there, so requests for them will fail with AccessDenied.',
      );
    }
  }
}

/** `a,b` (the --param form) or a YAML list → validated, de-duplicated names. */
function parseClusters(raw, fail) {
  const list = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(',') : [];
  const names = [...new Set(list.map((name) => name.trim()).filter(Boolean))];
  if (names.length === 0) {
    throw fail('Set the EKS clusters this stage manages: --param="clusters=<name>[,<name>...]"');
  }
  const bad = names.filter((name) => !CLUSTER_NAME.test(name));
  if (bad.length > 0) throw fail(`Not valid EKS cluster names in the clusters param: ${bad.join(', ')}`);
  return names;
}
