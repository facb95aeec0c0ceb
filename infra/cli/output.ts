/** Tables for people, CSV for access reviews, durations as ISO-8601 on the command line. */
import { parseIsoDuration } from '../../functions/core/request.js';
import type { AccessScope, PolicyAssociation } from '../../functions/core/types.js';
import { table } from '../local/report.js';
import { UsageError } from './args.js';

export { table };

/** What a command hands back: JSON for --json, text otherwise, and the exit status. */
export interface CommandResult {
  json: unknown;
  text: string;
  /** 0 success, 2 a denied plan or refused request, 1 a request that failed (other errors throw). */
  exit: 0 | 1 | 2;
}

/** RFC 4180: quote a field holding a comma, quote or line break; double the quotes inside. */
export function csv(headers: string[], rows: string[][]): string {
  const cell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  return `${[headers, ...rows].map((r) => r.map(cell).join(',')).join('\r\n')}\r\n`;
}

export function policyName(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

export function scopeText(scope: AccessScope): string {
  return scope.type === 'cluster' ? 'cluster' : (scope.namespaces ?? []).join('|');
}

/** `AmazonEKSViewPolicy@team-a|team-b`, for tables. */
export function policiesText(policies: readonly PolicyAssociation[]): string {
  return policies
    .map((p) => `${policyName(p.policyArn).replace(/^AmazonEKS/, '')}@${scopeText(p.accessScope)}`)
    .join(' ');
}

/** An ISO-8601 duration flag (PT1H, P1D) in milliseconds; anything else is a usage error naming the flag. */
export function durationFlag(name: string, value: string): number {
  const ms = parseIsoDuration(value);
  if (ms === undefined || ms <= 0) {
    throw new UsageError(
      `--${name} ${JSON.stringify(value)} is not a positive ISO-8601 duration such as PT1H or P1D`,
    );
  }
  return ms;
}

/** Dash for an absent value, so table columns stay aligned. */
export function dash(v: string | undefined | null): string {
  return v === undefined || v === null || v === '' ? '-' : v;
}
