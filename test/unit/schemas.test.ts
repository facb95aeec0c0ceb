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
    'expiring-soon.v1',
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

  const sample = async () => structuredClone((await readPolicyDocument(EXAMPLE_POLICY_PATH)) as Json) as Doc;
  type Doc = Json & { clusters: Record<string, Json & { rules: Record<string, Json>; roleMappings?: Json }> };
  const dev = (p: Doc) => p.clusters.dev as Json & { rules: Record<string, Json>; roleMappings: Json };
  const ticket = (p: Doc) => dev(p).rules.ticket as Json;
  const tag = (p: Doc) => (dev(p).roleMappings.tags as Json[])[0] as Json;
  const path = (p: Doc) => (dev(p).roleMappings.paths as Json[])[0] as Json;
  /** [what is wrong, the key to set (on the object `at` picks), its value; undefined deletes it]. */
  const edits: Array<[string, (p: Doc) => Json, string, unknown]> = [
    ['an unknown top-level key', (p) => p, 'defaults', {}],
    ['an unknown cluster key', dev, 'limits', {}],
    ['an unknown source', (p) => dev(p).rules, 'tickets', { allowedAccounts: ['111122223333'] }],
    [
      'a rule for expiry, which never grants',
      (p) => dev(p).rules,
      'expiry',
      { allowedAccounts: ['111122223333'] },
    ],
    ['an unknown rule key', ticket, 'maxDurration', 'PT1H'],
    ['an unknown approvals key', (p) => ticket(p).approvals as Json, 'quorum', 2],
    ['an unknown roleMappings key', (p) => dev(p).roleMappings, 'users', []],
    ['an unknown tag mapping key', tag, 'extra', 1],
    ['an unknown path mapping key', path, 'extra', 1],
    ['version 2', (p) => p, 'version', 2],
    ['a cluster name EKS refuses', (p) => p.clusters, '-dev', { rules: {} }],
    ['an unquoted account id', ticket, 'allowedAccounts', [111122223333]],
    ['an unknown access policy', ticket, 'allowedPolicies', ['AmazonEKSReadPolicy']],
    ['a system: group', ticket, 'allowedGroups', ['system:masters']],
    ['a scope type other than cluster or namespace', ticket, 'scopeTypes', ['region']],
    ['a negative approval count', ticket, 'approvals', { required: -1 }],
    [
      'break-glass without maxDuration',
      (p) => p.clusters.prod?.rules['break-glass'] as Json,
      'maxDuration',
      undefined,
    ],
    ['a rule without allowedAccounts', ticket, 'allowedAccounts', undefined],
    ['an upper-case level name', tag, 'levels', { View: 'AmazonEKSViewPolicy' }],
    ['an aws: tag key', tag, 'key', 'aws:eks'],
    ['the root path as a prefix', path, 'prefix', '/'],
    ['a trusted creator that is not an ARN', (p) => dev(p).roleMappings, 'trustedCreators', ['admins']],
  ];
  test.each(edits)('refuses %s, as the validator does', async (_name, at, key, value) => {
    const policy = await sample();
    if (value === undefined) delete at(policy)[key];
    else at(policy)[key] = value;
    expect(accepts(policySchema, policy)).toBe(false);
    expect(() => validatePolicy(policy)).toThrow();
  });

  test('accepts what the validator accepts beyond the sample: ARNs, defaults left out, the C6 fields', async () => {
    const policy = await sample();
    ticket(policy).allowedPolicies = ['arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy'];
    delete ticket(policy).approvals;
    dev(policy).roleMappings.trustedCreators = ['arn:aws:iam::111122223333:role/platform-*'];
    tag(policy).allowWildcardNamespaces = true;
    expect(() => validatePolicy(policy)).not.toThrow();
    expect(schemaErrors(policySchema, policy)).toEqual([]);
  });
});
