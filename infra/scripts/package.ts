/**
 * `npm run package -- [--stage dev] [--region us-east-1] [--clusters a,b] [--out .serverless]`
 *
 * Packages the service offline: `osls package` (whose local plugin, infra/scripts/osls-plugin.mjs,
 * bundles and zips every function into .serverless-build/ first) writes the CloudFormation template
 * to <out>/cloudformation-template-update-stack.json. No AWS account, credentials or network.
 * Environment: POLICY_FILE, the guardrail policy to ship (default infra/policy.example.yaml).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadPolicyFile } from '../policy-file.js';
import { type ArtifactReport, DEFAULT_BUILD_DIR, formatReport, policyFileFrom, ROOT } from './build.js';

export interface PackageOptions {
  stage?: string;
  region?: string;
  /** Comma-separated cluster names; default: the clusters the guardrail policy names. */
  clusters?: string;
  /** Output directory for the template (osls --package); default `.serverless`. */
  outDir?: string;
  policyFile?: string;
  /** Capture osls output (shown only if it fails) instead of passing it through. */
  quiet?: boolean;
  /** More osls params (`--param=name=value`), e.g. lambdaTracing or otelLayerArn. */
  params?: Readonly<Record<string, string>>;
}

export interface PackageResult {
  templatePath: string;
  clusters: string;
  artifacts: ArtifactReport[];
}

export async function packageService(options: PackageOptions = {}): Promise<PackageResult> {
  const policyFile = options.policyFile ?? policyFileFrom();
  // Default: the policy's clusters in the deployment's own account (others are reached through target roles).
  const requested =
    options.clusters?.split(',') ??
    Object.entries((await loadPolicyFile(resolve(ROOT, policyFile))).clusters)
      .filter(([, cluster]) => cluster.account === undefined)
      .map(([alias]) => alias);
  const clusters = requested
    .map((name) => name.trim())
    .filter(Boolean)
    .join(',');
  const outDir = resolve(ROOT, options.outDir ?? '.serverless');
  const osls = createRequire(import.meta.url).resolve('osls/bin/serverless.js');
  const args = [
    osls,
    'package',
    '--stage',
    options.stage ?? 'dev',
    '--region',
    options.region ?? 'us-east-1',
    `--param=clusters=${clusters}`,
    ...Object.entries(options.params ?? {}).map(([name, value]) => `--param=${name}=${value}`),
    '--package',
    outDir,
  ];
  // process.execPath: the Node running this script (22), not whatever `node` is first on PATH.
  await run(process.execPath, args, offlineEnv(policyFile), options.quiet ?? false);

  const templatePath = join(outDir, 'cloudformation-template-update-stack.json');
  if (!existsSync(templatePath)) throw new Error(`osls package succeeded but wrote no ${templatePath}`);
  const manifest = JSON.parse(await readFile(join(DEFAULT_BUILD_DIR, 'manifest.json'), 'utf8')) as {
    artifacts: ArtifactReport[];
  };
  return { templatePath, clusters, artifacts: manifest.artifacts };
}

/**
 * Packaging must not depend on an account: without credentials (and with the instance metadata
 * lookup off, which would otherwise wait on the network), a config change that needs AWS at
 * package time fails here instead of quietly using whatever credentials are around.
 */
function offlineEnv(policyFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, POLICY_FILE: policyFile };
  for (const name of Object.keys(env)) {
    if (/^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|DEFAULT_PROFILE|ROLE_ARN)$/.test(name)) {
      delete env[name];
    }
  }
  const nowhere = join(ROOT, '.serverless-build', 'no-aws-config');
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: nowhere,
    AWS_SHARED_CREDENTIALS_FILE: nowhere,
  };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, quiet: boolean): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: quiet ? 'pipe' : 'inherit' });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else
        reject(
          new Error(`osls package failed (${signal ?? `exit code ${code}`})${quiet ? `:\n${output}` : ''}`),
        );
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stage: { type: 'string' },
      region: { type: 'string' },
      clusters: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const result = await packageService({
    ...(values.stage !== undefined && { stage: values.stage }),
    ...(values.region !== undefined && { region: values.region }),
    ...(values.clusters !== undefined && { clusters: values.clusters }),
    ...(values.out !== undefined && { outDir: values.out }),
  });
  console.log(
    `\nclusters: ${result.clusters}\n${formatReport(result.artifacts)}\ntemplate: ${result.templatePath}`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
