// The published JSON Schemas (events/schemas/) as consumers read them: ajv, draft 2020-12, strict.
// The samples in events/ and the sample policy must pass; the policy schema must be strict (unknown keys
// refused at every level) and agree with the validator on the values a schema can express.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { validatePolicy } from '../../functions/core/policy.js';
import { validateAccessRequest } from '../../functions/core/request.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { schemas } from '../../infra/scripts/schemas.js';
import { accepts, schemaErrors } from '../helpers/ajv.js';

type Json = Record<string, unknown>;
const REQUESTS = new URL('../../events/requests/', import.meta.url);
const requestSchema = schemas['access-request.v1'] as Json;
const policySchema = schemas['guardrail-policy.v1'] as Json;

test('every published schema compiles in ajv (draft 2020-12, strict keywords and formats)', () => {
  expect(Object.keys(schemas).sort()).toEqual([
    'access-request.v1',
    'audit-record.v1',
    'guardrail-policy.v1',
  ]);
  for (const [name, schema] of Object.entries(schemas)) {
    expect((schema as Json).$schema, name).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(() => accepts(schema, {}), name).not.toThrow();
  }
});

describe('the sample requests in events/requests/', () => {
  const files = readdirSync(REQUESTS).filter((f) => f.endsWith('.json'));
  test.each(files)('%s: the schema and the validator agree', (file) => {
    const sample = JSON.parse(readFileSync(new URL(file, REQUESTS), 'utf8')) as unknown;
    const valid = validateAccessRequest(sample).ok;
    expect(valid, file).toBe(!file.startsWith('invalid-'));
    expect(schemaErrors(requestSchema, sample).length === 0, file).toBe(valid);
  });
});

describe('the guardrail policy schema', () => {
  test('accepts the sample policy, infra/policy.example.yaml', async () => {
    expect(schemaErrors(policySchema, await readPolicyDocument(EXAMPLE_POLICY_PATH))).toEqual([]);
  });

  test('the sample policy names the schema for editors on its first line', () => {
    const first = readFileSync(EXAMPLE_POLICY_PATH, 'utf8').split('\n')[0];
    expect(first).toBe('# yaml-language-server: $schema=../events/schemas/guardrail-policy.v1.schema.json');
  });

  const sample = async () => structuredClone((await readPolicyDocument(EXAMPLE_POLICY_PATH)) as Json);
  type Edit = (
    p: Json & { clusters: Record<string, Json & { rules: Record<string, Json>; roleMappings?: Json }> },
  ) => void;
  const edits: Array<[string, Edit]> = [
    ['an unknown top-level key', (p) => void (p.defaults = {})],
    ['an unknown cluster key', (p) => void (p.clusters.dev!.limits = {})],
    ['an unknown source', (p) => void (p.clusters.dev!.rules.tickets = p.clusters.dev!.rules.ticket!)],
    [
      'a rule for expiry, which never grants',
      (p) => void (p.clusters.dev!.rules.expiry = p.clusters.dev!.rules.ticket!),
    ],
    ['an unknown rule key', (p) => void (p.clusters.dev!.rules.ticket!.maxDurration = 'PT1H')],
    ['an unknown approvals key', (p) => void ((p.clusters.dev!.rules.ticket!.approvals as Json).quorum = 2)],
    ['an unknown roleMappings key', (p) => void (p.clusters.dev!.roleMappings!.users = [])],
    [
      'an unknown tag mapping key',
      (p) => void (((p.clusters.dev!.roleMappings!.tags as Json[])[0] as Json).extra = 1),
    ],
    [
      'an unknown path mapping key',
      (p) => void (((p.clusters.dev!.roleMappings!.paths as Json[])[0] as Json).extra = 1),
    ],
    ['version 2', (p) => void (p.version = 2)],
    ['a cluster name EKS refuses', (p) => void (p.clusters['-dev'] = p.clusters.dev!)],
    ['an unquoted account id', (p) => void (p.clusters.dev!.rules.ticket!.allowedAccounts = [111122223333])],
    [
      'an unknown access policy',
      (p) => void (p.clusters.dev!.rules.ticket!.allowedPolicies = ['AmazonEKSReadPolicy']),
    ],
    ['a system: group', (p) => void (p.clusters.dev!.rules.ticket!.allowedGroups = ['system:masters'])],
    [
      'a scope type other than cluster or namespace',
      (p) => void (p.clusters.dev!.rules.ticket!.scopeTypes = ['region']),
    ],
    ['a negative approval count', (p) => void (p.clusters.dev!.rules.ticket!.approvals = { required: -1 })],
    [
      'break-glass without maxDuration',
      (p) => void delete p.clusters.prod!.rules['break-glass']!.maxDuration,
    ],
    ['a rule without allowedAccounts', (p) => void delete p.clusters.dev!.rules.ticket!.allowedAccounts],
    [
      'an upper-case level name',
      (p) =>
        void (((p.clusters.dev!.roleMappings!.tags as Json[])[0] as Json).levels = {
          View: 'AmazonEKSViewPolicy',
        }),
    ],
    [
      'an aws: tag key',
      (p) => void (((p.clusters.dev!.roleMappings!.tags as Json[])[0] as Json).key = 'aws:eks'),
    ],
    [
      'the root path as a prefix',
      (p) => void (((p.clusters.dev!.roleMappings!.paths as Json[])[0] as Json).prefix = '/'),
    ],
    [
      'a trusted creator that is not an ARN',
      (p) => void (p.clusters.dev!.roleMappings!.trustedCreators = ['admins']),
    ],
  ];
  test.each(edits)('refuses %s, as the validator does', async (_name, edit) => {
    const policy = await sample();
    edit(policy as Parameters<Edit>[0]);
    expect(accepts(policySchema, policy)).toBe(false);
    expect(() => validatePolicy(policy)).toThrow();
  });

  test('accepts what the validator accepts beyond the sample: ARNs, defaults left out, the C6 fields', async () => {
    const policy = (await sample()) as Parameters<Edit>[0];
    policy.clusters.dev!.rules.ticket!.allowedPolicies = [
      'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
    ];
    delete policy.clusters.dev!.rules.ticket!.approvals;
    policy.clusters.dev!.roleMappings!.trustedCreators = ['arn:aws:iam::111122223333:role/platform-*'];
    ((policy.clusters.dev!.roleMappings!.tags as Json[])[0] as Json).allowWildcardNamespaces = true;
    expect(() => validatePolicy(policy)).not.toThrow();
    expect(schemaErrors(policySchema, policy)).toEqual([]);
  });
});
