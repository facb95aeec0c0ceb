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

describe('what each bundle carries', () => {
  test.each(['grantWorker', 'breakGlassWorker'])(
    '%s carries no Jira, role-mapping or role-mapping validation code, and no tracing SDK',
    (name) => {
      const m = of(name);
      for (const file of [
        'functions/core/jira.ts',
        'functions/core/role-mapping.ts',
        'functions/core/role-mapping-schema.ts',
      ]) {
        expect(m.has(file), file).toBe(false);
      }
      expect(m.has('functions/core/policy-schema.ts')).toBe(true); // it still validates its rules
      expect([...m].filter((i) => /tracer|xray|opentelemetry/i.test(i))).toEqual([]);
    },
  );

  test.each(['ticketIntake', 'breakGlassIntake', 'roleLifecycleIntake'])('%s carries no planner', (name) => {
    const m = of(name);
    for (const file of ['functions/core/plan.ts', 'functions/core/desired.ts', 'functions/adapters/eks.ts']) {
      expect(m.has(file), file).toBe(false);
    }
    expect([...m].filter((i) => i.startsWith('@aws-sdk/client-eks'))).toEqual([]);
  });

  test('only the role-lifecycle intake carries the role-mapping validation', () => {
    const carrying = [...modules].filter(([, m]) => m.has('functions/core/role-mapping-schema.ts'));
    expect(carrying.map(([name]) => name)).toEqual(['roleLifecycleIntake']);
  });
});
