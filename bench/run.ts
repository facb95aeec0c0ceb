/**
 * `npm run bench`: runs the benchmarks, prints a summary table and writes bench/results/latest.json.
 *
 *   npm run bench                       all of them (a few minutes on 2 cores)
 *   npm run bench -- --only cold-start  a comma-separated subset: cold-start, api, throughput, scale, fleet
 *   npm run bench -- --runs 15          cold-start process pairs per bundle (default 15, at least 7)
 *   npm run bench -- --quick            smaller throughput run, for a smoke test; not for the README
 *
 * A partial run (--only) keeps the other sections of latest.json from the previous run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { arch, cpus, platform } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../infra/scripts/build.js';
import { apiEfficiency, apiEfficiencySummary } from './api-efficiency.js';
import { coldStart, coldStartSummary } from './cold-start.js';
import { fleet, fleetSummary } from './fleet.js';
import { formatTable, type SummaryRow } from './lib/report.js';
import { scale, scaleSummary } from './scale.js';
import { throughput, throughputSummary } from './throughput.js';

const ALL = ['cold-start', 'api', 'throughput', 'scale', 'fleet'] as const;
type Bench = (typeof ALL)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    runs: { type: 'string', default: '15' },
    quick: { type: 'boolean', default: false },
  },
});
const only = (values.only?.split(',').map((s) => s.trim()) ?? [...ALL]) as Bench[];
for (const name of only)
  if (!ALL.includes(name)) throw new Error(`unknown benchmark ${name}; use ${ALL.join(', ')}`);
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 7) throw new Error('--runs must be an integer of at least 7');

const RESULTS = join(ROOT, 'bench', 'results', 'latest.json');
const log = (s: string) => console.error(`· ${s}`);

const previous = await readFile(RESULTS, 'utf8')
  .then((t) => JSON.parse(t) as Record<string, unknown>)
  .catch(() => ({}) as Record<string, unknown>);
const results: Record<string, unknown> = { ...previous };
// Per section: a partial run (--only) rewrites only its own sections, each saying when and how it was made.
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const summary: SummaryRow[] = [];

if (only.includes('cold-start')) {
  const r = await coldStart({ runs, log });
  const rows = coldStartSummary(r);
  results.coldStart = { measuredAt: new Date().toISOString(), command, summary: rows, ...r };
  summary.push(...rows);
}
if (only.includes('api')) {
  const r = await apiEfficiency({ log });
  const rows = apiEfficiencySummary(r);
  results.apiEfficiency = { measuredAt: new Date().toISOString(), command, summary: rows, ...r };
  summary.push(...rows);
}
if (only.includes('throughput')) {
  const r = await throughput({ quick: values.quick, log });
  const rows = throughputSummary(r);
  results.throughput = { measuredAt: new Date().toISOString(), command, summary: rows, ...r };
  summary.push(...rows);
}
if (only.includes('scale')) {
  const r = await scale({ log });
  const rows = scaleSummary(r);
  results.scale = { measuredAt: new Date().toISOString(), command, summary: rows, ...r };
  summary.push(...rows);
}
if (only.includes('fleet')) {
  const r = await fleet({ log });
  const rows = fleetSummary(r);
  results.fleet = { measuredAt: new Date().toISOString(), command, summary: rows, ...r };
  summary.push(...rows);
}

const cpu = cpus();
results.environment = {
  node: process.version,
  platform: `${platform()} ${arch()}`,
  cpus: cpu.length,
  cpuModel: cpu[0]?.model.trim() ?? 'unknown',
};

console.log(
  `\n${formatTable(
    ['benchmark', 'case', 'figure', 'target', 'status'],
    summary.map((r) => [r.benchmark, r.case, r.figure, r.target, r.status]),
  )}\n`,
);
const ordered = Object.fromEntries(
  ['environment', 'coldStart', 'apiEfficiency', 'throughput', 'scale', 'fleet']
    .filter((k) => k in results)
    .map((k) => [k, results[k]]),
);
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(RESULTS, `${JSON.stringify(ordered, null, 2)}\n`);
// `npm test` lints every JSON file: hand the result to the project's formatter so it stays lint-clean.
const biome = join(ROOT, 'node_modules', '.bin', 'biome');
if (existsSync(biome)) spawnSync(biome, ['format', '--write', RESULTS], { cwd: ROOT, stdio: 'ignore' });
console.log(`wrote ${RESULTS.slice(ROOT.length)}`);
