/**
 * One canonical identity for requesters and approvers (AccessRequest `requestedBy`, `approvedBy[]`), so
 * duplicates and aliases collapse and self-approval compares like with like:
 *
 *   email      a lower-case address, no surrounding space, no `+tag` sub-address (an alias of one mailbox):
 *              `alice@example.com`
 *   Jira       the Atlassian account id of the user, as the webhook reports it: `jira:<accountId>`
 *              (`jira:5b10ac8d82e05b22cc7d4ef5`); Jira Cloud may hide email addresses, never account ids
 *   IAM        an IAM or STS ARN, as CloudTrail reports the caller of a role event:
 *              `arn:aws:sts::111122223333:assumed-role/platform-admin/ivan`
 *
 * A bare name (`bob`) is none of these: nothing says which person it is, so it is refused rather than
 * guessed. The queue contract accepts canonical identities only; the HTTP intake canonicalizes what it
 * can (case, surrounding space, duplicates) before validating. Pure, no AWS imports.
 */

const EMAIL = String.raw`[a-z0-9._%-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+`;
const JIRA = 'jira:[a-z0-9][a-z0-9:-]{0,127}';
const ARN = 'arn:(?:aws|aws-cn|aws-us-gov):(?:iam|sts)::[0-9]{12}:[A-Za-z0-9_+=,.@/:-]{1,1024}';

/** The canonical forms, anchored (for the AccessRequest field spec and its JSON Schema). */
export const IDENTITY_PATTERN = `^(?:${EMAIL}|${JIRA}|${ARN})$`;
export const IDENTITY_CHARSET = '[A-Za-z0-9._%@:/+=,-]';
export const IDENTITY_EXPECTED =
  'a canonical identity: a lower-case email address without a +tag (alice@example.com), a Jira account id ' +
  'as jira:<accountId> (jira:5b10ac8d82e05b22cc7d4ef5), or an IAM/STS ARN (arn:aws:iam::111122223333:user/alice)';

const IDENTITY_RE = new RegExp(IDENTITY_PATTERN, 'u');

export function isCanonicalIdentity(value: string): boolean {
  return IDENTITY_RE.test(value);
}

/**
 * The canonical form of what a sender wrote, where one follows from the text alone: trimmed; emails and
 * `jira:` ids lower-cased (both are case-insensitive); ARNs as written. May still not be canonical (a bare
 * name, a +tag): the validator then refuses it with a hint.
 */
export function canonicalIdentity(raw: string): string {
  const text = raw.trim();
  if (/^arn:/.test(text)) return text;
  return text.toLowerCase();
}

/** Canonical forms, duplicates (after canonicalization) dropped, order kept. */
export function canonicalIdentities(list: readonly string[]): string[] {
  return [...new Set(list.map(canonicalIdentity))];
}

/** A Jira user's canonical identity from its account id. */
export function jiraIdentity(accountId: string): string {
  return `jira:${accountId.trim().toLowerCase()}`;
}

/** Why a value is not canonical, for messages; undefined when it is. */
export function identityProblem(value: string): string | undefined {
  if (isCanonicalIdentity(value)) return undefined;
  const fixed = canonicalIdentity(value);
  if (fixed !== value && isCanonicalIdentity(fixed))
    return `is not in canonical form; send ${JSON.stringify(fixed)}`;
  if (/^[^@:\s]+\+[^@]*@/.test(value.trim())) {
    return 'is a +tag sub-address, an alias of one mailbox; send the address without the +tag';
  }
  if (!value.includes('@') && !value.includes(':')) {
    return 'is a bare name, which does not say which person it is; send their email address';
  }
  return 'is not a canonical identity';
}
