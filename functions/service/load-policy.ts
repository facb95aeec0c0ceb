/**
 * The guardrail policy as the Lambda bundle carries it (JSON written by `npm run package`), read and
 * validated once per cold start. Kept apart from service/worker.ts so intake bundles do not pull in the
 * worker's EKS, EventBridge and Scheduler clients.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import { type GuardrailPolicy, validatePolicy } from '../core/policy.js';

export function loadPolicyJson(path: string): GuardrailPolicy {
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
  return validatePolicy(raw);
}
