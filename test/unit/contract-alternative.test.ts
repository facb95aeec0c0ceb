// The cold-start bench compares our field-spec layer with the same AccessRequest contract written with
// valibot (bench/alternatives/access-request.valibot.ts). The comparison is only worth its figures if the
// alternative checks what request.ts checks: here both read the samples and one broken variant per rule
// family, and must answer with the same reason code.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validateWithValibot } from '../../bench/alternatives/access-request.valibot.js';
import { validateAccessRequest } from '../../functions/core/request.js';
import type { AccessRequest } from '../../functions/core/types.js';
import { fixture } from '../helpers/fixtures.js';

const codeOf = (body: unknown): string => {
  const r = validateAccessRequest(body);
  return r.ok ? 'ok' : r.reason.code;
};
const valibotCodeOf = (body: unknown): string => {
  const r = validateWithValibot(body);
  return r.ok ? 'ok' : r.code;
};

const samples = readdirSync(join(import.meta.dirname, '../../events/requests'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''));

const without = (r: AccessRequest, key: keyof AccessRequest) => {
  const copy: Record<string, unknown> = { ...r };
  delete copy[key];
  return copy;
};
const grant = fixture('dev-view-grant');
const breakGlass = fixture('prod-break-glass');

describe('the valibot alternative checks what request.ts checks', () => {
  test.each(samples)('sample %s: the same answer', (name) => {
    const body = fixture(name);
    expect(valibotCodeOf(body)).toBe(codeOf(body));
  });

  test.each<[string, string, unknown]>([
    [
      'a session ARN',
      'ASSUMED_ROLE_ARN',
      { ...grant, principalArn: 'arn:aws:sts::111122223333:assumed-role/x/y' },
    ],
    [
      'a service-linked role',
      'SERVICE_LINKED_ROLE',
      { ...grant, principalArn: 'arn:aws:iam::111122223333:role/aws-service-role/x' },
    ],
    ['a system: group', 'SYSTEM_GROUP', { ...grant, kubernetesGroups: ['system:masters'] }],
    ['a reserved username', 'RESERVED_USERNAME', { ...grant, username: 'eks:x' }],
    [
      'a template without a colon',
      'USERNAME_TEMPLATE_NEEDS_COLON',
      { ...grant, username: 'john{{SessionName}}' },
    ],
    ['a bare-name requester', 'INVALID_IDENTITY', { ...grant, requestedBy: 'bob' }],
    ['a +tag alias', 'INVALID_IDENTITY', { ...grant, requestedBy: 'alice+x@example.com' }],
    [
      'duration and expiresAt',
      'CONFLICTING_FIELDS',
      { ...grant, duration: 'PT1H', expiresAt: '2026-12-01T00:00:00Z' },
    ],
    ['a break-glass grant without incident', 'INCIDENT_ID_REQUIRED', without(breakGlass, 'incidentId')],
    ['a break-glass grant without reason', 'REASON_REQUIRED', without(breakGlass, 'reason')],
    ['a break-glass grant without end', 'DURATION_REQUIRED', without(breakGlass, 'duration')],
    ['an unknown field', 'UNKNOWN_FIELD', { ...grant, owner: 'x' }],
  ])('%s: both refuse it with %s', (_name, code, body) => {
    expect(codeOf(body)).toBe(code);
    expect(valibotCodeOf(body)).toBe(code);
  });
});
