/**
 * Cold start: each function bundle against a "floor" bundle that constructs the same AWS SDK clients and
 * does nothing else, built with the same esbuild settings in the same run. Two ratios per function:
 * minified bytes, and module-init time (median of N fresh `node` processes that each import the bundle
 * once, timed with performance.now()). Processes alternate floor/function so machine noise hits both.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { BUNDLE_OPTIONS, type BundleReport, buildFunctions, ROOT } from '../infra/scripts/build.js';
import { median, quantile, round, type SummaryRow } from './lib/report.js';

export const COLD_START_TARGET = 1.15;

/** Built exactly like the functions (`assertSameSettings` double-checks against buildFunctions' output). */
const SHARED_OPTIONS: BuildOptions = { ...BUNDLE_OPTIONS, banner: { ...BUNDLE_OPTIONS.banner } };

/**
 * What each function needs in its environment to initialise, with fake values: module init reads config
 * and the policy file and builds clients; nothing is called. Lambda's own variables are set too, so
 * Powertools behaves as in Lambda, in both the floor and the function.
 */
function initEnv(name: string, dir: string): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDBENCHMARK',
    AWS_SECRET_ACCESS_KEY: 'benchmark',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
    LAMBDA_TASK_ROOT: dir,
    REQUEST_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests.fifo',
    REQUEST_QUEUE_ARN: 'arn:aws:sqs:us-east-1:123456789012:requests.fifo',
    DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq.fifo',
    LEDGER_TABLE: 'grants',
    AUDIT_BUS_NAME: 'audit',
    POLICY_PATH: join(dir, 'policy.json'),
    SCHEDULER_GROUP: 'eks-access-grants',
    SCHEDULER_ROLE_ARN: 'arn:aws:iam::123456789012:role/scheduler',
    // JSON settings a placeholder cannot stand in for (an invalid value fails the cold start).
    TRUSTED_SENDERS: JSON.stringify({
      ticket: ['AROABENCHTICKETINTAKE'],
      'iam-role-created': ['AROABENCHROLELIFECYCLE'],
      'break-glass': ['AROABENCHBREAKGLASSINTAKE'],
      expiry: ['AROABENCHEXPIRYSCHEDULER'],
    }),
    DEAD_LETTER_SENDERS: JSON.stringify(['AROABENCHGRANTWORKER']),
    RECONCILE_TASK_SENDERS: JSON.stringify(['AROABENCHRECONCILER']),
    TICKET_SECRET_PARAM: '/eks-access-grants/bench/ticket-webhook-secret',
    BREAK_GLASS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/break-glass.fifo',
    BREAK_GLASS_SECRET_PARAM: '/eks-access-grants/bench/break-glass-webhook-secret',
    // The sample policy names a cluster in another account (staging): the functions that reach EKS need the
    // target role's name at cold start (config.ts).
    TARGET_ROLE_NAME: 'eks-access-grants-bench-target',
  };
}

/** Runs in each fresh process: the time to import (= evaluate) the bundle, nothing else. */
const INIT_SCRIPT =
  'const t0 = performance.now(); await import(process.argv[1]); const ms = performance.now() - t0;' +
  'process.stdout.write(JSON.stringify({ ms, rss: process.memoryUsage().rss }));';

export interface ColdStartRow {
  name: string;
  entry: string;
  clients: string[];
  bytes: number;
  floorBytes: number;
  bytesRatio: number;
  initMs: number;
  floorInitMs: number;
  initRatio: number;
  /** Spread of the per-round ratios (function ÷ the floor measured right next to it); initRatio is their median. */
  initRatioP25: number;
  initRatioP75: number;
  /**
   * What the bundle adds over the floor, per input, largest first, from the esbuild metafiles: one row per
   * package for dependencies, one per file for the project's own code (so a module that should not be in
   * this function shows by name).
   */
  topAdditions: Array<{ input: string; bytes: number }>;
  /**
   * The same difference summed by kind, over every input (not just the top 25): so the closing note can
   * say how much of the bytes over the floor is ours and how much is a library's.
   */
  excess: ExcessBytes;
  /** Environment variables the function insisted on beyond initEnv(), given placeholder values. */
  envAdded: string[];
  error?: string;
}

export interface ExcessBytes {
  /** bytes − floorBytes. */
  total: number;
  /** The project's own modules (functions/…). */
  project: number;
  /** @aws-lambda-powertools/* and what only they pull in (@aws/lambda-invoke-store), and @middy/*. */
  powertoolsAndMiddy: number;
  /** @aws-sdk/* and @smithy/* beyond the floor: the commands and schemas of the calls made. */
  awsSdk: number;
  other: number;
}

export interface ColdStartResult {
  runs: number;
  node: string;
  target: number;
  rows: ColdStartRow[];
  attribution?: {
    function: string;
    probes: ProbeRow[];
    /** AccessRequest validators, ours and a library's, each on the floor (see CONTRACT_PROBES). */
    contractLayer?: ProbeRow[];
  };
}

/**
 * Init-time attribution: the floor plus one library, constructed as the functions construct it, measured
 * against the floor like a function is. Run for the first function only (the grant worker), and only for
 * libraries its bundle contains. Answers "what dominates" for time, which bytes alone do not.
 */
const PROBES: Array<{ name: string; pkg: string; code: string }> = [
  {
    name: 'Powertools Logger',
    pkg: '@aws-lambda-powertools/logger',
    code: "import { Logger } from '@aws-lambda-powertools/logger'; globalThis.__probe = new Logger({ serviceName: 'floor' });",
  },
  {
    name: 'Powertools Metrics',
    pkg: '@aws-lambda-powertools/metrics',
    code: "import { Metrics } from '@aws-lambda-powertools/metrics'; globalThis.__probe = new Metrics({ serviceName: 'floor', namespace: 'floor' });",
  },
  {
    name: 'Powertools Batch',
    pkg: '@aws-lambda-powertools/batch',
    code: "import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch'; globalThis.__probe = [processPartialResponse, new SqsFifoPartialProcessorAsync()];",
  },
  {
    name: 'middy',
    pkg: '@middy/core',
    code: "import middy from '@middy/core'; globalThis.__probe = middy(async () => {});",
  },
];

/**
 * The contract layer, measured the same way: the floor plus one AccessRequest validator that validates a
 * sample once at module init (as a function would on its first message). Ours (the field-spec layer in
 * functions/core/schema.ts, as functions/core/request.ts declares AccessRequest) against the same contract
 * written with valibot (bench/alternatives/access-request.valibot.ts), so the README can say which fits the
 * byte and init budget, with figures.
 */
const SAMPLE_REQUEST = JSON.stringify({
  schemaVersion: 1,
  requestId: 'bench-1',
  action: 'grant',
  source: 'ticket',
  clusterName: 'dev',
  principalArn: 'arn:aws:iam::111122223333:role/team-a-dev',
  accessPolicies: [
    {
      policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
      accessScope: { type: 'namespace', namespaces: ['team-a'] },
    },
  ],
  duration: 'PT8H',
  requestedBy: 'alice@example.com',
});
const CONTRACT_PROBES: Array<{ name: string; code: string }> = [
  {
    name: 'AccessRequest validator: field-spec layer (functions/core/schema.ts)',
    code: `import { validateAccessRequest } from './functions/core/request.ts'; globalThis.__probe = validateAccessRequest(${SAMPLE_REQUEST});`,
  },
  {
    name: 'AccessRequest validator: valibot 1.x',
    code: `import { validateWithValibot } from './bench/alternatives/access-request.valibot.ts'; globalThis.__probe = validateWithValibot(${SAMPLE_REQUEST});`,
  },
];

export interface ProbeRow {
  name: string;
  /** Floor + this library ÷ floor, median of paired ratios. */
  initRatio: number;
  /** Milliseconds it adds over the floor (median of paired differences). */
  addedMs: number;
  bytesAdded: number;
}

export async function coldStart(opts: { runs: number; log: (s: string) => void }): Promise<ColdStartResult> {
  const out = await mkdtemp(join(tmpdir(), 'eks-grants-bench-'));
  try {
    const node = nodeBinary();
    const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    opts.log(`cold start: building bundles in ${out} (node ${version})`);
    const bundles = await buildFunctions(out);
    const firstBundle = bundles[0];
    if (firstBundle) await assertSameSettings(firstBundle, out);

    // One measurement per distinct bundle: functions sharing an entry (grant and break-glass workers)
    // ship the same code.
    const distinct = new Map<string, BundleReport & { names: string[] }>();
    for (const b of bundles) {
      const seen = distinct.get(b.entry);
      if (seen) seen.names.push(b.name);
      else distinct.set(b.entry, { ...b, names: [b.name] });
    }

    const rows: ColdStartRow[] = [];
    let attribution: ColdStartResult['attribution'];
    for (const bundle of distinct.values()) {
      const meta = JSON.parse(await readFile(join(out, `${bundle.name}.meta.json`), 'utf8')) as Metafile;
      const clients = sdkClients(meta);
      const floor = await buildFloor(clients, join(out, `floor-${bundle.name}`));
      opts.log(
        `cold start: ${bundle.names.join('/')} (${bundle.bundleBytes} B) vs floor of ${clients.join(', ')} (${floor.bytes} B), ${opts.runs} runs`,
      );
      const fn = pathToFileURL(join(bundle.dir, 'index.js')).href;
      const fl = pathToFileURL(join(floor.dir, 'index.js')).href;
      const { env, added } = discoverEnv(node, fn, initEnv(bundle.name, bundle.dir));
      if (added.length > 0) {
        opts.log(`cold start: ${bundle.name} also needs ${added.join(', ')} (placeholders used)`);
      }
      const m = pairedInit(node, fl, fn, env, opts.runs);
      rows.push({
        name: bundle.names.join(' / '),
        entry: bundle.entry,
        clients,
        bytes: bundle.bundleBytes,
        floorBytes: floor.bytes,
        bytesRatio: round(bundle.bundleBytes / floor.bytes),
        initMs: round(median(m.subjectMs), 1),
        floorInitMs: round(median(m.floorMs), 1),
        // Median of the paired ratios: each pair ran back to back, so drift on a shared machine cancels.
        initRatio: round(median(m.ratios)),
        initRatioP25: round(quantile(m.ratios, 0.25)),
        initRatioP75: round(quantile(m.ratios, 0.75)),
        topAdditions: additions(meta, floor.meta),
        excess: excessBytes(meta, floor.meta, bundle.bundleBytes - floor.bytes),
        envAdded: added,
        ...(m.error !== undefined && { error: m.error }),
      });

      if (!attribution && m.error === undefined) {
        const probes: ProbeRow[] = [];
        for (const probe of PROBES.filter((p) =>
          Object.keys(meta.inputs).some((i) => i.includes(`node_modules/${p.pkg}/`)),
        )) {
          const built = await buildFloor(clients, join(out, `probe-${probes.length}`), probe.code);
          const pm = pairedInit(node, fl, pathToFileURL(join(built.dir, 'index.js')).href, env, opts.runs);
          probes.push({
            name: probe.name,
            initRatio: round(median(pm.ratios)),
            addedMs: round(median(pm.subjectMs.map((ms, i) => ms - pm.floorMs[i]!)), 1),
            bytesAdded: built.bytes - floor.bytes,
          });
          opts.log(`cold start: floor + ${probe.name}: ${probes.at(-1)?.initRatio}× init`);
        }
        const contractLayer: ProbeRow[] = [];
        for (const probe of CONTRACT_PROBES) {
          const built = await buildFloor(clients, join(out, `contract-${contractLayer.length}`), probe.code);
          const pm = pairedInit(node, fl, pathToFileURL(join(built.dir, 'index.js')).href, env, opts.runs);
          if (pm.error !== undefined) {
            opts.log(`cold start: floor + ${probe.name}: ${pm.error}`);
            continue;
          }
          contractLayer.push({
            name: probe.name,
            initRatio: round(median(pm.ratios)),
            addedMs: round(median(pm.subjectMs.map((ms, i) => ms - pm.floorMs[i]!)), 1),
            bytesAdded: built.bytes - floor.bytes,
          });
          opts.log(
            `cold start: floor + ${probe.name}: +${contractLayer.at(-1)?.bytesAdded} B, ${contractLayer.at(-1)?.initRatio}× init`,
          );
        }
        attribution = { function: bundle.names.join(' / '), probes, contractLayer };
      }
    }
    return {
      runs: opts.runs,
      node: version,
      target: COLD_START_TARGET,
      rows,
      ...(attribution && { attribution }),
    };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * `runs` pairs of fresh processes, floor and subject back to back, alternating which goes first. Pair 0
 * warms the file cache and is discarded.
 */
function pairedInit(
  node: string,
  floorUrl: string,
  subjectUrl: string,
  env: Record<string, string>,
  runs: number,
): { floorMs: number[]; subjectMs: number[]; ratios: number[]; error?: string } {
  const floorMs: number[] = [];
  const subjectMs: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i <= runs; i++) {
    let f: InitSample;
    let w: InitSample;
    if (i % 2 === 0) {
      f = initOnce(node, floorUrl, env);
      w = initOnce(node, subjectUrl, env);
    } else {
      w = initOnce(node, subjectUrl, env);
      f = initOnce(node, floorUrl, env);
    }
    const error = f.error ?? w.error;
    if (error !== undefined) return { floorMs, subjectMs, ratios, error };
    if (i === 0) continue;
    floorMs.push(f.ms);
    subjectMs.push(w.ms);
    ratios.push(w.ms / f.ms);
  }
  return { floorMs, subjectMs, ratios };
}

export function coldStartSummary(result: ColdStartResult): SummaryRow[] {
  return result.rows.flatMap((r): SummaryRow[] => {
    if (r.error) {
      return [{ benchmark: 'cold start', case: r.name, figure: r.error, target: '', status: 'error' }];
    }
    const verdict = (x: number) => (x <= result.target ? 'pass' : 'FAIL');
    return [
      {
        benchmark: 'cold start',
        case: `${r.name}: bytes ÷ floor`,
        figure: `${r.bytesRatio.toFixed(2)}× (${(r.bytes / 1024).toFixed(0)} / ${(r.floorBytes / 1024).toFixed(0)} KiB)`,
        target: `≤ ${result.target}×`,
        status: verdict(r.bytesRatio),
      },
      {
        benchmark: 'cold start',
        case: `${r.name}: bytes over the floor, by kind`,
        figure:
          `${kib(r.excess.total)} KiB: our code ${kib(r.excess.project)}, Powertools + middy ` +
          `${kib(r.excess.powertoolsAndMiddy)}, AWS SDK commands ${kib(r.excess.awsSdk)}, other ${kib(r.excess.other)}`,
        target: `${kib(r.floorBytes * (result.target - 1))} KiB at ${result.target}×`,
        status: 'info',
      },
      {
        benchmark: 'cold start',
        case: `${r.name}: init ÷ floor`,
        figure: `${r.initRatio.toFixed(2)}× (${r.initMs} / ${r.floorInitMs} ms; IQR ${r.initRatioP25.toFixed(2)}–${r.initRatioP75.toFixed(2)})`,
        target: `≤ ${result.target}×`,
        status: verdict(r.initRatio),
      },
    ];
  });
}

const kib = (bytes: number) => (bytes / 1024).toFixed(0);

interface InitSample {
  ms: number;
  error?: string;
  stderr?: string;
}

function initOnce(node: string, url: string, env: Record<string, string>): InitSample {
  // A clean environment: no NODE_OPTIONS, no compile cache, nothing from the caller's shell.
  const r = spawnSync(node, ['--input-type=module', '-e', INIT_SCRIPT, url], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) {
    const stderr = r.stderr || r.error?.message || `exit ${r.status}`;
    // Bundles are minified: skip source lines Node echoes, keep the "Name: message" line.
    const lines = stderr.split('\n').map((l) => l.trim());
    const line =
      lines.find((l) => /^[\w$]+: /.test(l) && l.length < 500) ??
      lines.find((l) => l !== '' && l.length < 500);
    return { ms: Number.NaN, error: `module init failed: ${line ?? 'no readable output'}`, stderr };
  }
  return { ms: (JSON.parse(r.stdout) as { ms: number }).ms };
}

/**
 * Functions fail their cold start, by design, on a missing required variable. Rather than keep a list
 * per function here, add each variable the function asks for with a placeholder of the right shape and
 * report which ones were needed.
 */
function discoverEnv(
  node: string,
  url: string,
  base: Record<string, string>,
): { env: Record<string, string>; added: string[] } {
  const env = { ...base };
  const added: string[] = [];
  for (let i = 0; i < 20; i++) {
    const name = /environment variable (\w+) is required/.exec(initOnce(node, url, env).stderr ?? '')?.[1];
    if (!name || name in env) break;
    env[name] = name.endsWith('_URL')
      ? `https://sqs.us-east-1.amazonaws.com/123456789012/${name.toLowerCase()}.fifo`
      : name.endsWith('_ARN')
        ? `arn:aws:sqs:us-east-1:123456789012:${name.toLowerCase()}.fifo`
        : 'placeholder';
    added.push(name);
  }
  return { env, added };
}

/** The project's Node (the `node` devDependency) when present: what `npm run bench` itself runs on. */
function nodeBinary(): string {
  const local = join(ROOT, 'node_modules', '.bin', 'node');
  return existsSync(local) ? local : process.execPath;
}

/** `@aws-sdk/client-*` packages the bundle contains, from its metafile. */
function sdkClients(meta: Metafile): string[] {
  const found = new Set<string>();
  for (const path of Object.keys(meta.inputs)) {
    const m = /node_modules\/(@aws-sdk\/client-[a-z0-9-]+)\//.exec(path);
    if (m) found.add(m[1]!);
  }
  return [...found].sort();
}

async function clientClassName(pkg: string): Promise<string> {
  const mod = (await import(pkg)) as Record<string, unknown>;
  const names = Object.keys(mod).filter(
    (k) => /^[A-Z][A-Za-z0-9]*Client$/.test(k) && typeof mod[k] === 'function',
  );
  if (names.length !== 1) throw new Error(`cannot tell the client class of ${pkg}: ${names.join(', ')}`);
  return names[0]!;
}

/**
 * Constructs each client once at module level, as every function does at cold start. Constructing is
 * needed anyway: an import that is never used is tree-shaken away.
 */
async function buildFloor(
  clients: string[],
  dir: string,
  probe = '',
): Promise<{ dir: string; bytes: number; meta: Metafile }> {
  const lines: string[] = [];
  const names: string[] = [];
  for (const [i, pkg] of clients.entries()) {
    const cls = await clientClassName(pkg);
    lines.push(`import { ${cls} as C${i} } from '${pkg}';`);
    names.push(`new C${i}({})`);
  }
  lines.push(`const clients = [${names.join(', ')}];`);
  if (probe) lines.push(probe);
  lines.push('export const handler = async () => clients.length;');
  const result = await build({
    ...SHARED_OPTIONS,
    stdin: { contents: lines.join('\n'), resolveDir: ROOT, sourcefile: 'bench-floor.js', loader: 'js' },
    outfile: join(dir, 'index.js'),
  });
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  return { dir, bytes: (await stat(join(dir, 'index.js'))).size, meta: result.metafile! };
}

async function assertSameSettings(bundle: BundleReport, out: string): Promise<void> {
  const file = join(out, 'settings-check', 'index.js');
  await build({ ...SHARED_OPTIONS, entryPoints: [bundle.entry], outfile: file });
  const mine = (await stat(file)).size;
  if (mine !== bundle.bundleBytes) {
    throw new Error(
      `bench/cold-start.ts SHARED_OPTIONS no longer match infra/scripts/build.ts: ${bundle.entry} is ` +
        `${mine} B with the copy and ${bundle.bundleBytes} B from buildFunctions. Update the copy.`,
    );
  }
}

/** Bytes in output per package (or per project source file), function minus floor, largest first. */
function additions(fn: Metafile, floor: Metafile): Array<{ input: string; bytes: number }> {
  return allAdditions(fn, floor)
    .filter((x) => x.bytes > 0)
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, 25);
}

function allAdditions(fn: Metafile, floor: Metafile): Array<{ input: string; bytes: number }> {
  const a = bytesByPackage(fn);
  const b = bytesByPackage(floor);
  const inputs = new Set([...a.keys(), ...b.keys()]);
  return [...inputs].map((input) => ({ input, bytes: (a.get(input) ?? 0) - (b.get(input) ?? 0) }));
}

function excessBytes(fn: Metafile, floor: Metafile, total: number): ExcessBytes {
  const out: ExcessBytes = { total, project: 0, powertoolsAndMiddy: 0, awsSdk: 0, other: 0 };
  for (const { input, bytes } of allAdditions(fn, floor)) {
    if (!input.includes('/') || input.startsWith('@')) {
      if (/^@aws-lambda-powertools\/|^@middy\/|^@aws\/lambda-invoke-store$/.test(input))
        out.powertoolsAndMiddy += bytes;
      else if (/^@aws-sdk\/|^@smithy\//.test(input)) out.awsSdk += bytes;
      else out.other += bytes;
    } else if (input.startsWith('functions/')) out.project += bytes;
    else out.other += bytes;
  }
  // Metafile bytes count module code only; the rest of `total` is esbuild's glue (wrappers, the banner).
  out.other += total - (out.project + out.powertoolsAndMiddy + out.awsSdk + out.other);
  return out;
}

function bytesByPackage(meta: Metafile): Map<string, number> {
  const out = new Map<string, number>();
  for (const output of Object.values(meta.outputs)) {
    for (const [path, v] of Object.entries(output.inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
      const key = m ? m[1]! : path;
      out.set(key, (out.get(key) ?? 0) + v.bytesInOutput);
    }
  }
  return out;
}
