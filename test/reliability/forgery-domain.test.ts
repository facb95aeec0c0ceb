/**
 * Forgery suite, domain rows (issue 9 items 3–6): who created the role, who approved, who may revoke.
 * Every row goes through the real path: CloudTrail events into the role-lifecycle intake, signed and
 * unsigned HTTP to the ticket intake (node:http → API Gateway v2 events), Jira deliveries, the requests
 * queue (local SQS) → the grant worker → the EKS emulator over HTTP, audit records on the local bus.
 * Each row asserts: refused with a reason code, audited (an AuditRecord on the bus, or for refusals at
 * the HTTP edge the intake's `intake decision` line with the code), zero EKS writes (counted at the
 * emulator), nothing lost (queue and DLQ empty, one terminal record per request); and a positive control
 * shows the legitimate path still works.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { auditRecordJsonSchema } from '../../functions/core/audit-schema.js';
import { validateJiraMapping } from '../../functions/core/jira.js';
import { validatePolicy } from '../../functions/core/policy.js';
import { signRequest } from '../../functions/core/signature.js';
import { MANAGED_TAG_KEY } from '../../functions/core/types.js';
import { jiraPayload } from '../../functions/service/jira-payload.js';
import type { HttpApiServer } from '../../infra/local/http-api.js';
import { EXAMPLE_POLICY_PATH, readPolicyDocument } from '../../infra/policy-file.js';
import { accepts } from '../helpers/ajv.js';
import { ADMIN, EDIT, ns, VIEW } from '../helpers/fixtures.js';
import { captureLogger, eksWrites, type Harness, startHarness } from '../helpers/harness.js';
import { createRoleIntake, type RoleIntake, serveHttpIntakes } from '../helpers/intakes.js';

const TICKET_SECRET = 'forgery-ticket-secret';
const BREAK_GLASS_SECRET = 'forgery-break-glass-secret';
const TEAM_A_CI = 'arn:aws:iam::111122223333:role/team-a-ci';
const GINA = { accountId: '5b10a2844c20165700ede21g', emailAddress: 'gina@example.com' };
const FRANK = { accountId: '5b10ac8d82e05b22cc7d4ef5', emailAddress: 'frank@example.com' };

const read = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));
const cloudtrail = (name: string) =>
  read(`../../events/cloudtrail/${name}.json`) as { detail: Record<string, unknown> };
const JIRA_WEBHOOK = JSON.parse(read('../../events/ticket/jira-approved.json').body) as Record<
  string,
  unknown
>;
const JIRA_MAPPING_JSON = read('../../infra/jira-field-mapping.example.json') as Record<string, unknown>;

/** The sample policy, with approvals required where the rows need them (dev tickets 1, prod tickets 2). */
async function forgeryPolicy() {
  const doc = (await readPolicyDocument(EXAMPLE_POLICY_PATH)) as {
    clusters: Record<string, { rules: Record<string, Record<string, unknown>> }>;
  };
  (doc.clusters.dev as { rules: Record<string, Record<string, unknown>> }).rules.ticket!.approvals = {
    required: 1,
    allowSelfApproval: false,
  };
  (doc.clusters.prod as { rules: Record<string, Record<string, unknown>> }).rules.ticket!.approvals = {
    required: 2,
    allowSelfApproval: false,
  };
  return validatePolicy(doc);
}

describe('forgery suite: creators, approvals and revoke rights', () => {
  let h: Harness;
  let api: HttpApiServer;
  let roleIntake: RoleIntake;
  const intakeLog = captureLogger();
  let n = 0;

  beforeEach(async () => {
    const policy = await forgeryPolicy();
    h = await startHarness({ policy });
    // Each intake with its own identity (C3): the queue stamps which intake sent what.
    api = await serveHttpIntakes(h, {
      policy,
      ticketSecret: TICKET_SECRET,
      breakGlassSecret: BREAK_GLASS_SECRET,
      jira: jiraPayload(validateJiraMapping(JIRA_MAPPING_JSON)),
      logger: intakeLog,
    });
    // Driven directly: the bus path to the role intake is forgery-senders.test.ts's row.
    roleIntake = createRoleIntake(h, policy);
    intakeLog.lines.length = 0;
  });
  afterEach(async () => {
    // Nothing lost: every message was consumed and none was dead-lettered.
    expect(await h.queueDepth()).toBe(0);
    expect(await h.dlqBodies()).toEqual([]);
    for (const record of h.audits()) expect(accepts(auditRecordJsonSchema(), record)).toBe(true);
    await api.close();
    await h.close();
  });

  const writes = () => eksWrites(h).length;
  const entry = (cluster: string, arn: string) => h.eks.snapshot(cluster).find((e) => e.principalArn === arn);
  /** The intake's one line per decision: the audit trail of refusals at the HTTP edge. */
  const decisions = () =>
    intakeLog.lines
      .filter((l) => l.message === 'intake decision')
      .map((l) => l.extra[0] as Record<string, unknown>);

  async function post(path: string, body: unknown, o: { jira?: boolean; unsigned?: boolean } = {}) {
    const text = JSON.stringify(body);
    const secret = path === '/break-glass' ? BREAK_GLASS_SECRET : TICKET_SECRET;
    const res = await fetch(`${api.endpoint}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(o.unsigned ? {} : signRequest(secret, text, Math.floor(Date.now() / 1000))),
        ...(o.jira && { 'x-payload-format': 'jira' }),
      },
      body: text,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  /** A Jira delivery: the sample webhook with another transition, actor or fields. */
  function jira(o: {
    changelogId?: string | null;
    user?: unknown;
    items?: unknown[];
    fields?: Record<string, unknown>;
  }) {
    const w = structuredClone(JIRA_WEBHOOK) as Record<string, unknown> & {
      issue: { fields: Record<string, unknown> };
      changelog?: Record<string, unknown>;
    };
    if (o.changelogId === null) delete w.changelog;
    else if (o.changelogId !== undefined) w.changelog = { ...w.changelog, id: o.changelogId };
    if (o.items && w.changelog) w.changelog.items = o.items;
    if (o.user !== undefined) w.user = o.user;
    Object.assign(w.issue.fields, o.fields);
    return w;
  }

  const prodTicket = (over: Record<string, unknown>) => {
    n += 1;
    return {
      schemaVersion: 1,
      requestId: `forgery-prod-${n}`,
      action: 'grant',
      clusterName: 'prod',
      principalArn: 'arn:aws:iam::111122223333:role/team-a-prod',
      accessPolicies: [{ policyArn: VIEW, accessScope: ns('team-a') }],
      duration: 'PT1H',
      requestedBy: 'alice@example.com',
      ticket: `OPS-${n}`,
      ...over,
    };
  };

  // ---------------------------------------------------------------------------------------------------
  describe('IAM role creators', () => {
    test('an untrusted caller creating a tagged role: UNTRUSTED_ACTOR (high), audited, no EKS write', async () => {
      const result = await roleIntake(cloudtrail('create-role-untrusted'));
      await h.drain();
      expect(result).toMatchObject({ outcome: 'rejected', requests: [] });
      expect(h.audits()).toMatchObject([
        {
          outcome: 'rejected',
          severity: 'high',
          reason: { code: 'UNTRUSTED_ACTOR' },
          principalArn: 'arn:aws:iam::111122223333:role/mallory-ci',
          requestedBy: 'arn:aws:iam::111122223333:user/mallory',
        },
      ]);
      expect(writes()).toBe(0);

      // Positive control: the trusted admin's CreateRole grants.
      await roleIntake(cloudtrail('create-role-tagged'));
      await h.drain();
      expect(entry('dev', TEAM_A_CI)?.policies).toEqual([
        { policyArn: VIEW, accessScope: ns('team-a', 'team-b') },
      ]);
    });

    test('an untrusted TagRole on a role a trusted admin created: UNTRUSTED_ACTOR, and access never widens', async () => {
      await roleIntake(cloudtrail('create-role-tagged'));
      await h.drain();
      const before = writes();
      const forged = cloudtrail('tag-role');
      forged.detail.eventID = 'forged-tag-0001';
      forged.detail.userIdentity = {
        type: 'IAMUser',
        arn: 'arn:aws:iam::111122223333:user/mallory',
        accountId: '111122223333',
      };
      const result = await roleIntake(forged);
      await h.drain();
      expect(result.rejections.map((r) => r.code)).toEqual(['UNTRUSTED_ACTOR']);
      // The only thing sent is the revoke of the old mapping (a revocation is honoured whoever asks):
      // EKS loses View and never gains Edit.
      expect(result.requests.map((r) => r.action)).toEqual(['revoke']);
      expect(entry('dev', TEAM_A_CI)).toBeUndefined();
      expect(writes()).toBe(before + 1);
      expect(h.audits().map((a) => a.outcome)).toEqual(['granted', 'rejected', 'revoked']);

      // Positive control: the same TagRole by the trusted admin grants Edit.
      await roleIntake(cloudtrail('tag-role'));
      await h.drain();
      expect(entry('dev', TEAM_A_CI)?.policies).toEqual([{ policyArn: EDIT, accessScope: ns('team-a') }]);
    });

    test('a tag naming a wildcard namespace: WILDCARD_NAMESPACE (high), audited, no EKS write', async () => {
      await roleIntake(cloudtrail('create-role-unmatched'));
      const wild = cloudtrail('tag-role');
      wild.detail.eventID = 'wild-tag-0001';
      wild.detail.requestParameters = {
        roleName: 'lambda-image-resizer',
        tags: [{ key: 'eks-access/dev', value: 'edit:team-*' }],
      };
      const result = await roleIntake(wild);
      await h.drain();
      expect(result.requests).toEqual([]);
      expect(h.audits()).toMatchObject([
        { outcome: 'rejected', severity: 'high', reason: { code: 'WILDCARD_NAMESPACE' } },
      ]);
      expect(writes()).toBe(0);

      // Positive control: an exact namespace grants.
      const exact = structuredClone(wild);
      exact.detail.eventID = 'exact-tag-0001';
      exact.detail.requestParameters = {
        roleName: 'lambda-image-resizer',
        tags: [{ key: 'eks-access/dev', value: 'edit:team-a' }],
      };
      await roleIntake(exact);
      await h.drain();
      expect(h.audits().map((a) => a.outcome)).toEqual(['rejected', 'granted']);
    });

    test("a recreated role does not get back its predecessor's foreign groups and policies", async () => {
      h.eks.seedEntry('dev', {
        principalArn: TEAM_A_CI,
        kubernetesGroups: ['ops-humans'],
        policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
      });
      h.eks.recreatePrincipal(TEAM_A_CI);
      await roleIntake(cloudtrail('create-role-tagged'));
      await h.drain();
      const [audit] = h.audits();
      expect(audit).toMatchObject({
        outcome: 'granted',
        severity: 'high',
        dropped: {
          kubernetesGroups: ['ops-humans'],
          policies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
        },
      });
      expect(entry('dev', TEAM_A_CI)).toMatchObject({
        kubernetesGroups: [],
        policies: [{ policyArn: VIEW, accessScope: ns('team-a', 'team-b') }],
        tags: { [MANAGED_TAG_KEY]: 'true' },
      });
      // No write ever put ClusterAdmin back.
      expect(
        audit?.changes.filter((c) => c.operation === 'AssociateAccessPolicy' && c.policyArn === ADMIN),
      ).toEqual([]);

      // Positive control: a role with no stale entry is a plain, normal-severity create.
      await roleIntake(cloudtrail('create-role-path'));
      await h.drain();
      const path = h.audits().find((a) => a.principalArn?.endsWith('/ci-reader'));
      expect(path).toMatchObject({ outcome: 'granted', severity: 'normal' });
      expect(path?.dropped).toBeUndefined();
    });
  });

  // ---------------------------------------------------------------------------------------------------
  describe('Jira approvals', () => {
    test('an approver named in an edited field does not count: the transition actor self-approves, POLICY_DENIED', async () => {
      // gina (the reporter) makes the transition and names frank in a field as the "approver".
      const res = await post(
        '/tickets',
        jira({ changelogId: '30001', user: GINA, fields: { customfield_10206: FRANK } }),
        {
          jira: true,
        },
      );
      expect(res).toMatchObject({ status: 400, json: { error: { code: 'POLICY_DENIED' } } });
      expect(decisions().at(-1)).toMatchObject({ outcome: 'rejected', code: 'POLICY_DENIED' });
      await h.drain();
      expect(writes()).toBe(0);
      // And a mapping that would read approvers from a field does not start.
      expect(() =>
        validateJiraMapping({
          ...JIRA_MAPPING_JSON,
          fields: { ...(JIRA_MAPPING_JSON.fields as object), approvedBy: 'customfield_10206' },
        }),
      ).toThrow(/fields.approvedBy: approvers come only from the user who moved the issue/);

      // Positive control: frank makes the transition.
      expect(
        (await post('/tickets', jira({ changelogId: '30002', user: FRANK }), { jira: true })).status,
      ).toBe(202);
      await h.drain();
      expect(h.audits()).toMatchObject([
        {
          outcome: 'granted',
          requestedBy: `jira:${GINA.accountId}`,
          approvedBy: [`jira:${FRANK.accountId}`],
        },
      ]);
    });

    test('a delivery without a changelog, or an edit after approval, is JIRA_NOT_APPROVED: 400, nothing enqueued', async () => {
      for (const w of [
        jira({ changelogId: null }),
        jira({
          changelogId: '30011',
          items: [{ field: 'customfield_10204', fieldId: 'customfield_10204', toString: 'team-z' }],
        }),
      ]) {
        const res = await post('/tickets', w, { jira: true });
        expect(res).toMatchObject({ status: 400, json: { error: { code: 'JIRA_NOT_APPROVED' } } });
        expect(decisions().at(-1)).toMatchObject({ outcome: 'rejected', code: 'JIRA_NOT_APPROVED' });
      }
      await h.drain();
      expect(h.audits()).toEqual([]);
      expect(writes()).toBe(0);

      // Positive control: the status transition itself is an approval.
      expect((await post('/tickets', jira({ changelogId: '30012' }), { jira: true })).status).toBe(202);
      await h.drain();
      expect(h.audits().map((a) => a.outcome)).toEqual(['granted']);
    });

    test('a redelivered approval is a replay: answered 200 REPLAYED, granted once', async () => {
      expect((await post('/tickets', jira({ changelogId: '30021' }), { jira: true })).status).toBe(202);
      await h.drain();
      const afterFirst = writes();
      const again = await post('/tickets', jira({ changelogId: '30021' }), { jira: true });
      expect(again).toMatchObject({ status: 200, json: { error: { code: 'REPLAYED' } } });
      expect(decisions().at(-1)).toMatchObject({ code: 'REPLAYED' });
      await h.drain();
      expect(writes()).toBe(afterFirst);
      expect(h.audits().map((a) => a.requestId)).toEqual(['jira-ACCESS-42-30021']);

      // Positive control: a new transition (another changelog) is a new request.
      expect((await post('/tickets', jira({ changelogId: '30022' }), { jira: true })).status).toBe(202);
      await h.drain();
      expect(h.audits().map((a) => a.requestId)).toEqual(['jira-ACCESS-42-30021', 'jira-ACCESS-42-30022']);
    });
  });

  // ---------------------------------------------------------------------------------------------------
  describe('canonical identities', () => {
    test('alias approvers count once: Bob@Example.com and bob@example.com are one of the two approvals needed', async () => {
      const res = await post('/tickets', prodTicket({ approvedBy: ['Bob@Example.com', 'bob@example.com'] }));
      expect(res).toMatchObject({ status: 400, json: { error: { code: 'POLICY_DENIED' } } });
      // A bare name is not an identity at all.
      const bare = await post('/tickets', prodTicket({ approvedBy: ['bob', 'bob@example.com'] }));
      expect(bare).toMatchObject({ status: 400, json: { error: { code: 'INVALID_IDENTITY' } } });
      expect(decisions().map((d) => d.code)).toEqual(['POLICY_DENIED', 'INVALID_IDENTITY']);
      await h.drain();
      expect(writes()).toBe(0);

      // Positive control: two different people.
      const ok = await post('/tickets', prodTicket({ approvedBy: ['bob@example.com', 'carol@example.com'] }));
      expect(ok.status).toBe(202);
      await h.drain();
      expect(h.audits().map((a) => a.outcome)).toEqual(['granted']);
    });

    test("alias self-approval: alice approving alice@example.com's request is refused, at the edge and on the queue", async () => {
      const alias = await post(
        '/tickets',
        prodTicket({ approvedBy: ['Alice@Example.com', 'bob@example.com'] }),
      );
      expect(alias).toMatchObject({ status: 400, json: { error: { code: 'POLICY_DENIED' } } });
      const bare = await post('/tickets', prodTicket({ approvedBy: ['alice', 'bob@example.com'] }));
      expect(bare).toMatchObject({ status: 400, json: { error: { code: 'INVALID_IDENTITY' } } });
      // Straight onto the queue, past the intake: the worker refuses the non-canonical alias and audits it.
      const forged = prodTicket({ source: 'ticket', approvedBy: ['ALICE@example.com', 'bob@example.com'] });
      await h.send(forged as never);
      await h.drain();
      expect(h.audits()).toMatchObject([
        { requestId: forged.requestId, outcome: 'rejected', reason: { code: 'INVALID_IDENTITY' } },
      ]);
      expect(writes()).toBe(0);

      // Positive control: two approvers who are not the requester.
      expect(
        (await post('/tickets', prodTicket({ approvedBy: ['bob@example.com', 'dave@example.com'] }))).status,
      ).toBe(202);
      await h.drain();
      expect(h.audits().map((a) => a.outcome)).toEqual(['rejected', 'granted']);
    });
  });

  // ---------------------------------------------------------------------------------------------------
  describe('revoke rights', () => {
    test('a ticket-route revoke of an active break-glass grant: REVOKE_NOT_ALLOWED, audited, no EKS write', async () => {
      const principalArn = 'arn:aws:iam::111122223333:role/oncall-responder';
      const bg = {
        schemaVersion: 1,
        requestId: 'forgery-bg-0001',
        action: 'grant',
        clusterName: 'prod',
        principalArn,
        accessPolicies: [{ policyArn: ADMIN, accessScope: { type: 'cluster' } }],
        duration: 'PT1H',
        requestedBy: 'hank@example.com',
        reason: 'incident',
        incidentId: 'INC-1',
      };
      expect((await post('/break-glass', bg)).status).toBe(202);
      await h.drain();
      const afterGrant = writes();
      const revoke = (requestId: string) => ({
        schemaVersion: 1,
        requestId,
        action: 'revoke',
        clusterName: 'prod',
        principalArn,
        grantId: bg.requestId,
        requestedBy: 'hank@example.com',
      });
      // Unsigned: refused at the edge, nothing enqueued.
      expect((await post('/tickets', revoke('forgery-ticket-revoke-0'), { unsigned: true })).status).toBe(
        401,
      );
      expect(decisions().at(-1)).toMatchObject({ outcome: 'rejected', status: 401 });
      // Signed with the ticket key: accepted by the intake, refused by the worker.
      expect((await post('/tickets', revoke('forgery-ticket-revoke-1'))).status).toBe(202);
      await h.drain();
      expect(h.auditsFor('forgery-ticket-revoke-1')).toMatchObject([
        { outcome: 'rejected', reason: { code: 'REVOKE_NOT_ALLOWED' } },
      ]);
      expect(writes()).toBe(afterGrant);
      expect(entry('prod', principalArn)?.policies).toMatchObject([
        { policyArn: ADMIN, accessScope: { type: 'cluster' } },
      ]);

      // Positive control: the requester ends it early through the route it came by.
      expect((await post('/break-glass', revoke('forgery-bg-done-1'))).status).toBe(202);
      await h.drain();
      expect(h.auditsFor('forgery-bg-done-1')).toMatchObject([
        {
          outcome: 'revoked',
          severity: 'high',
          endedBy: { source: 'break-glass', requestId: 'forgery-bg-done-1', requestedBy: 'hank@example.com' },
        },
      ]);
      expect(entry('prod', principalArn)).toBeUndefined();
    });
  });
});
