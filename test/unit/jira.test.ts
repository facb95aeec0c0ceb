import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ACCESS_POLICY_NAMES } from '../../functions/core/access-policies.js';
import { ConfigError } from '../../functions/core/errors.js';
import {
  explainForJira,
  type JiraResult,
  jiraToAccessRequest,
  validateJiraMapping,
} from '../../functions/core/jira.js';
import { validateAccessRequest } from '../../functions/core/request.js';

type Json = Record<string, unknown>;

const MAPPING_JSON = JSON.parse(
  readFileSync(new URL('../../infra/jira-field-mapping.example.json', import.meta.url), 'utf8'),
) as Json;
const MAPPING = validateJiraMapping(MAPPING_JSON);
/** The webhook inside the API Gateway sample. */
const WEBHOOK = JSON.parse(
  (
    JSON.parse(readFileSync(new URL('../../events/ticket/jira-approved.json', import.meta.url), 'utf8')) as {
      body: string;
    }
  ).body,
) as Json;

/** A deep copy of the sample webhook with `issue.fields` entries replaced (undefined removes one). */
function webhook(fields: Json = {}, top: Json = {}): Json {
  const copy = structuredClone(WEBHOOK) as Json & { issue: { fields: Json } };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) delete copy.issue.fields[k];
    else copy.issue.fields[k] = v;
  }
  for (const [k, v] of Object.entries(top)) {
    if (v === undefined) delete copy[k];
    else copy[k] = v;
  }
  return copy;
}

function rejected(r: JiraResult) {
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.candidate)}`);
  return r.reason;
}

function candidate(r: JiraResult): Json {
  if (!r.ok) throw new Error(`expected a candidate, got ${JSON.stringify(r.reason)}`);
  return r.candidate;
}

describe('an approved Jira issue', () => {
  test('becomes a valid AccessRequest built from the mapped fields', () => {
    const c = candidate(jiraToAccessRequest(WEBHOOK, MAPPING));
    expect(c).toEqual({
      schemaVersion: 1,
      requestId: 'jira-ACCESS-42-10177',
      action: 'grant',
      source: 'ticket',
      clusterName: 'dev',
      principalArn: 'arn:aws:iam::111122223333:role/team-c-dev',
      accessPolicies: [
        {
          policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy',
          accessScope: { type: 'namespace', namespaces: ['team-c'] },
        },
      ],
      duration: 'PT4H',
      // Both as Jira account ids, so self-approval compares like with like (Jira may hide emails).
      requestedBy: 'jira:5b10a2844c20165700ede21g',
      reason: 'Edit access to team-c on dev for the release',
      approvedBy: ['jira:5b10ac8d82e05b22cc7d4ef5'],
      ticket: 'ACCESS-42',
    });
    expect(validateAccessRequest(c).ok).toBe(true);
  });

  test('gets one request id per transition: a redelivery repeats it, a later approval does not', () => {
    const first = candidate(jiraToAccessRequest(WEBHOOK, MAPPING)).requestId;
    expect(candidate(jiraToAccessRequest(webhook(), MAPPING)).requestId).toBe(first);
    const later = webhook({}, { changelog: { ...(WEBHOOK.changelog as Json), id: '10999' } });
    expect(candidate(jiraToAccessRequest(later, MAPPING)).requestId).toBe('jira-ACCESS-42-10999');
  });

  test('without namespaces becomes a cluster-scoped grant', () => {
    const c = candidate(jiraToAccessRequest(webhook({ customfield_10204: null }), MAPPING));
    expect(c.accessPolicies).toEqual([
      {
        policyArn: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy',
        accessScope: { type: 'cluster' },
      },
    ]);
  });

  test('reads namespaces from comma- or space-separated text and from multi-value fields', () => {
    const text = candidate(
      jiraToAccessRequest(webhook({ customfield_10204: 'team-c, team-d team-c' }), MAPPING),
    );
    expect(text.accessPolicies).toMatchObject([{ accessScope: { namespaces: ['team-c', 'team-d'] } }]);
    const multi = candidate(
      jiraToAccessRequest(
        webhook({ customfield_10204: [{ value: 'team-c' }, { value: 'team-e' }] }),
        MAPPING,
      ),
    );
    expect(multi.accessPolicies).toMatchObject([{ accessScope: { namespaces: ['team-c', 'team-e'] } }]);
  });

  test('matches access levels and statuses regardless of case', () => {
    const c = candidate(
      jiraToAccessRequest(
        webhook(
          { customfield_10203: { value: 'edit' } },
          {
            changelog: { id: '1', items: [{ field: 'status', fieldId: 'status', toString: 'APPROVED' }] },
          },
        ),
        MAPPING,
      ),
    );
    expect(c.accessPolicies).toMatchObject([{ policyArn: expect.stringContaining('AmazonEKSEditPolicy') }]);
  });

  test('takes the approver only from the user who made the transition, never from an issue field', () => {
    // Someone edited a field to name an approver: it is not read.
    const c = candidate(
      jiraToAccessRequest(webhook({ customfield_10206: [{ accountId: 'olga' }] }), MAPPING),
    );
    expect(c.approvedBy).toEqual(['jira:5b10ac8d82e05b22cc7d4ef5']);
  });

  test('a delivery without a changelog is not an approval, whatever the issue status says', () => {
    const r = rejected(jiraToAccessRequest(webhook({}, { changelog: undefined }), MAPPING));
    expect(r.code).toBe('JIRA_NOT_APPROVED');
    expect(r.message).toContain('no changelog');
  });

  test('a requestedBy field without a Jira user is JIRA_FIELD_UNMAPPED', () => {
    const r = rejected(jiraToAccessRequest(webhook({ reporter: 'gina@example.com' }), MAPPING));
    expect(r.code).toBe('JIRA_FIELD_UNMAPPED');
    expect(r.message).toContain('requestedBy');
  });
});

describe('rejections', () => {
  test('a transition to another status is not an approval', () => {
    const r = rejected(
      jiraToAccessRequest(
        webhook(
          {},
          { changelog: { id: '2', items: [{ field: 'status', fieldId: 'status', toString: 'Rejected' }] } },
        ),
        MAPPING,
      ),
    );
    expect(r).toEqual({
      code: 'JIRA_NOT_APPROVED',
      message:
        'Not an approval: the status changed from null to "Rejected", not into approved; nothing to do.',
    });
  });

  test('an update that does not touch the status is not an approval', () => {
    const r = rejected(
      jiraToAccessRequest(
        webhook({}, { changelog: { id: '3', items: [{ field: 'summary', toString: 'x' }] } }),
        MAPPING,
      ),
    );
    expect(r.code).toBe('JIRA_NOT_APPROVED');
  });

  test('a mapped field that is missing or empty is JIRA_FIELD_MISSING, naming the Jira field', () => {
    for (const value of [undefined, null, '', '   ', []]) {
      const r = rejected(jiraToAccessRequest(webhook({ customfield_10202: value }), MAPPING));
      expect(r).toEqual({
        code: 'JIRA_FIELD_MISSING',
        message:
          'ACCESS-42: Jira field customfield_10202, mapped to principalArn, is missing or empty; fill it in and approve again',
      });
    }
  });

  test('an access level the mapping does not list is JIRA_FIELD_UNMAPPED', () => {
    const r = rejected(
      jiraToAccessRequest(webhook({ customfield_10203: { value: 'Cluster admin' } }), MAPPING),
    );
    expect(r.code).toBe('JIRA_FIELD_UNMAPPED');
    expect(r.message).toContain('access level "Cluster admin" in Jira field customfield_10203');
    expect(r.message).toContain('(known: view, edit)');
  });

  test('a value the mapping cannot read, or several values in a single-value field, is JIRA_FIELD_UNMAPPED', () => {
    const object = rejected(jiraToAccessRequest(webhook({ customfield_10201: { id: 7 } }), MAPPING));
    expect(object.code).toBe('JIRA_FIELD_UNMAPPED');
    const many = rejected(jiraToAccessRequest(webhook({ customfield_10201: ['dev', 'prod'] }), MAPPING));
    expect(many).toEqual({
      code: 'JIRA_FIELD_UNMAPPED',
      message: 'ACCESS-42: Jira field customfield_10201 (clusterName) holds 2 values; expected one',
    });
  });

  test('a body that is not a Jira issue webhook is INVALID_JIRA_PAYLOAD', () => {
    for (const body of [
      [],
      'x',
      {},
      { issue: { key: 'not a key', fields: {} } },
      { issue: { key: 'A-1' } },
    ]) {
      expect(rejected(jiraToAccessRequest(body, MAPPING)).code, JSON.stringify(body)).toBe(
        'INVALID_JIRA_PAYLOAD',
      );
    }
    const noId = webhook({}, { changelog: { ...(WEBHOOK.changelog as Json), id: undefined } });
    expect(rejected(jiraToAccessRequest(noId, MAPPING)).code).toBe('INVALID_JIRA_PAYLOAD');
    const nobody = webhook({}, { user: { displayName: 'x' } });
    expect(rejected(jiraToAccessRequest(nobody, MAPPING)).message).toContain(
      'names no "user" with an accountId',
    );
  });

  test('a contract violation in a mapped value can be traced back to its Jira field', () => {
    const c = candidate(jiraToAccessRequest(webhook({ customfield_10202: 'team-c-dev' }), MAPPING));
    const r = validateAccessRequest(c);
    if (r.ok) throw new Error('expected a rejection');
    expect(r.reason.code).toBe('INVALID_PRINCIPAL_ARN');
    expect(explainForJira(r.reason, MAPPING).message).toMatch(/\(from Jira field customfield_10202\)$/);
  });
});

describe('the field mapping', () => {
  test('normalizes short policy names to ARNs and lower-cases levels and statuses', () => {
    expect(MAPPING.accessLevels).toEqual({
      view: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy',
      edit: 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy',
    });
    expect(MAPPING.approvedStatuses).toEqual(['approved']);
  });

  test('is refused at cold start with every problem listed', () => {
    let message = '';
    try {
      validateJiraMapping({
        fields: { clusterName: 'customfield 1', owner: 'x' },
        accessLevels: { Root: 'Admin' },
        extra: 1,
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'JIRA_FIELD_MAPPING: extra: unknown key',
      'JIRA_FIELD_MAPPING: fields.clusterName: must be a Jira field id such as customfield_10201 or a path such as reporter.emailAddress',
      'JIRA_FIELD_MAPPING: fields.owner: unknown; mappable: clusterName, principalArn, accessLevel, namespaces, kubernetesGroups, duration, requestedBy, reason',
      'JIRA_FIELD_MAPPING: fields.principalArn: is required',
      'JIRA_FIELD_MAPPING: fields.accessLevel: is required',
      `JIRA_FIELD_MAPPING: accessLevels.Root: "Admin" is not one of ${ACCESS_POLICY_NAMES.join(', ')}`,
    ]);
  });

  test('refuses fields.approvedBy: approvers come only from the transition', () => {
    expect(() =>
      validateJiraMapping({
        ...MAPPING_JSON,
        fields: { ...(MAPPING_JSON.fields as Json), approvedBy: 'customfield_10206' },
      }),
    ).toThrow(
      "JIRA_FIELD_MAPPING: fields.approvedBy: approvers come only from the user who moved the issue into an approved status (the webhook's user); an issue field can be edited by the requester, so it cannot name approvers. Remove fields.approvedBy.",
    );
  });

  test('must be an object', () => {
    expect(() => validateJiraMapping([])).toThrow(ConfigError);
  });
});
