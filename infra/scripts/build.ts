/**
 * Bundles each Lambda function with esbuild into `<outDir>/<fn>/` (index.js, package.json,
 * policy.json) and zips it into `<outDir>/<fn>.zip`, the artifact serverless.yml points at.
 * Used by the osls plugin (every `osls package`/`deploy`), `npm run package` and the benchmark.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync } from 'node:zlib';
import { build, type BuildOptions as EsbuildOptions } from 'esbuild';
import { policyFileToJson } from '../policy-file.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEFAULT_BUILD_DIR = join(ROOT, '.serverless-build');
export const DEFAULT_POLICY_FILE = 'infra/policy.example.yaml';

/**
 * Function name (as in serverless.yml) → entry file. The break-glass worker is the same code as
 * the grant worker; only its queue, role and concurrency differ. Entries of functions that are
 * not written yet are listed so enabling them in serverless.yml needs no change here.
 */
export const FUNCTION_ENTRIES: Readonly<Record<string, string>> = {
  grantWorker: 'functions/grant-worker.ts',
  breakGlassWorker: 'functions/grant-worker.ts',
  ticketIntake: 'functions/ticket-intake.ts',
  breakGlassIntake: 'functions/break-glass-intake.ts',
  roleLifecycleIntake: 'functions/role-lifecycle-intake.ts',
  reconciler: 'functions/reconciler.ts',
  reconcileTask: 'functions/reconcile-task.ts',
};

/** What goes into each zip; the source map and metafile stay in the build directory. */
const SHIPPED_FILES = ['index.js', 'package.json', 'policy.json'] as const;

/**
 * How every function is bundled; the cold-start benchmark builds its floor with the same options.
 * Deliberately no `external`: @aws-sdk/* is bundled, not taken from the Lambda runtime. The runtime's SDK
 * version changes under us without notice, and a tree-shaken bundle of the few clients we use loads faster
 * than resolving the runtime's full SDK from /var/runtime. Cold starts are measured with it bundled.
 */
export const BUNDLE_OPTIONS = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node24',
  // ESM because middy and Powertools are ESM-first; package.json beside the bundle tells Node so.
  format: 'esm',
  // Prefer the ES module builds (the AWS SDK ships both): they tree-shake far better.
  mainFields: ['module', 'main'],
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  minify: true,
  treeShaking: true,
  metafile: true,
  logLevel: 'warning',
} as const satisfies EsbuildOptions;

export interface BuildOptions {
  /** Functions to build; default: every function whose entry file exists. */
  functions?: readonly string[];
  /** Guardrail policy (YAML or JSON), relative to the repository root; default POLICY_FILE or the example. */
  policyFile?: string;
}

export interface BundleReport {
  name: string;
  entry: string;
  dir: string;
  /** Minified index.js, the code Lambda loads at cold start. */
  bundleBytes: number;
  policyBytes: number;
}

export interface ArtifactReport extends BundleReport {
  zipPath: string;
  zipBytes: number;
}

export function defaultFunctions(): string[] {
  return Object.keys(FUNCTION_ENTRIES).filter((name) => existsSync(join(ROOT, entryOf(name))));
}

export function policyFileFrom(env: Record<string, string | undefined> = process.env): string {
  return env.POLICY_FILE?.trim() || DEFAULT_POLICY_FILE;
}

/** Bundles the functions into `<outDir>/<fn>/` and returns their sizes. */
export async function buildFunctions(outDir: string, options: BuildOptions = {}): Promise<BundleReport[]> {
  const names = options.functions ?? defaultFunctions();
  const policyFile = resolve(ROOT, options.policyFile ?? policyFileFrom());
  // Validated here, so a bad policy fails the build instead of every cold start.
  const policyJson = await policyFileToJson(policyFile);
  const reports: BundleReport[] = [];
  for (const name of names) {
    const entry = entryOf(name);
    if (!existsSync(join(ROOT, entry))) {
      throw new Error(`function ${name}: entry ${entry} does not exist; write it or disable the function`);
    }
    const dir = join(outDir, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const result = await build({
      ...BUNDLE_OPTIONS,
      entryPoints: [entry],
      outfile: join(dir, 'index.js'),
      // Not shipped: loading a map costs cold-start time and --enable-source-maps slows every stack
      // trace. Kept here to symbolicate a production trace from the same commit.
      sourcemap: 'external',
    });
    await writeFile(join(outDir, `${name}.meta.json`), JSON.stringify(result.metafile));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await writeFile(join(dir, 'policy.json'), policyJson);
    reports.push({
      name,
      entry,
      dir,
      bundleBytes: (await stat(join(dir, 'index.js'))).size,
      policyBytes: Buffer.byteLength(policyJson),
    });
  }
  return reports;
}

/** Builds and zips: `<outDir>/<fn>.zip` for each function. */
export async function buildArtifacts(
  outDir: string = DEFAULT_BUILD_DIR,
  options: BuildOptions = {},
): Promise<ArtifactReport[]> {
  const bundles = await buildFunctions(outDir, options);
  const artifacts: ArtifactReport[] = [];
  for (const bundle of bundles) {
    const zipPath = join(outDir, `${bundle.name}.zip`);
    const files = await Promise.all(
      SHIPPED_FILES.map(async (name) => ({ name, data: await readFile(join(bundle.dir, name)) })),
    );
    const zip = zipFiles(files);
    await writeFile(zipPath, zip);
    artifacts.push({ ...bundle, zipPath, zipBytes: zip.length });
  }
  return artifacts;
}

export function formatReport(reports: readonly (BundleReport | ArtifactReport)[]): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return reports
    .map(
      (r) =>
        `${r.name.padEnd(20)} index.js ${kb(r.bundleBytes).padStart(11)}` +
        ('zipBytes' in r ? `   zip ${kb(r.zipBytes).padStart(11)}` : ''),
    )
    .join('\n');
}

function entryOf(name: string): string {
  const entry = FUNCTION_ENTRIES[name];
  if (!entry) {
    throw new Error(`function ${name} has no entry in FUNCTION_ENTRIES (infra/scripts/build.ts)`);
  }
  return entry;
}

/**
 * A minimal deflate zip writer. Fixed timestamps and file order make the artifact a function of
 * its content, so an unchanged function keeps its code hash; mode 0644 because Lambda cannot read
 * files that are not world-readable (a classic failure of zips made on CI runners with umask 077).
 */
export function zipFiles(files: readonly { name: string; data: Buffer }[]): Buffer {
  const DOS_TIME = 0;
  const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01, the earliest a zip can say
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const file of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const name = Buffer.from(file.name, 'utf8');
    const compressed = deflateRawSync(file.data, { level: 9 });
    const crc = crc32(file.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: deflate
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(file.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the external attributes are a mode
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(file.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // regular file, rw-r--r--
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, compressed);
    centrals.push(central, name);
    offset += local.length + name.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}
