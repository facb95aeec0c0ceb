import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { decide, validatePolicy } from '../../functions/core/policy.js';
import { validateAccessRequest } from '../../functions/core/request.js';
import {
  mapRole,
  parseRoleEvent,
  parseTagValue,
  planRoleEvent,
  type RoleEvent,
  type RolePlan,
  type RoleRecord,
  requestId,
} from '../../functions/core/role-mapping.js';
import { EXAMPLE_POLICY_PATH, loadPolicyFile, readPolicyDocument } from '../../infra/policy-file.js';
import { fixture, ns, VIEW } from '../helpers/fixtures.js';

const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
const policy = await loadPolicyFile(EXAMPLE_POLICY_PATH);
const NOW = new Date('2026-01-01T10:00:00Z');
const TEAM_A_CI = 'arn:aws:iam::111122223333:role/team-a-ci';

function sample(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../../events/cloudtrail/${name}.json`, import.meta.url), 'utf8'));
}

function parsed(name: string): Exclude<RoleEvent, { kind: 'ignored' }> {
  const e = parseRoleEvent(sample(name));
  if (e.kind === 'ignored') throw new Error(`expected ${name} to parse, got: ${e.why}`);
  return e;
}

/** Applies events in order, carrying the record along as the intake does. */
function replay(...names: string[]): { plans: RolePlan[]; record: RoleRecord | undefined } {
  let record: RoleRecord | undefined;
  const plans: RolePlan[] = [];
  for (const name of names) {
    const plan = planRoleEvent(policy, parsed(name), record);
    plans.push(plan);
    if (plan.record) record = plan.record;
  }
  return { plans, record };
}

const messages = (plan: RolePlan) => plan.notes.map((n) => `${n.level}: ${n.message}`);

describe('parsing CloudTrail events', () => {
  test('reads a CreateRole: ARN with its path, role id, tags, caller and event id', () => {
    expect(parsed('create-role-path')).toMatchObject({
      kind: 'created',
      eventName: 'CreateRole',
      eventId: '4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b02',
      account: '111122223333',
      partition: 'aws',
      roleName: 'ci-reader',
      arn: 'arn:aws:iam::111122223333:role/eks/dev/view/ci-reader',
      path: '/eks/dev/view/',
      roleId: 'AROA4EXAMPLECIREADER1',
      tags: {},
      actor: 'arn:aws:sts::111122223333:assumed-role/platform-admin/ivan',
    });
    expect(parsed('create-role-tagged')).toMatchObject({
      tags: { 'eks-access/dev': 'view:team-a team-b', owner: 'team-a' },
    });
  });

  test('reads TagRole, UntagRole and DeleteRole, which name the role but not its ARN', () => {
    expect(parsed('tag-role')).toMatchObject({
      kind: 'tagged',
      roleName: 'team-a-ci',
      tags: { 'eks-access/dev': 'edit:team-a' },
    });
    expect(parsed('untag-role')).toMatchObject({ kind: 'untagged', tagKeys: ['eks-access/dev'] });
    expect(parsed('delete-role')).toMatchObject({
      kind: 'deleted',
      roleName: 'team-a-ci',
      account: '111122223333',
    });
  });

  test('ignores a failed call, saying why', () => {
    expect(parseRoleEvent(sample('create-role-failed'))).toEqual({
      kind: 'ignored',
      why: 'CreateRole failed with EntityAlreadyExistsException (Role with name team-a-ci already exists.); IAM did not change',
      eventName: 'CreateRole',
      eventId: '4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b04',
      roleName: 'team-a-ci',
    });
  });

  test('ignores other IAM calls and events that are not CloudTrail records', () => {
    const other = sample('tag-role') as { detail: Record<string, unknown> };
    other.detail.eventName = 'AttachRolePolicy';
    expect(parseRoleEvent(other)).toMatchObject({
      kind: 'ignored',
      why: expect.stringContaining('AttachRolePolicy'),
    });
    expect(parseRoleEvent({ detail: 'x' }).kind).toBe('ignored');
    expect(parseRoleEvent(null).kind).toBe('ignored');
  });
});

describe('mapping tags and paths to access', () => {
  const tagMapping = policy.clusters.dev!.roleMappings!.tags[0]!;

  test('a level with namespaces grants its policy in those namespaces; separators are spaces, / or +', () => {
    for (const value of [
      'view:team-a team-b',
      'view:team-a/team-b',
      'View:team-a+team-b',
      'view: team-a, team-b',
    ]) {
      expect(parseTagValue(value, tagMapping), value).toEqual({
        policyArn: VIEW,
        namespaces: ['team-a', 'team-b'],
      });
    }
  });

  test('a level alone grants its policy cluster-wide', () => {
    expect(parseTagValue('edit', tagMapping)).toEqual({ policyArn: EDIT });
  });

  test('explains a value it cannot map', () => {
    expect(parseTagValue('admin:team-a', tagMapping)).toEqual({
      problem: 'names level "admin", which the mapping does not know (known: view, edit)',
    });
    expect(parseTagValue('view:', tagMapping)).toMatchObject({
      problem: expect.stringContaining('nothing after'),
    });
    expect(parseTagValue('view:Team_A', tagMapping)).toMatchObject({
      problem: expect.stringContaining('"Team_A"'),
    });
  });

  test('merges a path mapping and a tag mapping on the same cluster into one association per policy', () => {
    const { access } = mapRole(policy, {
      roleName: 'r',
      path: '/eks/dev/view/',
      tags: { 'EKS-ACCESS/dev': 'view:team-a' },
    });
    expect([...access.keys()]).toEqual(['dev']);
    expect(access.get('dev')).toEqual({
      accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-shared') }],
      matchedBy: ['path /eks/dev/view/', 'tag eks-access/dev=view:team-a'],
    });
  });

  test('a bad tag value maps nothing and leaves a warning', () => {
    const { access, notes } = mapRole(policy, {
      roleName: 'r',
      path: '/',
      tags: { 'eks-access/dev': 'root' },
    });
    expect(access.size).toBe(0);
    expect(notes).toMatchObject([
      { level: 'warn', message: expect.stringContaining('role r tag eks-access/dev="root"') },
    ]);
  });
});

describe('planning', () => {
  test('CreateRole with a mapping tag grants on that cluster, marked principalRecreated, with an id from the event', () => {
    const { plans, record } = replay('create-role-tagged');
    expect(plans[0]?.requests).toEqual([
      {
        schemaVersion: 1,
        requestId: 'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01-dev',
        action: 'grant',
        source: 'iam-role-created',
        clusterName: 'dev',
        principalArn: TEAM_A_CI,
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }],
        requestedBy: 'arn:aws:sts::111122223333:assumed-role/platform-admin/ivan',
        reason:
          'IAM CreateRole of role team-a-ci (4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01): tag eks-access/dev=view:team-a team-b',
        principalRecreated: true,
      },
    ]);
    expect(record?.grants).toEqual({
      dev: {
        grantId: 'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01-dev',
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }],
      },
    });
  });

  test('every request it plans passes the contract and the example policy', () => {
    const { plans } = replay(
      'create-role-tagged',
      'tag-role',
      'untag-role',
      'delete-role',
      'create-role-path',
    );
    const requests = plans.flatMap((p) => p.requests);
    expect(requests.length).toBeGreaterThan(4);
    for (const r of requests) {
      expect(validateAccessRequest(r).ok, r.requestId).toBe(true);
      expect(decide(policy, r, NOW).allowed, r.requestId).toBe(true);
    }
  });

  test('CreateRole under a mapped path grants by path, with the path in the ARN', () => {
    const [plan] = replay('create-role-path').plans;
    expect(plan?.requests).toMatchObject([
      {
        principalArn: 'arn:aws:iam::111122223333:role/eks/dev/view/ci-reader',
        accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-shared') }],
      },
    ]);
  });

  test('a role that matches no mapping plans nothing and says so', () => {
    const [plan] = replay('create-role-unmatched').plans;
    expect(plan?.requests).toEqual([]);
    expect(messages(plan!)).toEqual(['info: role lambda-image-resizer matched no mapping; nothing to grant']);
  });

  test('the same event again plans nothing: it was applied', () => {
    const { plans } = replay('create-role-tagged', 'create-role-tagged');
    expect(plans[1]?.requests).toEqual([]);
    expect(plans[1]?.record).toBeUndefined();
    expect(messages(plans[1]!)[0]).toMatch(/was already applied$/);
  });

  test('TagRole that changes the mapping tag grants the new access, then revokes the old grant', () => {
    const { plans, record } = replay('create-role-tagged', 'tag-role');
    expect(plans[1]?.requests.map((r) => [r.action, r.requestId, r.grantId, r.accessPolicies])).toEqual([
      [
        'grant',
        'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b05-dev',
        undefined,
        [{ policyArn: EDIT, accessScope: ns('team-a') }],
      ],
      [
        'revoke',
        'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b05-dev-r',
        'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01-dev',
        undefined,
      ],
    ]);
    expect(plans[1]?.requests[0]?.principalRecreated).toBeUndefined();
    expect(record?.tags).toEqual({ 'eks-access/dev': 'edit:team-a', owner: 'team-a' });
  });

  test('TagRole of an unrelated tag plans nothing and says the mapped access is unchanged', () => {
    const event = parsed('tag-role');
    if (event.kind !== 'tagged') throw new Error('expected TagRole');
    const { record } = replay('create-role-tagged');
    const plan = planRoleEvent(policy, { ...event, tags: { costcenter: '42' } }, record);
    expect(plan.requests).toEqual([]);
    expect(messages(plan)).toEqual([
      'info: role team-a-ci: TagRole left its mapped access unchanged; nothing to do',
    ]);
    expect(plan.record?.tags).toMatchObject({ costcenter: '42', 'eks-access/dev': 'view:team-a team-b' });
  });

  test('UntagRole of the mapping tag revokes exactly the grant that tag made', () => {
    const { plans, record } = replay('create-role-tagged', 'untag-role');
    expect(plans[1]?.requests).toMatchObject([
      {
        action: 'revoke',
        principalArn: TEAM_A_CI,
        clusterName: 'dev',
        grantId: 'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01-dev',
      },
    ]);
    expect(record?.grants).toEqual({});
  });

  test('UntagRole keeps what the path still maps', () => {
    const create = parsed('create-role-path');
    if (create.kind !== 'created') throw new Error('expected CreateRole');
    const first = planRoleEvent(policy, { ...create, tags: { 'eks-access/dev': 'view:team-a' } }, undefined);
    const untag = { ...parsed('untag-role'), roleName: 'ci-reader' } as Exclude<
      RoleEvent,
      { kind: 'ignored' }
    >;
    const second = planRoleEvent(policy, untag, first.record);
    expect(second.requests.map((r) => [r.action, r.accessPolicies ?? r.grantId])).toEqual([
      ['grant', [{ policyArn: VIEW, accessScope: ns('team-shared') }]],
      ['revoke', first.requests[0]?.requestId],
    ]);
  });

  test('UntagRole of a role we have no record of plans nothing', () => {
    const plan = planRoleEvent(policy, parsed('untag-role'), undefined);
    expect(plan.requests).toEqual([]);
    expect(messages(plan)).toEqual([
      'info: role team-a-ci: no record of it, so no mapped access of ours to revoke; nothing to do',
    ]);
  });

  test('DeleteRole revokes everything on every cluster of the policy, for the ARN CreateRole reported', () => {
    const create = parsed('create-role-path');
    const first = planRoleEvent(policy, create, undefined);
    const del = { ...parsed('delete-role'), roleName: 'ci-reader' } as Exclude<
      RoleEvent,
      { kind: 'ignored' }
    >;
    const plan = planRoleEvent(policy, del, first.record);
    expect(plan.requests).toEqual(
      ['dev', 'prod', 'staging'].map((clusterName) => ({
        schemaVersion: 1,
        requestId: `iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b07-${clusterName}`,
        action: 'revoke',
        source: 'iam-role-created',
        clusterName,
        principalArn: 'arn:aws:iam::111122223333:role/eks/dev/view/ci-reader',
        requestedBy: 'arn:aws:sts::111122223333:assumed-role/platform-admin/ivan',
        reason: expect.stringContaining('IAM role ci-reader was deleted'),
      })),
    );
    expect(plan.record).toMatchObject({ deleted: true, grants: {}, tags: {} });
  });

  test('DeleteRole of a role never seen revokes by the path-less ARN and warns that it guessed', () => {
    const plan = planRoleEvent(policy, parsed('delete-role'), undefined);
    expect(plan.requests.map((r) => r.principalArn)).toEqual([TEAM_A_CI, TEAM_A_CI, TEAM_A_CI]);
    expect(plan.notes[0]).toMatchObject({ level: 'warn', message: expect.stringContaining('assuming') });
  });

  test('TagRole of a role never seen grants to the path-less ARN and warns', () => {
    const plan = planRoleEvent(policy, parsed('tag-role'), undefined);
    expect(plan.requests).toMatchObject([{ action: 'grant', principalArn: TEAM_A_CI }]);
    expect(plan.record?.guessed).toBe(true);
    expect(plan.notes[0]?.level).toBe('warn');
  });

  test('CreateRole after a DeleteRole we missed revokes the old role grants after granting afresh', () => {
    const { record } = replay('create-role-tagged', 'tag-role');
    const again = { ...parsed('create-role-tagged'), eventId: 'e-recreated' } as Exclude<
      RoleEvent,
      { kind: 'ignored' }
    >;
    const plan = planRoleEvent(policy, again, record);
    expect(plan.requests.map((r) => [r.action, r.principalRecreated, r.grantId])).toEqual([
      ['grant', true, undefined],
      ['revoke', undefined, 'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b05-dev'],
    ]);
  });

  test('CreateRole after DeleteRole starts clean', () => {
    const { record } = replay('create-role-tagged', 'delete-role');
    const again = { ...parsed('create-role-tagged'), eventId: 'e-recreated' } as Exclude<
      RoleEvent,
      { kind: 'ignored' }
    >;
    const plan = planRoleEvent(policy, again, record);
    expect(plan.requests.map((r) => r.action)).toEqual(['grant']);
    expect(plan.record?.deleted).toBeUndefined();
  });

  test('request ids stay within 128 characters for long cluster names, and stay deterministic', () => {
    const long = 'c'.repeat(100);
    const id = requestId('4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01', long, 'r');
    expect(id.length).toBeLessThanOrEqual(128);
    expect(id).toBe(requestId('4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01', long, 'r'));
    expect(id).not.toBe(requestId('4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b01', long));
  });

  test('a mapping on a cluster named `constructor` does not confuse record lookups', async () => {
    const raw = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as { clusters: Record<string, unknown> };
    const withConstructor = validatePolicy({
      ...raw,
      clusters: { ...raw.clusters, constructor: raw.clusters.dev },
    });
    const tagged = parsed('tag-role');
    const plan = planRoleEvent(withConstructor, tagged, undefined);
    expect(plan.requests.map((r) => [r.action, r.clusterName])).toEqual([
      ['grant', 'constructor'],
      ['grant', 'dev'],
    ]);
  });
});

describe('principalRecreated in the AccessRequest contract', () => {
  const roleGrant = fixture('dev-view-grant', {
    source: 'iam-role-created',
    kubernetesGroups: undefined,
    principalRecreated: true,
  });

  test('is accepted on an iam-role-created grant', () => {
    const { kubernetesGroups: _omit, ...request } = roleGrant;
    expect(validateAccessRequest(request)).toMatchObject({ ok: true, request: { principalRecreated: true } });
  });

  test('is refused from any other source, and on a revoke', () => {
    const { kubernetesGroups: _omit, accessPolicies: _policies, ...bare } = roleGrant;
    const fromTicket = validateAccessRequest({
      ...bare,
      accessPolicies: roleGrant.accessPolicies,
      source: 'ticket',
    });
    expect(fromTicket.ok ? 'ok' : fromTicket.reason.code).toBe('CONFLICTING_FIELDS');
    const revoke = validateAccessRequest({ ...bare, action: 'revoke', grantId: 'g-1' });
    expect(revoke.ok ? 'ok' : revoke.reason.code).toBe('CONFLICTING_FIELDS');
  });

  test('must be a boolean', () => {
    const { kubernetesGroups: _omit, ...request } = roleGrant;
    const r = validateAccessRequest({ ...request, principalRecreated: 'yes' });
    expect(r.ok ? 'ok' : r.reason.code).toBe('INVALID_TYPE');
  });
});

describe('trusted creators', () => {
  /** A sample event as another caller made it. */
  function as(name: string, identity: Record<string, unknown>, over: Record<string, unknown> = {}) {
    const e = sample(name) as { detail: Record<string, unknown> };
    e.detail.userIdentity = identity;
    Object.assign(e.detail, over);
    const p = parseRoleEvent(e);
    if (p.kind === 'ignored') throw new Error(p.why);
    return p;
  }
  const mallory = {
    type: 'IAMUser',
    arn: 'arn:aws:iam::111122223333:user/mallory',
    accountId: '111122223333',
  };

  test('reads the caller: the session issuer for assumed roles, the ARN for IAM users, nothing for services', () => {
    expect(parsed('tag-role')).toMatchObject({
      actor: 'arn:aws:sts::111122223333:assumed-role/platform-admin/ivan',
      actorType: 'AssumedRole',
      caller: 'arn:aws:iam::111122223333:role/platform-admin',
    });
    expect(as('tag-role', mallory).caller).toBe('arn:aws:iam::111122223333:user/mallory');
    const service = as('tag-role', { type: 'AWSService', invokedBy: 'cloudformation.amazonaws.com' });
    expect(service.caller).toBeUndefined();
    // An AssumedRole whose sessionIssuer is missing names nobody we can trust; its session ARN is not enough.
    const bare = as('tag-role', {
      type: 'AssumedRole',
      arn: 'arn:aws:sts::111122223333:assumed-role/platform-admin/x',
    });
    expect(bare.caller).toBeUndefined();
  });

  test('the sample untrusted CreateRole grants nothing and is rejected UNTRUSTED_ACTOR, naming the caller and the policy path', () => {
    const plan = planRoleEvent(policy, parsed('create-role-untrusted'), undefined);
    expect(plan.requests).toEqual([]);
    expect(plan.rejections).toEqual([
      {
        requestId: 'iam-4b9c2e57-0f2a-4a3e-8a3c-7d1e5f6a0b08-dev',
        clusterName: 'dev',
        principalArn: 'arn:aws:iam::111122223333:role/mallory-ci',
        code: 'UNTRUSTED_ACTOR',
        requestedBy: 'arn:aws:iam::111122223333:user/mallory',
        message: expect.stringContaining(
          'by arn:aws:iam::111122223333:user/mallory would grant tag eks-access/dev=edit:team-a team-b on cluster dev, but the caller is not a trusted creator (clusters.dev.roleMappings.trustedCreators: arn:aws:iam::111122223333:role/platform-admin)',
        ),
      },
    ]);
  });

  test("an untrusted TagRole never grants later under a trusted caller's event", () => {
    const created = planRoleEvent(policy, parsed('create-role-unmatched'), undefined);
    const tagged = planRoleEvent(
      policy,
      as('tag-role', mallory, {
        requestParameters: {
          roleName: 'lambda-image-resizer',
          tags: [{ key: 'eks-access/dev', value: 'edit:team-a' }],
        },
      }),
      created.record,
    );
    expect(tagged.requests).toEqual([]);
    expect(tagged.rejections.map((r) => r.code)).toEqual(['UNTRUSTED_ACTOR']);
    // platform-admin tags something unrelated: mallory's tag still grants nothing.
    const other = as(
      'tag-role',
      (sample('tag-role') as { detail: { userIdentity: unknown } }).detail.userIdentity as Record<
        string,
        unknown
      >,
      {
        eventID: 'other-event',
        requestParameters: { roleName: 'lambda-image-resizer', tags: [{ key: 'owner', value: 'team-a' }] },
      },
    );
    const later = planRoleEvent(policy, other, tagged.record);
    expect(later.requests).toEqual([]);
    expect(later.rejections).toEqual([]);
  });

  test('an untrusted UntagRole or DeleteRole still revokes', () => {
    const { record } = replay('create-role-tagged');
    const untag = planRoleEvent(policy, as('untag-role', mallory), record);
    expect(untag.requests.map((r) => r.action)).toEqual(['revoke']);
    const del = planRoleEvent(policy, as('delete-role', mallory), record);
    expect(del.requests.every((r) => r.action === 'revoke')).toBe(true);
    expect(del.requests.length).toBeGreaterThan(0);
  });

  test('a policy without trustedCreators trusts nobody', async () => {
    const raw = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
      clusters: { dev: { roleMappings: Record<string, unknown> } };
    };
    delete raw.clusters.dev.roleMappings.trustedCreators;
    const plan = planRoleEvent(validatePolicy(raw), parsed('create-role-tagged'), undefined);
    expect(plan.requests).toEqual([]);
    expect(plan.rejections[0]?.message).toContain('none, so nobody is trusted');
  });

  test('a tag naming a wildcard namespace is rejected WILDCARD_NAMESPACE unless the mapping allows it', async () => {
    const wild = as(
      'tag-role',
      (sample('tag-role') as { detail: { userIdentity: unknown } }).detail.userIdentity as Record<
        string,
        unknown
      >,
      {
        requestParameters: {
          roleName: 'lambda-image-resizer',
          tags: [{ key: 'eks-access/dev', value: 'edit:team-*' }],
        },
      },
    );
    const { record } = replay('create-role-unmatched');
    const plan = planRoleEvent(policy, wild, record);
    expect(plan.requests).toEqual([]);
    expect(plan.rejections).toMatchObject([{ code: 'WILDCARD_NAMESPACE', clusterName: 'dev' }]);
    expect(plan.rejections[0]?.message).toContain('eks-access/dev=edit:team-*');

    const raw = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
      clusters: { dev: { roleMappings: { tags: Array<Record<string, unknown>> } } };
    };
    (raw.clusters.dev.roleMappings.tags[0] as Record<string, unknown>).allowWildcardNamespaces = true;
    const allowed = planRoleEvent(validatePolicy(raw), wild, record);
    expect(allowed.rejections).toEqual([]);
    expect(allowed.requests[0]?.accessPolicies).toEqual([{ policyArn: EDIT, accessScope: ns('team-*') }]);
  });
});
