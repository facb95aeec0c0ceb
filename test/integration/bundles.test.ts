// Each function bundles only what it runs (issue 11): checked on the esbuild metafiles of the real build,
// by which project modules contribute bytes to each bundle.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildFunctions } from '../../infra/scripts/build.js';

let dir: string;
const modules = new Map<string, Set<string>>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eks-grants-bundles-'));
  for (const bundle of await buildFunctions(dir)) {
    const meta = JSON.parse(await readFile(join(dir, `${bundle.name}.meta.json`), 'utf8')) as Metafile;
    const used = new Set<string>();
    for (const output of Object.values(meta.outputs)) {
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
        // A module tree-shaken to nothing is listed with 0 bytes: it is not in the bundle.
        if (bytesInOutput > 0) used.add(input.replace(/^.*node_modules\/((?:@[^/]+\/)?[^/]+).*$/, '$1'));
      }
    }
    modules.set(bundle.name, used);
  }
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const of = (name: string) => {
  const m = modules.get(name);
  if (!m) throw new Error(`no bundle ${name}; built: ${[...modules.keys()].join(', ')}`);
  return m;
};

const JIRA = ['functions/core/jira.ts', 'functions/service/jira-payload.ts'];
const ROLE_MAPPING = ['functions/core/role-mapping.ts', 'functions/core/role-mapping-schema.ts'];
const PLANNER = ['functions/core/plan.ts', 'functions/core/desired.ts', 'functions/adapters/eks.ts'];

const carried = (name: string, files: readonly string[]) => files.filter((f) => of(name).has(f));

describe('what each bundle carries', () => {
  test.each(['grantWorker', 'breakGlassWorker'])(
    '%s carries no Jira, role-mapping or role-mapping validation code, and no intake code',
    (name) => {
      expect(carried(name, [...JIRA, ...ROLE_MAPPING, 'functions/service/ticket-intake.ts'])).toEqual([]);
      expect(of(name).has('functions/core/policy-schema.ts')).toBe(true); // it still validates its rules
    },
  );

  test.each(['ticketIntake', 'breakGlassIntake', 'roleLifecycleIntake'])('%s carries no planner', (name) => {
    expect(carried(name, PLANNER)).toEqual([]);
    expect([...of(name)].filter((i) => i.startsWith('@aws-sdk/client-eks'))).toEqual([]);
  });

  test('the break-glass intake carries no Jira code: it takes v1 bodies only', () => {
    expect(carried('breakGlassIntake', [...JIRA, ...ROLE_MAPPING])).toEqual([]);
    // Same use case as the ticket intake, so the check would see Jira if the use case imported it.
    expect(of('breakGlassIntake').has('functions/service/ticket-intake.ts')).toBe(true);
  });

  test('only the ticket intake carries Jira code', () => {
    const carrying = [...modules].filter(([name]) => carried(name, JIRA).length > 0);
    expect(carrying.map(([name]) => name)).toEqual(['ticketIntake']);
    expect(carried('ticketIntake', JIRA)).toEqual(JIRA);
  });

  test('only the role-lifecycle intake carries the role-mapping validation', () => {
    const carrying = [...modules].filter(([, m]) => m.has('functions/core/role-mapping-schema.ts'));
    expect(carrying.map(([name]) => name)).toEqual(['roleLifecycleIntake']);
  });

  test.each(['reconciler', 'reconcileTask'])('%s carries no Jira, role-mapping or intake code', (name) => {
    expect(carried(name, [...JIRA, ...ROLE_MAPPING, 'functions/service/ticket-intake.ts'])).toEqual([]);
  });

  test('the scheduled reconciler only fans out: no planner; its tasks carry the planner and the budget', () => {
    expect(carried('reconciler', PLANNER)).toEqual([]);
    expect(carried('reconcileTask', [...PLANNER, 'functions/core/token-bucket.ts'])).toEqual([
      ...PLANNER,
      'functions/core/token-bucket.ts',
    ]);
  });

  test('no bundle carries a tracing SDK (tracing is Lambda active tracing or the ADOT layer)', () => {
    for (const [name, m] of modules) {
      expect(
        [...m].filter((i) => /tracer|xray|x-ray|opentelemetry/i.test(i)),
        name,
      ).toEqual([]);
    }
  });
});
