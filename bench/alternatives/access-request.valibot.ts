/**
 * AccessRequest v1 written with valibot, for the cold-start bench only (not shipped): the same fields,
 * patterns, limits and cross-field rules as functions/core/request.ts, each failure carrying its reason
 * code and a message naming the field, the value and what would be accepted. It answers "would a
 * small, well-kept library fit the byte and init budget better than our field-spec layer?".
 */
import * as v from 'valibot';
import { IDENTITY_EXPECTED, IDENTITY_PATTERN } from '../../functions/core/identity.js';

const PARTITION = '(?:aws|aws-cn|aws-us-gov)';
const IAM = '[A-Za-z0-9_+=,.@-]';
const INVISIBLE = String.raw`\u007F-\u009F\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF`;
const re = (source: string) => new RegExp(source, 'u');

/** `CODE: message`: valibot carries one string per issue. */
const msg =
  (code: string, expected: string) =>
  (issue: v.BaseIssue<unknown>): string =>
    `${code}: "${issue.path?.map((p) => p.key).join('.') ?? ''}" got ${JSON.stringify(issue.input)?.slice(0, 80)}. Expected ${expected}.`;

const str = (
  _code: string,
  expected: string,
  ...checks: v.PipeItem<string, string, v.BaseIssue<unknown>>[]
) => v.pipe(v.string(msg('INVALID_TYPE', expected)), ...checks);

const id = (code: string) =>
  str(
    code,
    '1–128 of A-Z a-z 0-9 . _ : -',
    v.regex(/^[A-Za-z0-9._:-]{1,128}$/u, msg(code, '1–128 of A-Z a-z 0-9 . _ : -')),
  );
const ref = str(
  'INVALID_FIELD',
  '1–128 of A-Z a-z 0-9 . _ : / # -',
  v.regex(/^[A-Za-z0-9._:/#-]{1,128}$/u, msg('INVALID_FIELD', 'a reference')),
);
// requestedBy / approvedBy: one canonical identity per person, the same pattern request.ts uses.
const person = str(
  'INVALID_IDENTITY',
  IDENTITY_EXPECTED,
  v.maxLength(1100, msg('INVALID_IDENTITY', IDENTITY_EXPECTED)),
  v.regex(re(IDENTITY_PATTERN), msg('INVALID_IDENTITY', IDENTITY_EXPECTED)),
);

const principalArn = str(
  'INVALID_PRINCIPAL_ARN',
  'an IAM role or user ARN',
  v.maxLength(2048, msg('INVALID_PRINCIPAL_ARN', 'at most 2048 characters')),
  v.check(
    (s) => !re(`^arn:${PARTITION}:sts::[0-9]{12}:assumed-role/`).test(s),
    msg('ASSUMED_ROLE_ARN', 'the role ARN, not a session'),
  ),
  v.check(
    (s) => !re(`^arn:${PARTITION}:iam::[0-9]{12}:role/aws-service-role/`).test(s),
    msg('SERVICE_LINKED_ROLE', 'a regular role'),
  ),
  v.regex(
    re(`^arn:${PARTITION}:iam::[0-9]{12}:(?:role|user)/(?:${IAM}+/)*${IAM}{1,64}$`),
    msg('INVALID_PRINCIPAL_ARN', 'an IAM role or user ARN'),
  ),
);

const group = str(
  'INVALID_GROUP',
  'a Kubernetes group name',
  v.check((s) => !/^[Ss][Yy][Ss][Tt][Ee][Mm]:/u.test(s), msg('SYSTEM_GROUP', 'a group without system:')),
  v.regex(/^[a-zA-Z0-9][a-zA-Z0-9:._-]{0,62}$/u, msg('INVALID_GROUP', '1–63 of a-z A-Z 0-9 : . _ -')),
);

const namespace = str(
  'INVALID_NAMESPACE',
  'a DNS-1123 label or a prefix ending in *',
  v.maxLength(63, msg('INVALID_NAMESPACE', 'at most 63 characters')),
  v.regex(
    /^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?|[a-z0-9][-a-z0-9]*\*)$/u,
    msg('INVALID_NAMESPACE', 'a namespace'),
  ),
);

const distinct = <T>(code: string, key: (x: T) => unknown = (x) => x) =>
  v.check((xs: T[]) => new Set(xs.map(key)).size === xs.length, msg(code, 'distinct values'));

const scope = v.pipe(
  v.strictObject({
    type: v.picklist(['cluster', 'namespace'], msg('INVALID_SCOPE_TYPE', 'cluster or namespace')),
    namespaces: v.optional(
      v.pipe(
        v.array(namespace),
        v.maxLength(50, msg('INVALID_NAMESPACE', 'at most 50')),
        distinct('DUPLICATE_VALUE'),
      ),
    ),
  }),
  v.check(
    (s) => s.type !== 'namespace' || (s.namespaces?.length ?? 0) > 0,
    msg('NAMESPACES_REQUIRED', 'namespaces for a namespace scope'),
  ),
  v.check(
    (s) => s.type !== 'cluster' || s.namespaces === undefined,
    msg('NAMESPACES_NOT_ALLOWED', 'no namespaces for a cluster scope'),
  ),
);

const DURATION = /^P(?!$)(?:([0-9]+)D)?(?:T(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?$/u;
const durationMs = (s: string) => {
  const [, d, h, m, sec] = DURATION.exec(s) ?? [];
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(m ?? 0)) * 60_000 + Number(sec ?? 0) * 1000;
};
const INSTANT =
  /^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$/u;
const realDay = (s: string) => {
  const [, y, mo, d] = INSTANT.exec(s)?.map(Number) ?? [];
  const days =
    mo === 2
      ? y! % 4 === 0 && (y! % 100 !== 0 || y! % 400 === 0)
        ? 29
        : 28
      : [4, 6, 9, 11].includes(mo!)
        ? 30
        : 31;
  return d! <= days;
};

export const AccessRequestSchema = v.pipe(
  v.strictObject(
    {
      schemaVersion: v.literal(1, msg('UNSUPPORTED_SCHEMA_VERSION', 'the number 1')),
      requestId: id('INVALID_REQUEST_ID'),
      action: v.picklist(['grant', 'revoke'], msg('INVALID_ACTION', 'grant or revoke')),
      source: v.picklist(
        ['ticket', 'iam-role-created', 'break-glass', 'expiry', 'reconcile', 'operator'],
        msg('INVALID_SOURCE', 'a source'),
      ),
      clusterName: str(
        'INVALID_CLUSTER_NAME',
        'an EKS cluster name',
        v.regex(/^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/u, msg('INVALID_CLUSTER_NAME', 'an EKS cluster name')),
      ),
      principalArn,
      kubernetesGroups: v.optional(
        v.pipe(
          v.array(group),
          v.maxLength(100, msg('INVALID_GROUP', 'at most 100')),
          distinct('DUPLICATE_VALUE'),
        ),
      ),
      username: v.optional(
        str(
          'INVALID_USERNAME',
          'a username',
          v.check(
            (s) =>
              !/^(?:[Ss][Yy][Ss][Tt][Ee][Mm]:|[Ee][Kk][Ss]:|[Aa][Ww][Ss]:|[Aa][Mm][Aa][Zz][Oo][Nn]:|[Ii][Aa][Mm]:)/u.test(
                s,
              ),
            msg('RESERVED_USERNAME', 'no reserved prefix'),
          ),
          v.check(
            (s) => !/^[^:]*\{\{SessionName/u.test(s),
            msg('USERNAME_TEMPLATE_NEEDS_COLON', 'a colon before {{SessionName}}'),
          ),
          v.maxLength(128, msg('INVALID_USERNAME', 'at most 128')),
          v.regex(
            /^(?:[A-Za-z0-9._@:=+,/-]|\{\{SessionName(?:Raw)?\}\})+$/u,
            msg('INVALID_USERNAME', 'a username'),
          ),
        ),
      ),
      accessPolicies: v.optional(
        v.pipe(
          v.array(
            v.strictObject({
              policyArn: str(
                'INVALID_POLICY_ARN',
                'an access policy ARN',
                v.maxLength(256),
                v.regex(
                  re(`^arn:${PARTITION}:eks::aws:cluster-access-policy/[A-Za-z0-9]+$`),
                  msg('INVALID_POLICY_ARN', 'an access policy ARN'),
                ),
              ),
              accessScope: scope,
            }),
          ),
          v.minLength(1, msg('INVALID_ACCESS_POLICIES', '1–20 policies')),
          v.maxLength(20, msg('INVALID_ACCESS_POLICIES', '1–20 policies')),
          v.check(
            (ps) => new Set(ps.map((p) => p.policyArn)).size === ps.length,
            msg('DUPLICATE_VALUE', 'distinct policyArn values'),
          ),
        ),
      ),
      duration: v.optional(
        str(
          'INVALID_DURATION',
          'PnDTnHnMnS',
          v.maxLength(32),
          v.regex(DURATION, msg('INVALID_DURATION', 'PnDTnHnMnS')),
          v.check(
            (s) => durationMs(s) > 0 && durationMs(s) <= 90 * 86_400_000,
            msg('INVALID_DURATION', '0 < duration <= P90D'),
          ),
        ),
      ),
      expiresAt: v.optional(
        str(
          'INVALID_EXPIRES_AT',
          'an instant',
          v.maxLength(40),
          v.regex(INSTANT, msg('INVALID_EXPIRES_AT', 'an instant')),
          v.check(realDay, msg('INVALID_EXPIRES_AT', 'a real date')),
        ),
      ),
      requestedBy: v.optional(person),
      approvedBy: v.optional(v.pipe(v.array(person), v.maxLength(10), distinct('DUPLICATE_VALUE'))),
      reason: v.optional(
        str(
          'INVALID_FIELD',
          '1–1024 printable characters',
          v.maxLength(1024),
          v.regex(
            re(`^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F${INVISIBLE}]+$`),
            msg('INVALID_FIELD', 'printable text'),
          ),
        ),
      ),
      ticket: v.optional(ref),
      incidentId: v.optional(ref),
      grantId: v.optional(id('INVALID_FIELD')),
      principalRecreated: v.optional(v.boolean(msg('INVALID_TYPE', 'true or false'))),
    },
    msg('UNKNOWN_FIELD', 'only AccessRequest v1 fields'),
  ),
  v.check(
    (o) => !(o.duration !== undefined && o.expiresAt !== undefined),
    msg('CONFLICTING_FIELDS', 'one of duration, expiresAt'),
  ),
  v.check(
    (o) => o.principalRecreated === undefined || (o.source === 'iam-role-created' && o.action === 'grant'),
    msg('CONFLICTING_FIELDS', 'principalRecreated only on iam-role-created grants'),
  ),
  v.check(
    (o) => o.source !== 'expiry' || (o.grantId !== undefined && o.action === 'revoke'),
    msg('GRANT_ID_REQUIRED', 'an expiry revoking one grant'),
  ),
  v.check(
    (o) => o.action !== 'grant' || o.accessPolicies !== undefined || (o.kubernetesGroups?.length ?? 0) > 0,
    msg('NOTHING_TO_GRANT', 'something to grant'),
  ),
  // A break-glass grant names its incident, says why, and ends: one code each, as request.ts.
  v.check(
    (o) => o.source !== 'break-glass' || o.action !== 'grant' || o.incidentId !== undefined,
    msg('INCIDENT_ID_REQUIRED', 'a break-glass grant with an incidentId'),
  ),
  v.check(
    (o) => o.source !== 'break-glass' || o.action !== 'grant' || o.reason !== undefined,
    msg('REASON_REQUIRED', 'a break-glass grant with a reason'),
  ),
  v.check(
    (o) => o.source !== 'break-glass' || o.action !== 'grant' || (o.duration ?? o.expiresAt) !== undefined,
    msg('DURATION_REQUIRED', 'a break-glass grant with a duration or expiresAt'),
  ),
);

/** First issue wins, as in request.ts: `{ ok, code, message }`. */
export function validateWithValibot(
  input: unknown,
): { ok: true } | { ok: false; code: string; message: string } {
  const r = v.safeParse(AccessRequestSchema, input, { abortEarly: true });
  if (r.success) return { ok: true };
  const text = r.issues[0]?.message ?? 'INVALID: unknown';
  const cut = text.indexOf(': ');
  return { ok: false, code: text.slice(0, cut), message: text.slice(cut + 2) };
}
