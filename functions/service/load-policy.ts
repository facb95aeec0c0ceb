/**
 * The guardrail policy as the Lambda bundle carries it (JSON written by `npm run package`), read and
 * validated once per cold start. Kept apart from service/worker.ts so intake bundles do not pull in the
 * worker's EKS, EventBridge and Scheduler clients.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import type { GuardrailPolicy } from '../core/policy.js';
import { validateRulesPolicy } from '../core/policy-schema.js';

/**
 * `validate` defaults to the rules-only reader (policy-schema.ts), which is all the workers, the ticket
 * intake and the reconciler use; the role-lifecycle intake passes the whole-document validator.
 */
export function loadPolicyJson(
  path: string,
  validate: (raw: unknown) => GuardrailPolicy = validateRulesPolicy,
): GuardrailPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      `cannot read the guardrail policy at POLICY_PATH=${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return validate(raw);
}
