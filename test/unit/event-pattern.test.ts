// The local EventBridge's pattern matcher and resource-policy evaluator, against the behaviour the EventBridge
// and IAM user guides describe (see the headers of infra/local/event-pattern.ts and resource-policy.ts), and
// against the stack's own patterns and bus policy as infra/local/event-routes.ts reads them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePattern, EventPatternError } from '../../infra/local/event-pattern.js';
import { loadEventRoutes } from '../../infra/local/event-routes.js';
import { compileStatement, explicitDeny, ResourcePolicyError } from '../../infra/local/resource-policy.js';

const sample = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../../events/cloudtrail/${name}.json`, import.meta.url), 'utf8'));

describe('event patterns', () => {
  const cases: Array<[string, unknown, unknown, boolean]> = [
    ['an exact value', { source: ['a', 'b'] }, { source: 'b' }, true],
    ['is case-sensitive', { source: ['a'] }, { source: 'A' }, false],
    ['needs every field (AND)', { source: ['a'], 'detail-type': ['x'] }, { source: 'a' }, false],
    ['matches any element of an array value', { resources: ['r2'] }, { resources: ['r1', 'r2'] }, true],
    ['matches null only to null, not to a missing field', { detail: { v: [null] } }, { detail: {} }, false],
    ['null to null', { detail: { v: [null] } }, { detail: { v: null } }, true],
    ['a number numerically', { detail: { n: [3] } }, { detail: { n: 3.0 } }, true],
    ['prefix', { source: [{ prefix: 'aws.' }] }, { source: 'aws.iam' }, true],
    ['prefix needs the field', { source: [{ prefix: '' }] }, {}, false],
    ['anything-but a value', { source: [{ 'anything-but': 'a' }] }, { source: 'b' }, true],
    ['anything-but a list', { source: [{ 'anything-but': ['a', 'b'] }] }, { source: 'b' }, false],
    [
      'anything-but a prefix',
      { source: [{ 'anything-but': { prefix: 'aws.' } }] },
      { source: 'aws.x' },
      false,
    ],
    ['anything-but needs the field', { source: [{ 'anything-but': 'a' }] }, {}, false],
    ['exists true', { detail: { e: [{ exists: true }] } }, { detail: { e: 'x' } }, true],
    ['exists false on a missing field', { detail: { e: [{ exists: false }] } }, { detail: {} }, true],
    ['exists false under a missing object', { detail: { e: [{ exists: false }] } }, {}, true],
    ['exists false on a present field', { detail: { e: [{ exists: false }] } }, { detail: { e: '' } }, false],
    [
      'exists is for leaves: an object is not one',
      { detail: [{ exists: true }] },
      { detail: { a: 1 } },
      false,
    ],
    ['a nested object against a leaf value', { detail: { a: ['x'] } }, { detail: 'x' }, false],
  ];
  it.each(cases)('%s', (_title, pattern, event, expected) => {
    expect(compilePattern(pattern)(event)).toBe(expected);
  });

  it('refuses operators it does not model, so a template using one fails loudly', () => {
    for (const pattern of [
      { source: [{ suffix: '.iam' }] },
      { detail: { n: [{ numeric: ['>', 0] }] } },
      { source: 'aws.iam' },
      { source: [] },
      {},
    ])
      expect(() => compilePattern(pattern), JSON.stringify(pattern)).toThrow(EventPatternError);
  });
});

const names = {
  busName: (id: string) => (id === 'AuditBus' ? 'audit' : `unknown-${id}`),
  busArn: (name: string) => `arn:aws:events:us-east-1:123456789012:event-bus/${name}`,
  roleArn: (id: string) => `arn:aws:iam::123456789012:role/${id}`,
};

describe("the stack's routes, from the template fragments", () => {
  const { routes, policies } = loadEventRoutes(names);
  const route = (id: string) => {
    const r = routes.find((x) => x.id === id);
    if (!r?.pattern) throw new Error(`no route ${id}`);
    return { ...r, matches: compilePattern(r.pattern) };
  };

  it('sends successful CreateRole/TagRole/UntagRole/DeleteRole calls on the default bus to the role intake', () => {
    const intake = route('roleLifecycleIntake-eventBridge-1');
    expect(intake).toMatchObject({
      eventBusName: 'default',
      target: { kind: 'function', name: 'roleLifecycleIntake' },
    });
    for (const name of [
      'create-role-tagged',
      'create-role-untrusted',
      'tag-role',
      'untag-role',
      'delete-role',
    ])
      expect(intake.matches(sample(name)), name).toBe(true);
    // A failed IAM call carries an errorCode and names no role.
    expect(intake.matches(sample('create-role-failed'))).toBe(false);
    const other = sample('tag-role');
    expect(
      intake.matches({ ...other, detail: { ...(other.detail as object), eventName: 'AttachRolePolicy' } }),
    ).toBe(false);
  });

  it('archives every eks-access-grants event of the audit bus (the local audit log)', () => {
    const archive = route('AuditArchive');
    expect(archive).toMatchObject({ eventBusName: 'audit', target: { kind: 'archive' } });
    expect(archive.matches({ source: 'eks-access-grants', detail: {} })).toBe(true);
    expect(archive.matches({ source: 'aws.iam', detail: {} })).toBe(false);
  });

  it("denies records with source eks-access-grants to every principal but the bus policy's roles", () => {
    const [policy] = policies;
    expect(policy?.eventBusName).toBe('audit');
    const statement = compileStatement(policy?.statement ?? ({} as never));
    const deny = (principal: string, source = 'eks-access-grants') =>
      explicitDeny([statement], 'events:PutEvents', names.busArn('audit'), {
        'aws:PrincipalArn': [principal],
        'events:source': [source],
      }) !== undefined;
    for (const ours of [
      'GrantWorkerRole',
      'BreakGlassWorkerRole',
      'ReconcilerRole',
      'RoleLifecycleIntakeRole',
    ])
      expect(deny(names.roleArn(ours)), ours).toBe(false);
    for (const other of ['TicketIntakeRole', 'OperatorRole', 'BreakGlassIntakeRole'])
      expect(deny(names.roleArn(other)), other).toBe(true);
    expect(deny('arn:aws:iam::123456789012:user/ci')).toBe(true);
    // Other sources are not this policy's business.
    expect(deny('arn:aws:iam::123456789012:user/ci', 'my-app')).toBe(false);
  });
});

describe('resource-policy conditions', () => {
  const statement = (Condition: Record<string, Record<string, string | string[]>>) =>
    compileStatement({
      Effect: 'Deny',
      Principal: '*',
      Action: 'events:PutEvents',
      Resource: '*',
      Condition,
    });
  const applies = (s: ReturnType<typeof statement>, context: Record<string, string[]>) =>
    s.applies('events:PutEvents', 'arn:aws:events:us-east-1:1:event-bus/b', context);

  it('matches ARNs part by part, with wildcards, and keys case-insensitively', () => {
    const s = statement({ ArnLike: { 'aws:principalarn': 'arn:aws:iam::*:role/ci-*' } });
    expect(applies(s, { 'aws:PrincipalArn': ['arn:aws:iam::1:role/ci-a'] })).toBe(true);
    expect(applies(s, { 'aws:PrincipalArn': ['arn:aws:iam::1:user/ci-a'] })).toBe(false);
  });

  it('treats a missing key as failing positive operators and satisfying negated ones', () => {
    expect(applies(statement({ StringEquals: { k: 'v' } }), {})).toBe(false);
    expect(applies(statement({ ArnNotEquals: { k: 'arn:aws:iam::1:role/r' } }), {})).toBe(true);
    expect(applies(statement({ 'ForAnyValue:StringEquals': { k: 'v' } }), {})).toBe(false);
    expect(applies(statement({ 'ForAllValues:StringEquals': { k: 'v' } }), {})).toBe(true);
  });

  it('refuses what it does not model', () => {
    expect(() => statement({ NumericLessThan: { k: '1' } })).toThrow(ResourcePolicyError);
    expect(() =>
      compileStatement({
        Effect: 'Deny',
        Principal: { AWS: 'arn:aws:iam::1:root' },
        Action: 'x',
        Resource: '*',
      }),
    ).toThrow(ResourcePolicyError);
  });
});
