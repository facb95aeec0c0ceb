/**
 * The intake's `jira` payload format: a Jira Cloud webhook → an AccessRequest candidate, through the
 * field mapping (core/jira.ts). Handed to the intake (`TicketIntakeOptions.jira`) instead of imported by
 * it, so only the function that serves /tickets bundles Jira code: the break-glass intake takes v1 bodies
 * only, and a static import in the shared use case put core/jira.ts in its bundle too (issue 11).
 */
import type { Env } from '../config.js';
import { ConfigError } from '../core/errors.js';
import {
  explainForJira,
  type JiraFieldMapping,
  jiraToAccessRequest,
  validateJiraMapping,
} from '../core/jira.js';
import type { PayloadAdapter } from './ticket-intake.js';

export function jiraPayload(mapping: JiraFieldMapping): PayloadAdapter {
  return {
    toCandidate: (value) => jiraToAccessRequest(value, mapping),
    explain: (reason) => explainForJira(reason, mapping),
  };
}

/**
 * JIRA_FIELD_MAPPING (JSON), validated once at cold start so a broken mapping fails the deploy's first
 * invocation with every problem listed, not each approval. Absent or empty: no jira adapter, and
 * `x-payload-format: jira` is an unknown adapter.
 */
export function loadJiraPayload(env: Env = process.env): PayloadAdapter | undefined {
  const text = env.JIRA_FIELD_MAPPING?.trim();
  if (!text) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`JIRA_FIELD_MAPPING is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return jiraPayload(validateJiraMapping(raw, 'JIRA_FIELD_MAPPING'));
}
