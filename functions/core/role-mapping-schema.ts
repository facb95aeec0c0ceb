/**
 * The whole guardrail policy document: policy-schema.ts's rules plus `roleMappings`, declared as field
 * specs. `validateGuardrailPolicy` is what packaging, local mode, tests and the role-lifecycle intake
 * use; `guardrailPolicyJsonSchema` is published as events/schemas/guardrail-policy.v1.schema.json.
 *
 * Built on first use rather than at module level, so a bundle that imports policy.ts only for
 * `decide` (the workers, the ticket intake) tree-shakes all of this away.
 */
import type { ClusterPolicy, GuardrailPolicy, RoleMappings } from './policy.js';
import { patternCovers } from './policy.js';
import { accessPolicy, CODE, flag, listOf, policySpec, readPolicy, string } from './policy-schema.js';
import {
  caseInsensitivePrefixPattern,
  configJoin,
  type ObjectSpec,
  own,
  schemaDocument,
  showConfig,
} from './schema.js';

const TRUSTED_CREATOR =
  'an IAM ARN pattern such as arn:aws:iam::111122223333:role/platform-admin, ' +
  'arn:aws:iam::111122223333:role/pipelines/* or arn:aws:iam::111122223333:user/alice (one account; * after it)';

function roleMappingsSpec(): ObjectSpec {
  const tag: ObjectSpec = {
    kind: 'object',
    code: CODE,
    expected: 'a mapping { key, levels }',
    description:
      'A role tagged `<key>=<level>:<ns> <ns>` gets the level’s policy in those namespaces; `<key>=<level>` gets it cluster-wide.',
    fields: [
      {
        name: 'key',
        required: true,
        spec: string('an IAM tag key (1–128 letters, digits, spaces, _ . : / = + - @)', {
          // What IAM accepts in a tag key; `aws:` keys are reserved for AWS.
          pattern: String.raw`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`,
          forbidden: [
            {
              pattern: caseInsensitivePrefixPattern(['aws:']),
              code: CODE,
              message: (path, v) => `${path}: ${showConfig(v)} uses the aws: prefix, which AWS reserves`,
            },
          ],
        }),
      },
      {
        name: 'levels',
        required: true,
        missing: 'must map at least one level name to an access policy, e.g. { view: AmazonEKSViewPolicy }',
        spec: {
          kind: 'record',
          code: CODE,
          expected: 'a mapping of level name to access policy',
          explain: () =>
            'must map at least one level name to an access policy, e.g. { view: AmazonEKSViewPolicy }',
          minEntries: 1,
          keys: string('a level name', {
            pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
            explain: () => 'level names are lower-case letters, digits, _ and -, at most 32 characters',
          }),
          values: accessPolicy,
        },
      },
      {
        name: 'allowWildcardNamespaces',
        required: false,
        default: false,
        spec: flag('Whether a tag value may name a namespace prefix ending in `*` (contract C6).'),
      },
    ],
  };
  const path: ObjectSpec = {
    kind: 'object',
    code: CODE,
    expected: 'a mapping { prefix, policy, namespaces? }',
    description: 'A role created under this IAM path gets the policy (cluster-wide without namespaces).',
    fields: [
      {
        name: 'prefix',
        required: true,
        // IAM paths: `/`-delimited segments of printable ASCII, at most 512 characters; `/` alone is every role.
        spec: string(
          'an IAM path prefix such as /eks/dev/view/ (starts and ends with /, printable ASCII, not / alone, which every role has)',
          { maxLength: 512, pattern: String.raw`^/(?:[\x21-\x2E\x30-\x7E]+/)+$` },
        ),
      },
      { name: 'policy', required: true, spec: accessPolicy },
      {
        name: 'namespaces',
        required: false,
        spec: listOf(
          // A DNS-1123 label, or a prefix ending in `*` as in requests.
          string('a namespace (a DNS-1123 label, or a prefix ending in *)', {
            pattern: String.raw`^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?|[a-z0-9][-a-z0-9]{0,61}\*)$`,
          }),
          'Absent: the policy applies at cluster scope.',
          { minItems: 1, tooFew: 'must list at least one namespace; omit it for cluster scope' },
        ),
      },
    ],
    parse: ({ policy, ...rest }) => ({ ...rest, policyArn: policy }),
  };
  return {
    kind: 'object',
    code: CODE,
    expected: 'a mapping with tags, paths and trustedCreators',
    description:
      "How an IAM role's tags and path become iam-role-created requests, which this cluster's iam-role-created rule still decides.",
    fields: [
      { name: 'tags', required: false, default: [], spec: listOf(tag, 'Tag mappings.') },
      { name: 'paths', required: false, default: [], spec: listOf(path, 'Path mappings.') },
      {
        name: 'trustedCreators',
        required: false,
        default: [],
        spec: listOf(
          string(TRUSTED_CREATOR, {
            // An IAM user, role or root ARN in one account, with `*` globs after the account.
            pattern:
              '^arn:(?:aws|aws-cn|aws-us-gov):iam::[0-9]{12}:(?:root|(?:role|user)/[A-Za-z0-9_+=,.@/*-]{1,1024})$',
            explain: (v) => `${showConfig(v)} is not ${TRUSTED_CREATOR}`,
            forbidden: [
              {
                // CloudTrail reports a session by the role that issued it, which is what is matched.
                pattern: '^arn:[^:]+:sts::',
                code: CODE,
                message: (path, v) =>
                  `${path}: ${showConfig(v)} is an STS session ARN; name the IAM role that issues the sessions, e.g. arn:aws:iam::111122223333:role/platform-admin (CloudTrail reports a session by that role)`,
              },
            ],
          }),
          'IAM ARN globs (`*` only) of the identities whose CreateRole / TagRole may grant on this cluster, matched against the CloudTrail caller. Absent or empty: nobody, so role events grant nothing here.',
        ),
      },
    ],
    checks: [
      (m, at) => {
        const issues: string[] = [];
        const seen = new Set<string>();
        (m as unknown as RoleMappings).tags.forEach((t, i) => {
          const key = t.key.toLowerCase();
          if (seen.has(key)) {
            issues.push(
              `${configJoin(at, 'tags')}[${i}].key: ${showConfig(t.key)} is listed twice (IAM tag keys ignore case)`,
            );
          }
          seen.add(key);
        });
        return issues;
      },
    ],
  };
}

/** A mapping that its own rule would always deny is a mistake worth failing the deploy for. */
function mappingsAgainstRule(cluster: ClusterPolicy, path: string): string[] {
  const mappings = cluster.roleMappings;
  if (!mappings) return [];
  const at = configJoin(path, 'roleMappings');
  const rulePath = configJoin(configJoin(path, 'rules'), 'iam-role-created');
  const rule = own(cluster.rules, 'iam-role-created') as ClusterPolicy['rules']['iam-role-created'];
  if (!rule) {
    return mappings.tags.length + mappings.paths.length > 0
      ? [`${at}: needs ${rulePath}, which decides every grant a role mapping makes`]
      : [];
  }
  const issues: string[] = [];
  const allowed = (policyArn: string, where: string) => {
    if (!rule.allowedPolicyArns.includes(policyArn)) {
      issues.push(
        `${where}: ${policyName(policyArn)} is not in ${rulePath}.allowedPolicies, so every grant would be denied`,
      );
    }
  };
  mappings.tags.forEach((t, i) => {
    for (const [level, policyArn] of Object.entries(t.levels)) {
      allowed(policyArn, configJoin(`${at}.tags[${i}].levels`, level));
    }
  });
  mappings.paths.forEach((p, i) => {
    const where = `${at}.paths[${i}]`;
    allowed(p.policyArn, `${where}.policy`);
    const scope = p.namespaces === undefined ? 'cluster' : 'namespace';
    if (!rule.scopeTypes.includes(scope)) {
      issues.push(
        `${where}: grants ${policyName(p.policyArn)} at ${scope} scope, which ${rulePath}.scopeTypes does not allow`,
      );
    }
    if (!rule.scopeTypes.includes('namespace')) return;
    for (const ns of p.namespaces ?? []) {
      if (!rule.namespacePatterns.some((pattern) => patternCovers(pattern, ns))) {
        issues.push(`${where}.namespaces: ${ns} is not covered by ${rulePath}.namespacePatterns`);
      }
    }
  });
  return issues;
}

function policyName(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

let spec: ObjectSpec | undefined;
function guardrailPolicySpec(): ObjectSpec {
  spec ??= policySpec(roleMappingsSpec(), [mappingsAgainstRule]);
  return spec;
}

/** The whole policy document, role mappings included: the frozen policy or one ConfigError. */
export function validateGuardrailPolicy(raw: unknown): GuardrailPolicy {
  return readPolicy(guardrailPolicySpec(), raw);
}

/** JSON Schema (draft 2020-12) of the policy file, for events/schemas/ and editors (yaml-language-server). */
export function guardrailPolicyJsonSchema(): Record<string, unknown> {
  return schemaDocument(guardrailPolicySpec(), {
    id: 'urn:eks-access-grants:schema:guardrail-policy:v1',
    title: 'Guardrail policy v1',
    comment:
      'Generated from functions/core/policy-schema.ts and role-mapping-schema.ts by `npm run schemas`; do not ' +
      'edit. The validator also enforces what a schema cannot: a maxDuration longer than zero; scopeTypes with ' +
      'allowedPolicies and namespacePatterns with namespace scope (and neither without); a rule that grants ' +
      "something; role mappings that their cluster's iam-role-created rule allows; tag keys distinct ignoring " +
      'case. It reports every problem at once, each with its path.',
  });
}
