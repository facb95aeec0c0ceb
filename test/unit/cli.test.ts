import { describe, expect, test } from 'vitest';
import { parseArgs, UsageError } from '../../infra/cli/args.js';
import { insightsQuery, recordFromLogMessage } from '../../infra/cli/audit-source.js';
import { COMMANDS } from '../../infra/cli/main.js';
import { csv } from '../../infra/cli/output.js';

const SPECS = COMMANDS.map((c) => c.spec);

describe('cli argument parsing', () => {
  test('takes --flag value and --flag=value, and `-` as a value', () => {
    const p = parseArgs(['plan', '--file', '-', '--local', '--json'], SPECS);
    expect(p.command.name).toBe('plan');
    expect(p.flags).toEqual({ file: '-', local: true, json: true });
    expect(parseArgs(['access', '--cluster=dev', '--local'], SPECS).flags.cluster).toBe('dev');
  });

  test('finds a sub-command after its flags', () => {
    expect(parseArgs(['dlq', '--local', 'redrive', '--all'], SPECS).command.name).toBe('dlq redrive');
  });

  test('refuses a repeated flag, a value on a boolean flag and a stray argument', () => {
    expect(() => parseArgs(['access', '--cluster', 'a', '--cluster', 'b'], SPECS)).toThrow(
      /--cluster is given twice/,
    );
    expect(() => parseArgs(['status', '--json=yes'], SPECS)).toThrow(/--json takes no value/);
    expect(() => parseArgs(['status', 'extra'], SPECS)).toThrow(UsageError);
  });
});

describe('deployed audit query', () => {
  test('filters the audit lines by principal, cluster and request ids', () => {
    const q = insightsQuery({
      principal: 'arn:aws:iam::111122223333:role/a',
      cluster: 'dev',
      requestIds: ['r1', 'r2'],
    });
    expect(q).toBe(
      [
        'fields @timestamp, @message',
        'filter message like /^audit (granted|revoked|expired|unchanged|rejected|failed|drift|repaired|extended)/',
        'filter audit.principalArn = "arn:aws:iam::111122223333:role/a"',
        'filter audit.clusterName = "dev"',
        'filter audit.requestId = "r1" or audit.requestId = "r2"',
        'sort @timestamp asc',
        'limit 10000',
      ].join('\n| '),
    );
  });

  test('refuses a value that could change the query', () => {
    expect(() => insightsQuery({ principal: 'x" or 1=1 or "' })).toThrow(/cannot be queried/);
  });

  test('reads the record out of a Powertools log line', () => {
    const line = JSON.stringify({
      level: 'INFO',
      message: 'audit granted',
      audit: { requestId: 'r1', outcome: 'granted' },
    });
    expect(recordFromLogMessage(line)).toEqual({ requestId: 'r1', outcome: 'granted' });
    expect(recordFromLogMessage('START RequestId: abc')).toBeUndefined();
  });
});

describe('csv', () => {
  test('quotes fields with commas, quotes and line breaks (RFC 4180)', () => {
    expect(csv(['a', 'b'], [['x,y', 'say "hi"']])).toBe('a,b\r\n"x,y","say ""hi"""\r\n');
  });
});
