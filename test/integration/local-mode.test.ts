import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, test } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const START = ['--import', 'tsx', 'infra/local/start.ts'];

function run(args: string[]) {
  return spawn(process.execPath, [...START, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOCAL_MAX_RUN_MS: '60000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('local mode (npm start)', () => {
  test('runs every sample through the real handler, prints outcomes and entries, and exits 0', async () => {
    const child = run([]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(err).not.toMatch(/local mode failed/);
    expect(code).toBe(0);
    expect(out).toMatch(/req-dev-view-0001\s+ticket\s+granted/);
    expect(out).toMatch(/req-invalid-system-group-0001\s+ticket\s+rejected.*SYSTEM_GROUP/);
    expect(out).toMatch(/req-prod-bg-0001\s+break-glass\s+granted \(high\)/);
    // The short break-glass grant expired during the run and alice's prior access is back.
    expect(out).toMatch(/expiry-\w+\s+expiry\s+expired \(high\)\s+prod:111122223333:role\/sre-alice/);
    expect(out).toMatch(/role\/sre-alice\s+sre-oncall\s+View@team-a\s+no/);
  });

  test('--serve prints one JSON line of endpoints first and stops cleanly on SIGTERM', async () => {
    const child = run(['--serve']);
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve) => lines.once('line', resolve));
    const info = JSON.parse(first);
    expect(Object.keys(info)).toEqual(
      expect.arrayContaining([
        'region',
        'eksEndpoint',
        'sqsEndpoint',
        'requestQueueUrl',
        'dlqUrl',
        'auditLog',
        'dynamodbEndpoint',
        'schedulerEndpoint',
      ]),
    );
    expect(info.eksEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Wait until the samples are done, then ask it to stop.
    await new Promise<void>((resolve) => lines.on('line', (l) => l.startsWith('serving') && resolve()));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
  });
});
