import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../functions/core/errors.js';
import {
  ALREADY_EXPIRED,
  type Decision,
  decide,
  globMatches,
  POLICY_DENIED,
  patternCovers,
  validatePolicy,
} from '../../functions/core/policy.js';
import { validateRulesPolicy } from '../../functions/core/policy-schema.js';
import type { AccessRequest, PolicyAssociation } from '../../functions/core/types.js';
import {
  EXAMPLE_POLICY_PATH,
  loadPolicyFile,
  parsePolicyDocument,
  policyFileToJson,
  readPolicyDocument,
} from '../../infra/policy-file.js';

const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
const NOW = new Date('2025-06-01T12:00:00.000Z');
const ROLE = 'arn:aws:iam::111122223333:role/team-a/dev-alice';

const arn = (name: string) => `arn:aws:eks::aws:cluster-access-policy/${name}`;
const inNamespaces = (name: string, ...namespaces: string[]): PolicyAssociation => ({
  policyArn: arn(name),
  accessScope: { type: 'namespace', namespaces },
});
const clusterWide = (name: string): PolicyAssociation => ({
  policyArn: arn(name),
  accessScope: { type: 'cluster' },
});

/** A dev ticket grant of view on team-a; each test overrides what it is about. */
function request(overrides: Partial<AccessRequest> = {}): AccessRequest {
  return {
    schemaVersion: 1,
    requestId: 'req-1',
    action: 'grant',
    source: 'ticket',
    clusterName: 'dev',
    principalArn: ROLE,
    accessPolicies: [inNamespaces('AmazonEKSViewPolicy', 'team-a')],
    requestedBy: 'alice@example.com',
    ...overrides,
  };
}

/** A prod ticket that passes every prod ticket check. */
const prodTicket = (overrides: Partial<AccessRequest> = {}) =>
  request({ clusterName: 'prod', duration: 'PT4H', approvedBy: ['bob@example.com'], ...overrides });

/** A prod break-glass that passes every check. */
const breakGlass = (overrides: Partial<AccessRequest> = {}) =>
  request({
    clusterName: 'prod',
    source: 'break-glass',
    accessPolicies: [clusterWide('AmazonEKSClusterAdminPolicy')],
    duration: 'PT1H',
    incidentId: 'INC-42',
    ...overrides,
  });

function denial(decision: Decision): { code: string; message: string } {
  if (decision.allowed) throw new Error(`expected a denial, got ${JSON.stringify(decision)}`);
  return decision.reason;
}

function validationError(raw: unknown): string {
  try {
    validatePolicy(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected validatePolicy to throw');
}

/** A minimal valid raw policy, fresh per call so tests can break one thing. */
function rawPolicy(): {
  version: unknown;
  clusters: Record<string, { rules: Record<string, Record<string, unknown>> }>;
} {
  return {
    version: 1,
    clusters: {
      prod: {
        rules: {
          ticket: {
            allowedPolicies: ['AmazonEKSViewPolicy'],
            scopeTypes: ['namespace'],
            namespacePatterns: ['team-*'],
            allowedAccounts: ['111122223333'],
            maxDuration: 'PT8H',
          },
        },
      },
    },
  };
}

describe('the sample policy file', () => {
  test('validates and normalizes short policy names to ARNs and durations to ms', () => {
    const prodTicketRule = policy.clusters.prod?.rules.ticket;
    expect(prodTicketRule).toEqual({
      allowedPolicyArns: [arn('AmazonEKSViewPolicy')],
      scopeTypes: ['namespace'],
      namespacePatterns: ['team-*'],
      allowedAccounts: ['111122223333'],
      allowedGroups: [],
      allowedUsernames: [],
      maxDuration: 'PT8H',
      maxDurationMs: 8 * 3600_000,
      requireDuration: true,
      approvals: { required: 1, allowSelfApproval: false },
      requireIncidentId: false,
    });
    expect(policy.clusters.prod?.rules['break-glass']?.maxDurationMs).toBe(3600_000);
    expect(policy.clusters.dev?.rules.ticket?.allowedGroups).toEqual(['team-*-readers']);
    expect(Object.keys(policy.clusters.dev?.rules ?? {})).toEqual(['ticket', 'iam-role-created']);
  });

  test('is deeply frozen so no caller can loosen it at run time', () => {
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.clusters.dev?.rules.ticket?.allowedAccounts)).toBe(true);
  });

  test('packages to JSON that validates to the same policy', async () => {
    const json = await policyFileToJson(EXAMPLE_POLICY_PATH);
    expect(validatePolicy(JSON.parse(json))).toEqual(policy);
  });
});

describe('decide: denials (deny by default)', () => {
  test('denies a cluster that is not in the policy', () => {
    const reason = denial(decide(policy, request({ clusterName: 'qa' }), NOW));
    expect(reason.code).toBe(POLICY_DENIED);
    expect(reason.message).toBe('clusters.qa: cluster qa is not in the guardrail policy (deny by default)');
  });

  test('denies a cluster named like an Object.prototype property', () => {
    expect(denial(decide(policy, request({ clusterName: 'constructor' }), NOW)).message).toMatch(
      /^clusters\.constructor: /,
    );
  });

  test('denies a source with no rule on the cluster', () => {
    const reason = denial(decide(policy, breakGlass({ clusterName: 'dev' }), NOW));
    expect(reason.code).toBe(POLICY_DENIED);
    expect(reason.message).toBe(
      'clusters.dev.rules.break-glass: no rule for source break-glass on cluster dev (deny by default)',
    );
  });

  test('denies a principal from an account the rule does not list', () => {
    const reason = denial(decide(policy, request({ principalArn: 'arn:aws:iam::444455556666:role/x' }), NOW));
    expect(reason.message).toBe(
      'clusters.dev.rules.ticket.allowedAccounts: principal account 444455556666 is not allowed; allowed: 111122223333',
    );
  });

  test('denies a policy the rule does not allow, listing the allowed ones', () => {
    const edit = prodTicket({ accessPolicies: [inNamespaces('AmazonEKSEditPolicy', 'team-a')] });
    expect(denial(decide(policy, edit, NOW)).message).toBe(
      `clusters.prod.rules.ticket.allowedPolicies: ${arn('AmazonEKSEditPolicy')} is not allowed; allowed: AmazonEKSViewPolicy`,
    );
  });

  test('denies cluster scope where the rule allows only namespace scope', () => {
    const wide = request({ accessPolicies: [clusterWide('AmazonEKSViewPolicy')] });
    expect(denial(decide(policy, wide, NOW)).message).toBe(
      'clusters.dev.rules.ticket.scopeTypes: AmazonEKSViewPolicy at cluster scope is not allowed; allowed scope types: namespace',
    );
  });

  test('denies a namespace that matches no pattern, even when the others match', () => {
    const mixed = request({ accessPolicies: [inNamespaces('AmazonEKSViewPolicy', 'team-a', 'kube-system')] });
    expect(denial(decide(policy, mixed, NOW)).message).toBe(
      'clusters.dev.rules.ticket.namespacePatterns: namespace kube-system matches none of team-*',
    );
  });

  test('denies a namespace prefix the patterns do not cover', () => {
    const prefix = request({ accessPolicies: [inNamespaces('AmazonEKSViewPolicy', 'te*')] });
    expect(denial(decide(policy, prefix, NOW)).message).toMatch(
      /^clusters\.dev\.rules\.ticket\.namespacePatterns: namespace prefix te\* is not covered by team-\*/,
    );
  });

  test('denies a kubernetes group the rule does not allow', () => {
    const group = request({ kubernetesGroups: ['team-a-readers', 'team-a-admins'] });
    expect(denial(decide(policy, group, NOW)).message).toBe(
      'clusters.dev.rules.ticket.allowedGroups: group team-a-admins is not allowed; allowed: team-*-readers',
    );
  });

  test('denies any group where the rule lists none', () => {
    const group = prodTicket({ kubernetesGroups: ['team-a-readers'] });
    expect(denial(decide(policy, group, NOW)).message).toBe(
      'clusters.prod.rules.ticket.allowedGroups: group team-a-readers is not allowed; allowed: (none)',
    );
  });

  test('denies a custom username unless the rule allows it', () => {
    expect(denial(decide(policy, request({ username: 'admin' }), NOW)).message).toBe(
      'clusters.dev.rules.ticket.allowedUsernames: username admin is not allowed; allowed: (none)',
    );
  });

  test('denies a prod ticket longer than 8 hours', () => {
    expect(denial(decide(policy, prodTicket({ duration: 'PT9H' }), NOW)).message).toBe(
      'clusters.prod.rules.ticket.maxDuration: duration PT9H exceeds the maximum PT8H',
    );
  });

  test('denies a prod ticket whose expiresAt is more than 8 hours away', () => {
    const late = prodTicket({ duration: undefined, expiresAt: '2025-06-01T20:00:01Z' });
    expect(denial(decide(policy, late, NOW)).message).toBe(
      'clusters.prod.rules.ticket.maxDuration: expiresAt 2025-06-01T20:00:01Z (PT8H1S from now) exceeds the maximum PT8H',
    );
  });

  test('denies a prod ticket without a duration', () => {
    expect(denial(decide(policy, prodTicket({ duration: undefined }), NOW)).message).toBe(
      'clusters.prod.rules.ticket.requireDuration: a duration or expiresAt is required',
    );
  });

  test('denies a permanent grant under a rule with maxDuration even without requireDuration', () => {
    const timeBoxed = validatePolicy(rawPolicy());
    const permanent = prodTicket({ duration: undefined, approvedBy: undefined });
    expect(denial(decide(timeBoxed, permanent, NOW)).message).toBe(
      'clusters.prod.rules.ticket.maxDuration: a permanent grant is not allowed; ask for at most PT8H',
    );
  });

  test('denies a prod ticket approved only by its requester', () => {
    const selfApproved = prodTicket({ approvedBy: ['alice@example.com'] });
    expect(denial(decide(policy, selfApproved, NOW))).toEqual({
      code: POLICY_DENIED,
      message:
        'clusters.prod.rules.ticket.approvals: 1 approval by someone other than the requester is required; got approvedBy=[alice@example.com] from requestedBy=alice@example.com',
    });
  });

  test('does not let a change of case or spacing turn the requester into an approver', () => {
    const disguised = prodTicket({ approvedBy: [' Alice@Example.COM'] });
    expect(denial(decide(policy, disguised, NOW)).message).toMatch(
      /^clusters\.prod\.rules\.ticket\.approvals: /,
    );
  });

  test('denies a prod ticket with no approvals', () => {
    expect(denial(decide(policy, prodTicket({ approvedBy: [] }), NOW)).message).toBe(
      'clusters.prod.rules.ticket.approvals: 1 approval by someone other than the requester is required; got approvedBy=[] from requestedBy=alice@example.com',
    );
  });

  test('denies an approval-required ticket with no requestedBy, since self-approval cannot be ruled out', () => {
    expect(denial(decide(policy, prodTicket({ requestedBy: undefined }), NOW)).message).toMatch(
      /^clusters\.prod\.rules\.ticket\.approvals: requestedBy is required/,
    );
  });

  test('denies a prod break-glass without an incidentId', () => {
    expect(denial(decide(policy, breakGlass({ incidentId: undefined }), NOW)).message).toBe(
      'clusters.prod.rules.break-glass.requireIncidentId: an incidentId is required',
    );
  });

  test('denies a prod break-glass longer than 1 hour', () => {
    expect(denial(decide(policy, breakGlass({ duration: 'PT1H1M' }), NOW)).message).toBe(
      'clusters.prod.rules.break-glass.maxDuration: duration PT1H1M exceeds the maximum PT1H',
    );
  });

  test('denies break-glass admin at namespace scope', () => {
    const narrowed = breakGlass({ accessPolicies: [inNamespaces('AmazonEKSClusterAdminPolicy', 'team-a')] });
    expect(denial(decide(policy, narrowed, NOW)).message).toMatch(
      /^clusters\.prod\.rules\.break-glass\.scopeTypes: /,
    );
  });

  test('denies an expiresAt in the past with ALREADY_EXPIRED', () => {
    const past = request({ expiresAt: '2025-06-01T11:59:59Z' });
    expect(denial(decide(policy, past, NOW))).toEqual({
      code: ALREADY_EXPIRED,
      message:
        'clusters.dev.rules.ticket: expiresAt 2025-06-01T11:59:59Z is not after now (2025-06-01T12:00:00.000Z); the grant would end before it starts',
    });
  });

  test('denies an expiry message that carries access of its own', () => {
    const forged = request({
      source: 'expiry',
      accessPolicies: [clusterWide('AmazonEKSClusterAdminPolicy')],
    });
    expect(denial(decide(policy, forged, NOW)).message).toMatch(
      /^clusters\.dev: source expiry cannot add access/,
    );
  });
});

describe('decide: allowed paths', () => {
  test('allows a permanent dev ticket grant of view and edit in team namespaces', () => {
    const grant = request({
      accessPolicies: [
        inNamespaces('AmazonEKSViewPolicy', 'team-a'),
        inNamespaces('AmazonEKSEditPolicy', 'team-b'),
      ],
    });
    expect(decide(policy, grant, NOW)).toEqual({ allowed: true, rule: 'clusters.dev.rules.ticket' });
  });

  test('allows a namespace prefix the pattern covers and a group the patterns allow', () => {
    const grant = request({
      accessPolicies: [inNamespaces('AmazonEKSViewPolicy', 'team-a*')],
      kubernetesGroups: ['team-a-readers'],
    });
    expect(decide(policy, grant, NOW)).toEqual({ allowed: true, rule: 'clusters.dev.rules.ticket' });
  });

  test('allows a dev grant with a duration and returns the absolute expiresAt', () => {
    expect(decide(policy, request({ duration: 'P1DT2H' }), NOW)).toEqual({
      allowed: true,
      rule: 'clusters.dev.rules.ticket',
      expiresAt: '2025-06-02T14:00:00.000Z',
    });
  });

  test('allows a prod ticket of exactly 8 hours approved by someone else', () => {
    expect(decide(policy, prodTicket({ duration: 'PT8H' }), NOW)).toEqual({
      allowed: true,
      rule: 'clusters.prod.rules.ticket',
      expiresAt: '2025-06-01T20:00:00.000Z',
    });
  });

  test('allows a prod ticket with an expiresAt inside 8 hours and returns it normalized', () => {
    const grant = prodTicket({ duration: undefined, expiresAt: '2025-06-01T19:30:00+02:00' });
    expect(decide(policy, grant, NOW)).toEqual({
      allowed: true,
      rule: 'clusters.prod.rules.ticket',
      expiresAt: '2025-06-01T17:30:00.000Z',
    });
  });

  test('allows a prod break-glass of 1 hour with an incidentId and no approval', () => {
    expect(decide(policy, breakGlass(), NOW)).toEqual({
      allowed: true,
      rule: 'clusters.prod.rules.break-glass',
      expiresAt: '2025-06-01T13:00:00.000Z',
    });
  });

  test('allows an iam-role-created grant of view on dev', () => {
    const grant = request({ source: 'iam-role-created', requestedBy: undefined });
    expect(decide(policy, grant, NOW)).toEqual({
      allowed: true,
      rule: 'clusters.dev.rules.iam-role-created',
    });
  });

  test('allows a revoke on a listed cluster whatever it names', () => {
    const revoke = request({ action: 'revoke', source: 'operator', clusterName: 'prod', grantId: 'req-0' });
    expect(decide(policy, revoke, NOW)).toEqual({ allowed: true, rule: 'clusters.prod' });
  });

  test('denies a revoke on a cluster that is not in the policy', () => {
    const revoke = request({ action: 'revoke', clusterName: 'qa', grantId: 'req-0' });
    expect(denial(decide(policy, revoke, NOW)).message).toMatch(/^clusters\.qa: /);
  });

  test('allows expiry and reconcile messages on a listed cluster', () => {
    const bare = { accessPolicies: undefined, clusterName: 'prod' } as const;
    expect(decide(policy, request({ ...bare, source: 'expiry', grantId: 'req-0' }), NOW)).toEqual({
      allowed: true,
      rule: 'clusters.prod',
    });
    expect(decide(policy, request({ ...bare, source: 'reconcile' }), NOW).allowed).toBe(true);
  });
});

describe('namespace pattern coverage', () => {
  test.each([
    ['team-*', 'team-a', true],
    ['team-*', 'team-', true],
    ['team-*', 'other', false],
    ['team-*', 'team-a*', true],
    ['team-a*', 'team-*', false],
    ['*', 'te*', true],
    ['*', 'anything', true],
    ['team-*-x', 'team-a-x', true],
    ['team-*-x', 'team-a*', false],
    ['team-a', 'team-a*', false],
    ['team-*', 'te*m-a', false],
  ])('pattern %s covers %s: %s', (pattern, namespace, expected) => {
    expect(patternCovers(pattern, namespace)).toBe(expected);
  });

  test('glob matching stays fast on many-star patterns', () => {
    const started = performance.now();
    expect(globMatches('*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('validatePolicy: errors name the exact path', () => {
  test('rejects an unknown key', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.maxDurration = 'PT8H';
    expect(validationError(raw)).toContain(
      'clusters.prod.rules.ticket.maxDurration: unknown key; expected one of',
    );
  });

  test('rejects an unknown top-level key', () => {
    expect(validationError({ ...rawPolicy(), defaults: {} })).toContain('defaults: unknown key');
  });

  test('rejects a bad duration', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.maxDuration = 'PT8X';
    expect(validationError(raw)).toBe(
      'clusters.prod.rules.ticket.maxDuration: "PT8X" is not an ISO-8601 duration of the form PnDTnHnMnS',
    );
  });

  test('rejects an unknown policy name and lists the valid ones', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.allowedPolicies = ['AmazonEKSViewPolicy', 'AmazonEKSReadPolicy'];
    const message = validationError(raw);
    expect(message).toMatch(
      /^clusters\.prod\.rules\.ticket\.allowedPolicies\[1\]: unknown access policy "AmazonEKSReadPolicy"/,
    );
    expect(message).toContain('AmazonEKSAdminPolicy, AmazonEKSAdminViewPolicy, AmazonEKSAutoNodePolicy');
  });

  test('accepts any policy of the EKS catalogue, not only the ones meant for humans', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.allowedPolicies = [
      'AmazonEKSAutoNodePolicy',
      'AmazonSagemakerHyperpodClusterPolicy',
      'AmazonEMRJobPolicy',
    ];
    expect(validatePolicy(raw).clusters.prod?.rules.ticket?.allowedPolicyArns).toEqual([
      arn('AmazonEKSAutoNodePolicy'),
      arn('AmazonSagemakerHyperpodClusterPolicy'),
      arn('AmazonEMRJobPolicy'),
    ]);
  });

  test('accepts a full policy ARN as well as a short name', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.allowedPolicies = [arn('AmazonEKSViewPolicy'), 'AmazonEKSEditPolicy'];
    expect(validatePolicy(raw).clusters.prod?.rules.ticket?.allowedPolicyArns).toEqual([
      arn('AmazonEKSViewPolicy'),
      arn('AmazonEKSEditPolicy'),
    ]);
  });

  test('rejects a version other than 1', () => {
    expect(validationError({ ...rawPolicy(), version: 2 })).toBe('version: must be 1; got 2');
  });

  test('rejects a policy without clusters', () => {
    expect(validationError({ version: 1 })).toBe(
      'clusters: is required (a mapping of cluster name to { rules })',
    );
  });

  test('rejects an unknown source and a source that never grants', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.tickets = {};
    raw.clusters.prod!.rules.expiry = {};
    const message = validationError(raw);
    expect(message).toContain(
      'clusters.prod.rules.tickets: unknown source; rules apply to ticket, iam-role-created',
    );
    expect(message).toContain('clusters.prod.rules.expiry: expiry never grants access, so it takes no rule');
  });

  test('rejects an unquoted account id, which YAML reads as a number', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.allowedAccounts = [12345678901];
    expect(validationError(raw)).toMatch(
      /^clusters\.prod\.rules\.ticket\.allowedAccounts\[0\]: 12345678901 must be a quoted/,
    );
  });

  test('rejects namespace scope without namespace patterns', () => {
    const raw = rawPolicy();
    delete raw.clusters.prod!.rules.ticket!.namespacePatterns;
    expect(validationError(raw)).toBe(
      'clusters.prod.rules.ticket.namespacePatterns: is required when scopeTypes includes namespace',
    );
  });

  test('rejects a break-glass rule without maxDuration', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules['break-glass'] = {
      allowedPolicies: ['AmazonEKSClusterAdminPolicy'],
      scopeTypes: ['cluster'],
      allowedAccounts: ['111122223333'],
    };
    expect(validationError(raw)).toBe(
      'clusters.prod.rules.break-glass.maxDuration: is required for break-glass, which must be time-boxed',
    );
  });

  test('rejects a self-approval flag that is not a boolean', () => {
    const raw = rawPolicy();
    raw.clusters.prod!.rules.ticket!.approvals = { required: 1, allowSelfApproval: 'no' };
    expect(validationError(raw)).toBe(
      'clusters.prod.rules.ticket.approvals.allowSelfApproval: must be true or false; got "no"',
    );
  });

  test('reports every problem, one per line', () => {
    const raw = rawPolicy();
    raw.version = 0;
    raw.clusters.prod!.rules.ticket!.scopeTypes = ['region'];
    expect(validationError(raw).split('\n')).toEqual([
      'version: must be 1; got 0',
      'clusters.prod.rules.ticket.scopeTypes[0]: "region" is not cluster or namespace',
    ]);
  });
});

describe('policy files', () => {
  test('prefixes each validation problem with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-'));
    const file = join(dir, 'policy.yaml');
    await writeFile(
      file,
      'version: 1\nclusters:\n  dev:\n    rules:\n      ticket: { allowedAccounts: [111122223333] }\n',
    );
    await expect(loadPolicyFile(file)).rejects.toThrow(
      `${file}: clusters.dev.rules.ticket.allowedAccounts[0]: 111122223333 must be a quoted string of 12 digits`,
    );
  });

  test('reads JSON policy files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-'));
    const file = join(dir, 'policy.json');
    await writeFile(file, await policyFileToJson(EXAMPLE_POLICY_PATH));
    expect(await loadPolicyFile(file)).toEqual(policy);
  });

  test('rejects duplicate YAML keys rather than letting the last one win', () => {
    expect(() => parsePolicyDocument('version: 1\nversion: 2\n', 'p.yaml')).toThrow(ConfigError);
  });

  test('rejects an unsupported file type and a missing file', async () => {
    expect(() => parsePolicyDocument('{}', 'policy.toml')).toThrow(/unsupported policy file type ".toml"/);
    await expect(readPolicyDocument('/nonexistent/policy.yaml')).rejects.toThrow(ConfigError);
  });
});

describe('role mappings', () => {
  /** rawPolicy() plus a prod iam-role-created rule, so mappings have a rule to answer to. */
  function withRoleRule(roleMappings: unknown) {
    const raw = rawPolicy() as { version: unknown; clusters: Record<string, Record<string, unknown>> };
    const prod = raw.clusters.prod as { rules: Record<string, unknown> };
    prod.rules['iam-role-created'] = {
      allowedPolicies: ['AmazonEKSViewPolicy'],
      scopeTypes: ['namespace'],
      namespacePatterns: ['team-*'],
      allowedAccounts: ['111122223333'],
    };
    (raw.clusters.prod as Record<string, unknown>).roleMappings = roleMappings;
    return raw;
  }

  test('the sample policy maps a tag and a path on dev, to ARNs, with levels as written', () => {
    expect(policy.clusters.dev?.roleMappings).toEqual({
      tags: [
        {
          key: 'eks-access/dev',
          levels: { view: arn('AmazonEKSViewPolicy'), edit: arn('AmazonEKSEditPolicy') },
          allowWildcardNamespaces: false,
        },
      ],
      paths: [
        { prefix: '/eks/dev/view/', policyArn: arn('AmazonEKSViewPolicy'), namespaces: ['team-shared'] },
      ],
      trustedCreators: ['arn:aws:iam::111122223333:role/platform-admin'],
    });
    expect(policy.clusters.prod?.roleMappings).toBeUndefined();
    expect(Object.isFrozen(policy.clusters.dev?.roleMappings?.tags[0]?.levels)).toBe(true);
  });

  test('accepts a tag mapping and a cluster-less path mapping that the rule allows', () => {
    const parsed = validatePolicy(
      withRoleRule({
        tags: [{ key: 'eks-access/prod', levels: { view: 'AmazonEKSViewPolicy' } }],
        paths: [{ prefix: '/eks/prod/', policy: 'AmazonEKSViewPolicy', namespaces: ['team-a', 'team-b*'] }],
      }),
    );
    expect(parsed.clusters.prod?.roleMappings?.paths[0]?.namespaces).toEqual(['team-a', 'team-b*']);
  });

  test('needs an iam-role-created rule on the same cluster', () => {
    const raw = rawPolicy() as { version: unknown; clusters: Record<string, Record<string, unknown>> };
    (raw.clusters.prod as Record<string, unknown>).roleMappings = {
      tags: [{ key: 'eks-access/prod', levels: { view: 'AmazonEKSViewPolicy' } }],
    };
    expect(validationError(raw)).toBe(
      'clusters.prod.roleMappings: needs clusters.prod.rules.iam-role-created, which decides every grant a role mapping makes',
    );
  });

  test('refuses a mapping its rule would always deny', () => {
    const message = validationError(
      withRoleRule({
        tags: [{ key: 'eks-access/prod', levels: { admin: 'AmazonEKSClusterAdminPolicy' } }],
        paths: [
          { prefix: '/eks/prod/', policy: 'AmazonEKSViewPolicy' },
          { prefix: '/eks/prod/ops/', policy: 'AmazonEKSViewPolicy', namespaces: ['kube-system'] },
        ],
      }),
    );
    expect(message.split('\n')).toEqual([
      'clusters.prod.roleMappings.tags[0].levels.admin: AmazonEKSClusterAdminPolicy is not in clusters.prod.rules.iam-role-created.allowedPolicies, so every grant would be denied',
      'clusters.prod.roleMappings.paths[0]: grants AmazonEKSViewPolicy at cluster scope, which clusters.prod.rules.iam-role-created.scopeTypes does not allow',
      'clusters.prod.roleMappings.paths[1].namespaces: kube-system is not covered by clusters.prod.rules.iam-role-created.namespacePatterns',
    ]);
  });

  test('refuses malformed tag keys, levels, prefixes and namespaces, and unknown keys', () => {
    const message = validationError(
      withRoleRule({
        tags: [
          { key: 'aws:eks', levels: { view: 'AmazonEKSViewPolicy' } },
          { key: 'a,b', levels: { View: 'AmazonEKSViewPolicy' } },
          { key: 'x', levels: {}, extra: true },
        ],
        paths: [
          { prefix: 'eks/prod', policy: 'AmazonEKSViewPolicy', namespaces: ['team-a'] },
          { prefix: '/', policy: 'AmazonEKSViewPolicy', namespaces: ['Team_A'] },
          { prefix: '/eks/', namespaces: [] },
        ],
        users: [],
      }),
    );
    expect(message.split('\n')).toEqual([
      'clusters.prod.roleMappings.users: unknown key; expected one of tags, paths, trustedCreators',
      'clusters.prod.roleMappings.tags[0].key: "aws:eks" uses the aws: prefix, which AWS reserves',
      'clusters.prod.roleMappings.tags[1].key: "a,b" is not an IAM tag key (1–128 letters, digits, spaces, _ . : / = + - @)',
      'clusters.prod.roleMappings.tags[1].levels.View: level names are lower-case letters, digits, _ and -, at most 32 characters',
      'clusters.prod.roleMappings.tags[2].extra: unknown key; expected one of key, levels, allowWildcardNamespaces',
      'clusters.prod.roleMappings.tags[2].levels: must map at least one level name to an access policy, e.g. { view: AmazonEKSViewPolicy }',
      'clusters.prod.roleMappings.paths[0].prefix: "eks/prod" is not an IAM path prefix such as /eks/dev/view/ (starts and ends with /, printable ASCII, not / alone, which every role has)',
      'clusters.prod.roleMappings.paths[1].prefix: "/" is not an IAM path prefix such as /eks/dev/view/ (starts and ends with /, printable ASCII, not / alone, which every role has)',
      'clusters.prod.roleMappings.paths[1].namespaces[0]: "Team_A" is not a namespace (a DNS-1123 label, or a prefix ending in *)',
      'clusters.prod.roleMappings.paths[2].policy: is required',
      'clusters.prod.roleMappings.paths[2].namespaces: must list at least one namespace; omit it for cluster scope',
    ]);
  });

  test('reads trustedCreators (absent: nobody) and allowWildcardNamespaces (absent: false)', () => {
    const parsed = validatePolicy(
      withRoleRule({
        tags: [
          { key: 'eks-access/prod', levels: { view: 'AmazonEKSViewPolicy' }, allowWildcardNamespaces: true },
        ],
        trustedCreators: [
          'arn:aws:iam::111122223333:role/pipelines/*',
          'arn:aws:iam::111122223333:user/alice',
        ],
      }),
    );
    expect(parsed.clusters.prod?.roleMappings?.tags[0]?.allowWildcardNamespaces).toBe(true);
    expect(parsed.clusters.prod?.roleMappings?.trustedCreators).toEqual([
      'arn:aws:iam::111122223333:role/pipelines/*',
      'arn:aws:iam::111122223333:user/alice',
    ]);
    const none = validatePolicy(
      withRoleRule({ tags: [{ key: 'k', levels: { view: 'AmazonEKSViewPolicy' } }] }),
    );
    expect(none.clusters.prod?.roleMappings?.trustedCreators).toEqual([]);
    expect(none.clusters.prod?.roleMappings?.tags[0]?.allowWildcardNamespaces).toBe(false);
  });

  test('refuses trusted creators that are not IAM ARN patterns of one account, naming each', () => {
    const message = validationError(
      withRoleRule({
        trustedCreators: [
          '*',
          'arn:aws:sts::111122223333:assumed-role/platform-admin/ivan',
          'arn:aws:iam::*:role/x',
          42,
        ],
        tags: [{ key: 'k', levels: { view: 'AmazonEKSViewPolicy' }, allowWildcardNamespaces: 'yes' }],
      }),
    );
    expect(message.split('\n')).toEqual([
      'clusters.prod.roleMappings.tags[0].allowWildcardNamespaces: must be true or false; got "yes"',
      'clusters.prod.roleMappings.trustedCreators[0]: "*" is not an IAM ARN pattern such as arn:aws:iam::111122223333:role/platform-admin, arn:aws:iam::111122223333:role/pipelines/* or arn:aws:iam::111122223333:user/alice (one account; * after it)',
      'clusters.prod.roleMappings.trustedCreators[1]: "arn:aws:sts::111122223333:assumed-role/platform-admin/ivan" is an STS session ARN; name the IAM role that issues the sessions, e.g. arn:aws:iam::111122223333:role/platform-admin (CloudTrail reports a session by that role)',
      'clusters.prod.roleMappings.trustedCreators[2]: "arn:aws:iam::*:role/x" is not an IAM ARN pattern such as arn:aws:iam::111122223333:role/platform-admin, arn:aws:iam::111122223333:role/pipelines/* or arn:aws:iam::111122223333:user/alice (one account; * after it)',
      'clusters.prod.roleMappings.trustedCreators[3]: 42 is not an IAM ARN pattern such as arn:aws:iam::111122223333:role/platform-admin, arn:aws:iam::111122223333:role/pipelines/* or arn:aws:iam::111122223333:user/alice (one account; * after it)',
    ]);
  });

  test('refuses the same tag key twice on a cluster, whatever its case', () => {
    expect(
      validationError(
        withRoleRule({
          tags: [
            { key: 'eks-access/prod', levels: { view: 'AmazonEKSViewPolicy' } },
            { key: 'EKS-Access/prod', levels: { view: 'AmazonEKSViewPolicy' } },
          ],
        }),
      ),
    ).toBe(
      'clusters.prod.roleMappings.tags[1].key: "EKS-Access/prod" is listed twice (IAM tag keys ignore case)',
    );
  });
});

test('a broken iam-role-created rule is reported once, not again as missing for the role mappings', () => {
  const raw = rawPolicy() as { version: unknown; clusters: Record<string, Record<string, unknown>> };
  const prod = raw.clusters.prod as { rules: Record<string, unknown>; roleMappings?: unknown };
  prod.rules['iam-role-created'] = { allowedPolicies: ['AmazonEKSViewPolicy'], scopeTypes: ['cluster'] };
  prod.roleMappings = { paths: [{ prefix: '/eks/', policy: 'AmazonEKSViewPolicy' }] };
  expect(validationError(raw)).toBe(
    'clusters.prod.rules.iam-role-created.allowedAccounts: is required (account ids whose principals may be granted)',
  );
});

describe('partitions', () => {
  test('denies a principal from another partition with the same account id', async () => {
    const { loadPolicyFile, EXAMPLE_POLICY_PATH } = await import('../../infra/policy-file.js');
    const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
    for (const partition of ['aws-cn', 'aws-us-gov']) {
      const decision = decide(
        policy,
        {
          schemaVersion: 1,
          requestId: `r-${partition}`,
          action: 'grant',
          source: 'ticket',
          clusterName: 'dev',
          principalArn: `arn:${partition}:iam::111122223333:role/team-a-dev`,
          accessPolicies: [
            {
              policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
              accessScope: { type: 'namespace', namespaces: ['team-a'] },
            },
          ],
        },
        new Date('2026-11-21T12:00:00Z'),
      );
      expect(decision).toMatchObject({ allowed: false, reason: { code: 'POLICY_DENIED' } });
      expect(decision.allowed ? '' : decision.reason.message).toMatch(/partition/);
    }
  });
});

describe('the rules-only reader (workers, ticket intake, reconciler)', () => {
  test('reads the rules exactly as the whole-document reader does, and leaves role mappings out', async () => {
    const raw = await readPolicyDocument(EXAMPLE_POLICY_PATH);
    const rules = validateRulesPolicy(raw);
    expect(rules.clusters.dev?.rules).toEqual(policy.clusters.dev?.rules);
    expect(rules.clusters.prod?.rules).toEqual(policy.clusters.prod?.rules);
    expect(rules.clusters.dev?.roleMappings).toBeUndefined();
    expect(Object.isFrozen(rules.clusters.dev?.rules.ticket?.allowedAccounts)).toBe(true);
  });

  test('still refuses a broken rule, with every problem and its path', () => {
    const raw = rawPolicy();
    raw.version = 0;
    raw.clusters.prod!.rules.ticket!.scopeTypes = ['region'];
    expect(() => validateRulesPolicy(raw)).toThrow(
      'version: must be 1; got 0\nclusters.prod.rules.ticket.scopeTypes[0]: "region" is not cluster or namespace',
    );
  });
});
